"""identity_node: who is in front of the robot (EgoMem retrieval process), as a ROS 2 node.

Subscribes (sensor-data QoS, remap to your robot's topics):
  image (sensor_msgs/Image), image/compressed (sensor_msgs/CompressedImage),
  audio (audio_common_msgs/AudioDataStamped) + audio_info (audio_common_msgs/AudioInfo, S16LE/F32LE...),
  audio_frame (egomem_msgs/AudioFrame), memory_events (egomem_msgs/MemoryEvent: reload keys on changes).
Publishes:
  identity (egomem_msgs/Identity) every poll; memchunk/level1 (egomem_msgs/MemChunk, latched) on a switch;
  ~/debug_image (sensor_msgs/Image), markers (visualization_msgs/MarkerArray), /diagnostics at 1 Hz;
  with hri_msgs: ROS4HRI's /humans/faces|voices|persons/... and /humans/candidate_matches (REP-155,
  see `ros/hri_publisher.py`); person ids are the memory's user ids.
A lifecycle node: configure loads the models, activate starts polling, cleanup releases the models.
All decisions are made by the pipeline's identity half (`egomem_ros.pipeline.IdentityCore`): this module
only moves messages to and from it.
"""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray
from egomem_msgs.msg import AudioFrame, Identity, MemChunk, MemoryEvent
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from sensor_msgs.msg import CompressedImage, Image
from visualization_msgs.msg import Marker, MarkerArray

from ..config import resolve_db
from ..msg_conversions import AudioFormat, compressed_to_rgb, image_to_rgb, stamp_to_sec
from ..pipeline import IdentityCore
from ..retrieval.media import MediaError
from ..store import open_store
from .hri_publisher import HriPublisher
from .lifecycle import LifecycleNode
from .qos import AUDIO_QOS, EVENTS_QOS, LATCHED_QOS
from .runner import run
from .util import Outbox, diagnostics, now_s

try:  # optional: ros-drivers/audio_common
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo
except ImportError:  # pragma: no cover
    AudioDataStamped = AudioInfo = None


# Parameters applied while the node runs (the poller reads them at every poll); every other one takes
# effect at the next configure.
IDENTITY_LIVE = ("identity.poll_period_s", "identity.window_s", "identity.face_weight", "identity.learn_new_users",
                 "identity.voice.threshold", "identity.voice.min_voiced_s")


class IdentityNode(LifecycleNode):
    def __init__(self) -> None:
        super().__init__("identity_node", ("store.", "identity.", "memchunk."), live=IDENTITY_LIVE)
        self.store = self.core = None
        self.audio_format = AudioFormat()

    # -- lifecycle -----------------------------------------------------------------------------
    def setup(self) -> None:
        """Open the store and load the face and voice models (the slow part: configure, not activate)."""
        self.store = open_store(resolve_db(self.cfg), clock=lambda: now_s(self))
        self.core = IdentityCore(self.store, self.cfg)
        self.poller = self.core.poller   # its live parameters and models, read by tests and diagnostics
        self._known_sent = False
        self._reload_pending = False
        self._stats = {"polls": 0, "rejected_frames": 0, "rejected_audio": 0, "last_poll_ms": 0.0}
        self.out = Outbox()
        self.out.add("identity", self.publisher(Identity, "identity", 10), Identity)
        self.out.add("l1", self.publisher(MemChunk, "memchunk/level1", LATCHED_QOS), MemChunk)
        self.out.add("debug", self.publisher(Image, "~/debug_image", 2), Image)
        self.out.add("markers", self.publisher(MarkerArray, "markers", 2), MarkerArray, {"markers": Marker})
        self.pub_diag = self.publisher(DiagnosticArray, "/diagnostics", 10)
        self.hri = HriPublisher(self)
        if self.hri.available:
            self.out.add("matches", self.hri.matches, self.hri.IdsMatch)
        self.get_logger().info(f"identity_node: memory {self.store.path}, face {self.poller.face.model}, "
                               f"voice {self.poller.voice.model}, poll every {self.cfg.identity.poll_period_s} s")

    def start(self) -> None:
        # buffering only, never blocked by inference; each stream one message at a time, in order
        camera, audio = MutuallyExclusiveCallbackGroup(), MutuallyExclusiveCallbackGroup()
        self._inference = MutuallyExclusiveCallbackGroup()
        self.sensor_subscription(Image, "image", self._on_image, callback_group=camera)
        self.sensor_subscription(CompressedImage, "image/compressed", self._on_compressed, callback_group=camera)
        self.sensor_subscription(AudioFrame, "audio_frame", self._on_audio, callback_group=audio, qos=AUDIO_QOS)
        if AudioDataStamped is not None:
            self.sensor_subscription(AudioDataStamped, "audio", self._on_audio, callback_group=audio, qos=AUDIO_QOS)
            self.info_subscription(AudioInfo, "audio_info", self._on_audio_info, callback_group=audio)
        self.subscription(MemoryEvent, "memory_events", self._on_memory_event, EVENTS_QOS,
                          callback_group=self._inference)
        self._poll_timer = self.timer(self.cfg.identity.poll_period_s, self._poll, callback_group=self._inference)
        self.timer(1.0, self._diagnostics, callback_group=MutuallyExclusiveCallbackGroup())

    def apply_live(self, changes: dict) -> None:
        if "identity.poll_period_s" in changes and getattr(self, "_poll_timer", None) in self._active:
            self._poll_timer = self.retime(self._poll_timer, self.cfg.identity.poll_period_s)
        self.get_logger().info(f"parameters applied: {changes}")

    def teardown(self) -> None:
        if getattr(self, "hri", None) is not None:
            self.hri.close()
        if self.core is not None:
            self.core.close()
        if self.store is not None:
            self.store.close()
        self.store = self.core = self.poller = None

    # -- sensors -------------------------------------------------------------------------------
    def _on_image(self, msg: Image) -> None:
        self._frame(msg, image_to_rgb)

    def _on_compressed(self, msg: CompressedImage) -> None:
        self._frame(msg, compressed_to_rgb)

    def _frame(self, msg, convert) -> None:
        try:
            rgb = convert(msg)
        except MediaError as err:
            self._stats["rejected_frames"] += 1
            self.get_logger().warning(f"frame rejected: {err}", throttle_duration_sec=5.0)
            return
        self.core.add_frame(stamp_to_sec(msg.header.stamp), rgb)

    def _on_audio_info(self, msg) -> None:
        for early in self.audio_format.set(msg):
            self._on_audio(early)

    def _on_audio(self, msg) -> None:
        """AudioDataStamped or egomem AudioFrame."""
        try:
            got = self.audio_format.decode(msg)
        except MediaError as err:
            self._stats["rejected_audio"] += 1
            self.get_logger().warning(f"audio rejected: {err}", throttle_duration_sec=5.0)
            return
        if got is not None:
            self.core.add_audio(stamp_to_sec(msg.header.stamp), *got)

    def _on_memory_event(self, msg: MemoryEvent) -> None:
        """Keys or users changed in the shared store (enrolment, merge, forget): re-read them."""
        if msg.item_kind in ("user", "key"):
            self._reload_pending = True  # one new profile sends several events: re-read once, at the next poll
            if msg.op == MemoryEvent.DELETE:
                self.core.forget(msg.user_id)
        if msg.item_kind == "user" and msg.op == MemoryEvent.UPDATE and msg.item_id and msg.item_id != msg.user_id:
            self.hri.alias(msg.item_id, msg.user_id)   # a merge: item_id now goes by user_id

    # -- polling -------------------------------------------------------------------------------
    def _poll(self) -> None:
        t = now_s(self)
        if self._reload_pending or not self._known_sent:
            if self._reload_pending:
                self.core.reload()
            self._reload_pending, self._known_sent = False, True
            self.hri.known([u.id for u in self.store.list_users(include_placeholders=False)], t)
        step = self.core.poll(t, debug_image=self.out.wants("debug"))
        ev = step.event
        self._stats["polls"] += 1
        self._stats["last_poll_ms"] = sum(ev.timings_ms.values())
        self.out.publish(step.messages)
        if step.chunk is not None:
            self.get_logger().info(f"user switch: {ev.status} {ev.name or ev.user_id} (confidence {ev.confidence:.2f})")
        self.hri.publish(ev, t)

    def _diagnostics(self) -> None:
        s = self._stats
        users = self.core.enrolled_users()
        self.pub_diag.publish(diagnostics(self, "identity", bool(s["polls"]), "polling" if s["polls"] else "no poll yet",
                                          {**s, "enrolled users": users}))


def main(args=None) -> None:
    run(IdentityNode, args, threads=4)


if __name__ == "__main__":
    main()

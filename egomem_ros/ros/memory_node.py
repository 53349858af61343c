"""memory_node: EgoMem's memory-management process and the memory services, as a lifecycle node.

configure: open the store, load the models. activate: services (RetrieveText, GetProfile, ListUsers,
EnrollUser, ForgetUser, MergeUsers), buffering (audio, the robot's voice and text, transcripts, identity),
consolidation when a session ends and at the latest every `consolidation_period_s`; MemoryEvent on every write.
deactivate / cleanup undo that in order; shutdown (also on SIGINT / SIGTERM) first writes everything buffered,
the session still going on included.
All decisions are made by the pipeline's memory half (`egomem_ros.pipeline.MemoryCore`) over the store:
this module only moves messages to and from it.
"""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray
from egomem_msgs.msg import AudioFrame, Fact, Identity, MemChunk, MemoryEvent, Relation, UserProfile
from egomem_msgs.srv import EnrollUser, ForgetUser, GetProfile, ListUsers, MergeUsers, RetrieveText
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from std_msgs.msg import String

from .. import msg_fields as F
from ..config import resolve_db
from ..errors import EgomemError
from ..msg_conversions import AudioFormat, audio_frame_to_pcm, image_to_rgb, stamp_to_sec
from ..retrieval.media import MediaError
from ..store import StoreError
from .lifecycle import LifecycleNode
from .qos import AUDIO_QOS, EVENTS_QOS, LATCHED_QOS
from .runner import run
from .util import Outbox, diagnostics, fill, now_s

PROFILE_ITEMS = {"facts": Fact, "relations": Relation}
# Parameters applied while the node runs; every other one takes effect at the next configure.
MEMORY_LIVE = ("memory.consolidation_period_s", "memory.max_gap_s", "memory.session_end_s")

try:
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo
except ImportError:  # pragma: no cover
    AudioDataStamped = AudioInfo = None
try:
    from hri_msgs.msg import LiveSpeech
except ImportError:  # pragma: no cover
    LiveSpeech = None


class MemoryNode(LifecycleNode):
    def __init__(self) -> None:
        super().__init__("memory_node", ("store.", "identity.", "memchunk.", "retrieval.", "memory."),
                         live=MEMORY_LIVE)
        self.audio_format = AudioFormat()

    # -- lifecycle -----------------------------------------------------------------------------
    def setup(self) -> None:
        from ..pipeline import IdentityCore, MemoryCore
        from ..store import open_store

        db = resolve_db(self.cfg)
        self.store = open_store(db, clock=lambda: now_s(self))
        self.keys = IdentityCore(self.store, self.cfg, polls=False)   # keys and galleries: no polling here
        self.core = MemoryCore(self.store, self.cfg, self.keys, db)
        self.out = Outbox()
        self.out.add("events", self.publisher(MemoryEvent, "memory_events", EVENTS_QOS), MemoryEvent)
        self.out.add("l2", self.publisher(MemChunk, "memchunk/level2", LATCHED_QOS), MemChunk)
        self.pub_diag = self.publisher(DiagnosticArray, "/diagnostics", 10)
        self._stats = {"consolidations": 0, "consolidated until t": 0.0, "sessions written": 0, "sessions retried": 0,
                       "polls read until t": 0.0, "level-2 items withheld (last query)": 0}
        self._diag_at = -float("inf")   # when the last status went out
        self.get_logger().info(f"memory at {self.store.path}; segmenter {self.cfg.memory.segmenter}, "
                               f"extractor {self.cfg.memory.extractor}, ASR {self.cfg.memory.asr}")

    def start(self) -> None:
        sensors, work, services = ReentrantCallbackGroup(), MutuallyExclusiveCallbackGroup(), ReentrantCallbackGroup()
        # audio one chunk at a time, in order: in a reentrant group two threads take consecutive chunks and
        # the later one can land first, which the stream reads as a loss followed by a clock jump
        audio = MutuallyExclusiveCallbackGroup()
        self.sensor_subscription(AudioFrame, "audio_frame", self._on_audio, callback_group=audio, qos=AUDIO_QOS)
        self.sensor_subscription(AudioFrame, "dialog/audio_out", self._on_speak, callback_group=audio, qos=AUDIO_QOS)
        if AudioDataStamped is not None:
            self.sensor_subscription(AudioDataStamped, "audio", self._on_audio, callback_group=audio, qos=AUDIO_QOS)
            self.info_subscription(AudioInfo, "audio_info", self._on_audio_info, callback_group=audio)
        if LiveSpeech is not None:
            self.subscription(LiveSpeech, "speech", self._on_live_speech, 10, callback_group=sensors)
        self.subscription(String, "transcript", self._on_transcript, 10, callback_group=sensors)
        self.subscription(String, "dialog/text", self._on_robot_text, 10, callback_group=sensors)
        self.subscription(Identity, "identity", self._on_identity, 10, callback_group=sensors)
        self.service(RetrieveText, "~/retrieve_text", self._retrieve, callback_group=services)
        self.service(GetProfile, "~/get_profile", self._get_profile, callback_group=services)
        self.service(ListUsers, "~/list_users", self._list_users, callback_group=services)
        self.service(EnrollUser, "~/enroll_user", self._enroll, callback_group=work)
        self.service(ForgetUser, "~/forget_user", self._forget, callback_group=work)
        self.service(MergeUsers, "~/merge_users", self._merge, callback_group=work)
        self._timer = self.timer(self.cfg.memory.consolidation_period_s, self._consolidate, callback_group=work)
        self.timer(1.0, self._diagnostics_tick, callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info("memory active: buffering, consolidating every "
                               f"{self.cfg.memory.consolidation_period_s:.0f} s")

    def apply_live(self, changes: dict) -> None:
        if getattr(self, "core", None) is not None:
            self.core.apply_live(self.cfg)
        if "memory.consolidation_period_s" in changes and getattr(self, "_timer", None) in self._active:
            self._timer = self.retime(self._timer, self.cfg.memory.consolidation_period_s)
        self.get_logger().info(f"parameters applied: {changes}")

    def finish(self) -> None:
        """Shutdown (a signal or the lifecycle): write everything buffered, the open session included."""
        if getattr(self, "core", None) is not None:
            self._consolidate(final=True)

    def teardown(self) -> None:
        for name in ("core", "keys", "store"):
            part = getattr(self, name, None)
            if part is not None:
                part.close()
            setattr(self, name, None)

    # -- inputs --------------------------------------------------------------------------------
    def _on_audio_info(self, msg) -> None:
        for early in self.audio_format.set(msg):
            self._on_audio(early)

    def _on_audio(self, msg) -> None:
        """AudioDataStamped or egomem AudioFrame into the memory buffer."""
        try:
            got = self.audio_format.decode(msg)
            if got is not None:
                self.core.add_listen(stamp_to_sec(msg.header.stamp), *got)
        except MediaError as err:
            self.get_logger().warning(f"audio rejected: {err}", throttle_duration_sec=5.0)

    def _on_speak(self, msg: AudioFrame) -> None:
        """The robot's own voice (the dialog node's output): the speak channel of the segmenter."""
        try:
            self.core.add_speak(stamp_to_sec(msg.header.stamp), *audio_frame_to_pcm(msg))
        except MediaError as err:
            self.get_logger().warning(f"robot audio rejected: {err}", throttle_duration_sec=5.0)

    def _on_transcript(self, msg: String) -> None:
        self.core.add_transcript(now_s(self), msg.data)

    def _on_live_speech(self, msg) -> None:
        if msg.final:
            self.core.add_transcript(stamp_to_sec(msg.header.stamp) or now_s(self), msg.final)

    def _on_robot_text(self, msg: String) -> None:
        self.core.add_robot_text(now_s(self), msg.data)

    def _on_identity(self, msg: Identity) -> None:
        # a session is written as soon as the poll that ends it arrives, as `egomem replay` does (here on a
        # sensor thread: the core keeps it apart from the timer's and shutdown's consolidation)
        if self.core.read_identity(msg):
            self._consolidate()
        self._stats["polls read until t"] = stamp_to_sec(msg.header.stamp)
        self._diagnostics()

    # -- work ----------------------------------------------------------------------------------
    def _consolidate(self, final: bool = False) -> None:
        t = now_s(self)
        step = self.core.consolidate(t, final=final)
        report = step.report
        self._stats["consolidations"] += 1
        self._stats["consolidated until t"] = max(t, self._stats["consolidated until t"])
        self._stats["sessions written"] += sum(o.status == "written" for o in report.outcomes)
        self._stats["sessions retried"] += report.retried
        self.out.publish(step.messages)
        for outcome in report.outcomes:
            if outcome.status == "written":
                self.get_logger().info(f"session {outcome.session_id} written for {outcome.user_id}: "
                                       f"heard \"{outcome.heard[:300]}\"")
            if outcome.status in ("retry", "not-learned", "rejected"):
                self.get_logger().warning(f"session {outcome.session_id}: {outcome.status} ({outcome.reason})")
        log = self.get_logger().info if report.sessions_found or final else self.get_logger().debug
        log(f"consolidation{' (final)' if final else ''} at t={t:.1f} s: {report.sessions_found} sessions, "
            f"{sum(o.status == 'written' for o in report.outcomes)} written, {report.waiting} still open")
        self._diagnostics()

    def _diagnostics_tick(self) -> None:
        """The 1 Hz status, unless a poll or a consolidation has just published one (about 1 Hz in all)."""
        if now_s(self) - self._diag_at >= 0.9:
            self._diagnostics()

    def _diagnostics(self) -> None:
        self._diag_at = now_s(self)
        pending = self.core.waiting_sessions() if self.core is not None else 0
        self.pub_diag.publish(diagnostics(self, "memory", pending == 0,
                                          f"{pending} sessions waiting to be written" if pending else "ok",
                                          {**self._stats, "spooled sessions": pending,
                                           **(self.core.buffer.audio_stats() if self.core is not None else {})}))

    def _retrieve(self, req, resp):
        try:
            res, messages = self.core.retrieve(now_s(self), req.user_id, req.relation_query, req.keyword_query,
                                               req.k or None)
        except KeyError as err:
            resp.success, resp.message = False, str(err)
            return resp
        fill(resp.chunk, dict(messages)["l2"])
        resp.success, resp.message = True, res.message
        self._stats["level-2 items withheld (last query)"] = res.withheld   # counted here, never shown to the asker
        resp.item_ids = [d.doc.item_id for d in res.docs]
        resp.scores = [float(d.score) for d in res.docs]
        self.out.publish(messages)
        return resp

    def _get_profile(self, req, resp):
        try:
            fill(resp.profile, F.profile_fields(self.store, req.user_id), PROFILE_ITEMS)
            resp.found, resp.message = True, ""
        except KeyError as err:
            resp.found, resp.message = False, str(err)
        return resp

    def _list_users(self, req, resp):
        resp.users = [fill(UserProfile(), F.profile_fields(self.store, u.id, facts=False), PROFILE_ITEMS)
                      for u in self.store.list_users(req.include_placeholders)]
        return resp

    def _enroll(self, req, resp):
        try:
            rep, messages = self.core.enroll(now_s(self), req.name, [image_to_rgb(img) for img in req.faces],
                                             [audio_frame_to_pcm(a) for a in req.voices])
        except EgomemError as err:   # EnrollmentError, MediaError, StoreError: the request's fault or the store's
            resp.success, resp.message = False, str(err)
            return resp
        self.out.publish(messages)
        resp.success, resp.user_id = True, rep.user.id
        resp.message = f"{rep.face_keys} face and {rep.voice_keys} voice keys; skipped {len(rep.rejected)}"
        return resp

    def _forget(self, req, resp):
        try:
            gone, messages = self.core.forget(now_s(self), req.user_id)
        except (KeyError, StoreError) as err:
            resp.success, resp.message = False, str(err)
            return resp
        self.out.publish(messages)
        resp.success = True
        resp.message = ("erased" + (f", with {gone.sessions} waiting sessions" if gone.sessions else "")
                        + (f", and {len(gone.reports)} reports that named them" if gone.reports else ""))
        return resp

    def _merge(self, req, resp):
        try:
            messages = self.core.merge(now_s(self), req.keep_id, req.merge_id)
        except (KeyError, StoreError) as err:
            resp.success, resp.message = False, str(err)
            return resp
        self.out.publish(messages)
        resp.success, resp.message = True, "merged"
        return resp


def main(args=None) -> None:
    run(MemoryNode, args, threads=4)


if __name__ == "__main__":
    main()

"""The dialog node's three modes, one strategy object each, chosen once at configure (`MODES`).

Each mode creates its publishers in `setup` (configure), its subscriptions in `start` (activate), takes
the MemChunks the node receives in `on_chunk`, and releases its model in `stop` (cleanup). The node
keeps what all modes share: the MemChunk composer, the `<retr>` requests and their timeout.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from egomem_msgs.msg import AudioFrame
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from std_msgs.msg import String

from ..memchunk import LEVEL2
from ..memchunk import MemChunk as Chunk
from ..msg_fields import audio_frame_fields
from ..retrieval.media import MediaError
from .qos import AUDIO_QOS, LATCHED_QOS
from .util import fill, now_s

if TYPE_CHECKING:
    from .dialog_node import DialogNode

try:  # optional: ros-drivers/audio_common
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo
except ImportError:  # pragma: no cover - depends on the robot's install
    AudioDataStamped = AudioInfo = None


class ExternalMode:
    """The robot's own dialog stack: MemChunks as a latched system prompt; `<retr>` read from its text."""

    def __init__(self, node: DialogNode) -> None:
        self.node = node

    def setup(self) -> None:
        self.pub_prompt = self.node.publisher(String, "dialog/system_prompt", LATCHED_QOS)

    def start(self) -> None:
        self.node.subscription(String, "dialog/text", self._on_text, 10, callback_group=self.node.group)

    def on_chunk(self, chunk: Chunk, l2_dropped: bool) -> None:
        self.pub_prompt.publish(String(data=self.node.composer.render()))

    def stop(self) -> None:
        pass

    def _on_text(self, msg: String) -> None:
        for query in self.node.parser.feed(msg.data):
            self.node.request_level2(query)


class CascadedMode:
    """A finished user turn's transcript -> chat LLM with the MemChunks -> `dialog/response`."""

    def __init__(self, node: DialogNode) -> None:
        self.node = node
        self.cascaded = None

    def setup(self) -> None:
        from ..dialog.factory import build_cascaded

        self.cascaded = build_cascaded(self.node.cfg, self.node.retrieve_blocking)
        self.pub_response = self.node.publisher(String, "dialog/response", 10)

    def start(self) -> None:
        self.node.subscription(String, "dialog/user_text", self._on_user_text, 10,
                               callback_group=MutuallyExclusiveCallbackGroup())  # one turn at a time

    def on_chunk(self, chunk: Chunk, l2_dropped: bool) -> None:
        self.cascaded.set_memchunk(chunk)

    def stop(self) -> None:
        self.cascaded = None

    def _on_user_text(self, msg: String) -> None:
        from ..memory.llm import LLMError

        try:
            answer = self.cascaded.respond(msg.data)
        except (ValueError, LLMError) as err:
            self.node.get_logger().warning(f"no answer: {err}")
            return
        self.pub_response.publish(String(data=answer))


class MoshiMode:
    """Microphone audio -> the full-duplex model with pinned MemChunk regions -> robot speech and its
    text monologue (whose `<retr>` queries go to RetrieveText)."""

    def __init__(self, node: DialogNode) -> None:
        self.node = node
        self.engine = self.runner = None

    def setup(self) -> None:
        from ..dialog.engine import SAMPLE_RATE
        from ..dialog.engine_runner import EngineRunner
        from ..dialog.factory import build_moshi_engine

        node = self.node
        self.engine = build_moshi_engine(node.cfg)
        self.runner = EngineRunner(self.engine, self._on_step, queue_frames=node.cfg.dialog.queue_frames)
        self.out_rate = SAMPLE_RATE
        self.pub_audio = node.publisher(AudioFrame, "dialog/audio_out", 10)
        self.pub_text = node.publisher(String, "dialog/text", 10)   # the monologue; other modes only read it
        self._reported = (0, 0)
        self.runner.start()

    def start(self) -> None:
        from rclpy.callback_groups import MutuallyExclusiveCallbackGroup

        node = self.node
        audio = MutuallyExclusiveCallbackGroup()   # the model hears the chunks in order
        node.sensor_subscription(AudioFrame, "audio_frame", self._on_audio, callback_group=audio, qos=AUDIO_QOS)
        if AudioDataStamped is not None:
            node.sensor_subscription(AudioDataStamped, "audio", self._on_audio, callback_group=audio, qos=AUDIO_QOS)
            node.info_subscription(AudioInfo, "audio_info", self._on_audio_info, callback_group=audio)
        node.timer(10.0, self._report, callback_group=node.group)

    def on_chunk(self, chunk: Chunk, l2_dropped: bool) -> None:
        if l2_dropped:   # a new user: drop the last one's Level-2 first, so no step sees it beside their Level-1
            self.engine.set_memchunk(LEVEL2, "")
        self.engine.set_memchunk(chunk.level, chunk.text)

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        self.engine = self.runner = None

    def _on_audio_info(self, msg) -> None:
        for early in self.node.audio_format.set(msg):
            self._on_audio(early)

    def _on_audio(self, msg) -> None:
        try:
            got = self.node.audio_format.decode(msg)
            if got is not None:
                self.runner.push_audio(*got)
        except MediaError as err:
            self.node.get_logger().warning(f"audio rejected: {err}", throttle_duration_sec=5.0)

    def _on_step(self, out) -> None:
        if out.pcm is not None:
            fields = audio_frame_fields(out.pcm, self.out_rate, now_s(self.node), "speaker")
            self.pub_audio.publish(fill(AudioFrame(), fields))
        if out.text:
            self.pub_text.publish(String(data=out.text))
        for query in out.queries:
            self.node.request_level2(query)

    def _report(self) -> None:
        s = self.runner.stats
        if (s.dropped, s.late) != self._reported:
            self.node.get_logger().warning(f"dialog model behind real time: {s.dropped} frames dropped, {s.late} late "
                                           f"(mean step {s.mean_step_ms:.1f} ms of an 80 ms budget)")
            self._reported = (s.dropped, s.late)


MODES = {"external": ExternalMode, "cascaded": CascadedMode, "moshi": MoshiMode}

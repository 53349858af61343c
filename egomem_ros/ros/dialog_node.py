"""dialog_node: the dialog process, in the mode `dialog.mode` selects.

- external: the MemChunks become a latched system prompt (`dialog/system_prompt`) for the robot's own
  dialog stack; `<retr>` queries in that stack's text (`dialog/text`) go to the memory node's
  RetrieveText service.
- cascaded: a finished user turn's transcript (`dialog/user_text`) -> chat LLM with the MemChunks in its
  system prompt -> `dialog/response`. Level-2 via a retrieve_memory tool or the `<retr>` protocol.
- moshi: microphone audio (`audio` + `audio_info`, or `audio_frame`) -> full-duplex model with pinned
  MemChunk regions -> robot speech (`dialog/audio_out`, egomem_msgs/AudioFrame at 24 kHz) and its text
  monologue (`dialog/text`). `<retr>` queries in the monologue go to RetrieveText.

A lifecycle node: configure loads the mode's model (a moshi checkpoint), activate subscribes, cleanup
releases the model. In every mode the answer to a `<retr>` query reaches the model as the memory node's latched Level-2
MemChunk, and the dialog never waits for it longer than `dialog.retrieve_timeout_s`.
"""
from __future__ import annotations

import threading

from egomem_msgs.msg import AudioFrame, MemChunk
from egomem_msgs.srv import RetrieveText
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from std_msgs.msg import String

from ..dialog.prompt import PromptComposer
from ..memchunk import LEVEL2
from ..memchunk import MemChunk as Chunk
from ..msg_fields import audio_frame_fields
from ..msg_conversions import AudioFormat
from ..retrieval.media import MediaError
from ..retrieval.retr_protocol import RetrQuery, RetrStreamParser
from .lifecycle import LifecycleNode
from .util import LATCHED_QOS, fill, now_s, run

try:  # optional: ros-drivers/audio_common
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo
except ImportError:  # pragma: no cover - depends on the robot's install
    AudioDataStamped = AudioInfo = None


# Parameters applied while the node runs; every other one takes effect at the next configure.
DIALOG_LIVE = ("dialog.retrieve_timeout_s",)


class DialogNode(LifecycleNode):
    def __init__(self) -> None:
        super().__init__("dialog_node", ("dialog.", "memchunk."), live=DIALOG_LIVE)
        self.engine = self.runner = self.cascaded = None
        self.audio_format = AudioFormat()

    # -- lifecycle ------------------------------------------------------------------------------------
    def setup(self) -> None:
        """The mode's model and publishers; a moshi checkpoint is loaded here (DialogSetupError: FAILURE)."""

        self.composer = PromptComposer()
        self.parser = RetrStreamParser()
        self.group = ReentrantCallbackGroup()
        self.retrieve = self.client(RetrieveText, self.cfg.dialog.retrieve_service, callback_group=self.group)
        getattr(self, f"_setup_{self.cfg.dialog.mode}")()

    def start(self) -> None:
        for topic in ("memchunk/level1", "memchunk/level2"):
            self.subscription(MemChunk, topic, self._on_chunk, LATCHED_QOS, callback_group=self.group)
        getattr(self, f"_start_{self.cfg.dialog.mode}")()

    def teardown(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        self.engine = self.runner = self.cascaded = None

    # -- modes ----------------------------------------------------------------------------------------
    def _setup_external(self) -> None:
        self.pub_prompt = self.publisher(String, "dialog/system_prompt", LATCHED_QOS)

    def _start_external(self) -> None:
        self.subscription(String, "dialog/text", self._on_text, 10, callback_group=self.group)

    def _setup_cascaded(self) -> None:
        from ..dialog.factory import build_cascaded

        self.cascaded = build_cascaded(self.cfg, self._retrieve_blocking)
        self.pub_response = self.publisher(String, "dialog/response", 10)

    def _start_cascaded(self) -> None:
        self.subscription(String, "dialog/user_text", self._on_user_text, 10,
                          callback_group=MutuallyExclusiveCallbackGroup())  # one turn at a time

    def _setup_moshi(self) -> None:
        from ..dialog.engine import SAMPLE_RATE
        from ..dialog.engine_runner import EngineRunner
        from ..dialog.factory import build_moshi_engine

        self.engine = build_moshi_engine(self.cfg)
        self.runner = EngineRunner(self.engine, self._on_step, queue_frames=self.cfg.dialog.queue_frames)
        self.out_rate = SAMPLE_RATE
        self.pub_audio = self.publisher(AudioFrame, "dialog/audio_out", 10)
        self.pub_text = self.publisher(String, "dialog/text", 10)   # the monologue; other modes only read it
        self._reported = (0, 0)
        self.runner.start()

    def _start_moshi(self) -> None:
        self.sensor_subscription(AudioFrame, "audio_frame", self._on_audio, callback_group=self.group)
        if AudioDataStamped is not None:
            self.sensor_subscription(AudioDataStamped, "audio", self._on_audio, callback_group=self.group)
            self.info_subscription(AudioInfo, "audio_info", self._on_audio_info, callback_group=self.group)
        self.timer(10.0, self._report, callback_group=self.group)

    # -- MemChunks ------------------------------------------------------------------------------------
    def _on_chunk(self, msg: MemChunk) -> None:
        chunk = Chunk(msg.level, msg.user_id, msg.text, msg.token_count, msg.version, msg.tokenizer)
        had_l2 = LEVEL2 in self.composer.chunks
        if not self.composer.update(chunk):
            return
        if self.cfg.dialog.mode == "external":
            self.pub_prompt.publish(String(data=self.composer.render()))
        elif self.cascaded is not None:
            self.cascaded.set_memchunk(chunk)
        elif self.engine is not None:
            self.engine.set_memchunk(chunk.level, chunk.text)
            if had_l2 and LEVEL2 not in self.composer.chunks:  # a new user: drop the last one's Level-2
                self.engine.set_memchunk(LEVEL2, "")

    # -- <retr> ---------------------------------------------------------------------------------------
    def _on_text(self, msg: String) -> None:
        for query in self.parser.feed(msg.data):
            self._request_level2(query)

    def _request_level2(self, query: RetrQuery):
        if not self.retrieve.service_is_ready():
            self.get_logger().warning("retrieval service not available: <retr> query dropped")
            return None
        req = RetrieveText.Request(user_id=self.composer.user_id, relation_query=list(query.relation_query),
                                   keyword_query=list(query.keyword_query), k=0)
        future = self.retrieve.call_async(req)  # the answer arrives as a latched Level-2 MemChunk
        timer = self.create_timer(self.cfg.dialog.retrieve_timeout_s, lambda f=future: self._timeout(f))
        future.add_done_callback(lambda _f, tm=timer: self.destroy_timer(tm))
        return future

    def _timeout(self, future) -> None:
        if not future.done():
            future.cancel()
            self.get_logger().warning(f"Level-2 retrieval took over {self.cfg.dialog.retrieve_timeout_s} s; "
                                      "the dialog goes on without it")

    def _retrieve_blocking(self, query: RetrQuery) -> str:
        """For the cascaded mode, which runs in its own callback thread and may wait (bounded)."""
        future = self._request_level2(query)
        if future is None:
            raise RuntimeError("retrieval service not available")
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(self.cfg.dialog.retrieve_timeout_s) or future.cancelled():
            raise TimeoutError("retrieval timed out")
        return future.result().chunk.text

    # -- cascaded -------------------------------------------------------------------------------------
    def _on_user_text(self, msg: String) -> None:
        from ..memory.llm import LLMError

        try:
            answer = self.cascaded.respond(msg.data)
        except (ValueError, LLMError) as err:
            self.get_logger().warning(f"no answer: {err}")
            return
        self.pub_response.publish(String(data=answer))

    # -- moshi ----------------------------------------------------------------------------------------
    def _on_audio_info(self, msg) -> None:
        for early in self.audio_format.set(msg):
            self._on_audio(early)

    def _on_audio(self, msg) -> None:
        try:
            got = self.audio_format.decode(msg)
            if got is not None:
                self.runner.push_audio(*got)
        except MediaError as err:
            self.get_logger().warning(f"audio rejected: {err}", throttle_duration_sec=5.0)

    def _on_step(self, out) -> None:
        if out.pcm is not None:
            fields = audio_frame_fields(out.pcm, self.out_rate, now_s(self), "speaker")
            self.pub_audio.publish(fill(AudioFrame(), fields))
        if out.text:
            self.pub_text.publish(String(data=out.text))
        for query in out.queries:
            self._request_level2(query)

    def _report(self) -> None:
        s = self.runner.stats
        if (s.dropped, s.late) != self._reported:
            self.get_logger().warning(f"dialog model behind real time: {s.dropped} frames dropped, {s.late} late "
                                      f"(mean step {s.mean_step_ms:.1f} ms of an 80 ms budget)")
            self._reported = (s.dropped, s.late)

def main(args=None) -> None:
    run(DialogNode, args, threads=3)


if __name__ == "__main__":
    main()

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

from egomem_msgs.msg import MemChunk
from egomem_msgs.srv import RetrieveText
from rclpy.callback_groups import ReentrantCallbackGroup

from ..dialog.prompt import PromptComposer
from ..memchunk import LEVEL2
from ..memchunk import MemChunk as Chunk
from ..msg_conversions import AudioFormat
from ..retrieval.retr_protocol import RetrQuery, RetrStreamParser
from .dialog_modes import MODES
from .lifecycle import LifecycleNode
from .qos import LATCHED_QOS
from .runner import run


# Parameters applied while the node runs; every other one takes effect at the next configure.
DIALOG_LIVE = ("dialog.retrieve_timeout_s",)


class DialogNode(LifecycleNode):
    def __init__(self) -> None:
        super().__init__("dialog_node", ("dialog.", "memchunk."), live=DIALOG_LIVE)
        self.mode = None
        self.audio_format = AudioFormat()

    # -- lifecycle ------------------------------------------------------------------------------------
    def setup(self) -> None:
        """The mode's model and publishers; a moshi checkpoint is loaded here (DialogSetupError: FAILURE)."""
        self.composer = PromptComposer()
        self.parser = RetrStreamParser()
        self.group = ReentrantCallbackGroup()
        self.retrieve = self.client(RetrieveText, self.cfg.dialog.retrieve_service, callback_group=self.group)
        self.mode = MODES[self.cfg.dialog.mode](self)   # the one place the mode is chosen
        self.mode.setup()

    def start(self) -> None:
        for topic in ("memchunk/level1", "memchunk/level2"):
            self.subscription(MemChunk, topic, self._on_chunk, LATCHED_QOS, callback_group=self.group)
        self.mode.start()

    def teardown(self) -> None:
        if self.mode is not None:
            self.mode.stop()
        self.mode = None

    # -- MemChunks ------------------------------------------------------------------------------------
    def _on_chunk(self, msg: MemChunk) -> None:
        chunk = Chunk(msg.level, msg.user_id, msg.text, msg.token_count, msg.version, msg.tokenizer)
        had_l2 = LEVEL2 in self.composer.chunks
        if self.composer.update(chunk):
            self.mode.on_chunk(chunk, had_l2 and LEVEL2 not in self.composer.chunks)

    # -- <retr> ---------------------------------------------------------------------------------------
    def request_level2(self, query: RetrQuery):
        """Ask the memory node; the answer reaches the model as its latched Level-2 MemChunk."""
        if not self.retrieve.service_is_ready():
            self.get_logger().warning("retrieval service not available: <retr> query dropped")
            return None
        req = RetrieveText.Request(user_id=self.composer.user_id, relation_query=list(query.relation_query),
                                   keyword_query=list(query.keyword_query), k=0)
        future = self.retrieve.call_async(req)
        timer = self.create_timer(self.cfg.dialog.retrieve_timeout_s, lambda f=future: self._timeout(f))
        future.add_done_callback(lambda _f, tm=timer: self.destroy_timer(tm))
        return future

    def _timeout(self, future) -> None:
        if not future.done():
            future.cancel()
            self.get_logger().warning(f"Level-2 retrieval took over {self.cfg.dialog.retrieve_timeout_s} s; "
                                      "the dialog goes on without it")

    def retrieve_blocking(self, query: RetrQuery) -> str:
        """For the cascaded mode, which runs in its own callback thread and may wait (bounded)."""
        future = self.request_level2(query)
        if future is None:
            raise RuntimeError("retrieval service not available")
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(self.cfg.dialog.retrieve_timeout_s) or future.cancelled():
            raise TimeoutError("retrieval timed out")
        return future.result().chunk.text


def main(args=None) -> None:
    run(DialogNode, args, threads=3)


if __name__ == "__main__":
    main()

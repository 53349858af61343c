"""dialog_node: the dialog process. Mode `external` (built): the MemChunks become a latched system
prompt (`dialog/system_prompt`, std_msgs/String) for the robot's own dialog stack, and `<retr>` queries
in that stack's text (`dialog/text`) are answered through the memory node's RetrieveText service,
without ever blocking on it. Modes `cascaded` and `moshi` are not built yet: the node says so and exits.
"""
from __future__ import annotations

import sys

import rclpy
from egomem_msgs.msg import MemChunk
from egomem_msgs.srv import RetrieveText
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from std_msgs.msg import String

from ..dialog.prompt import PromptComposer
from ..memchunk import MemChunk as Chunk
from ..retrieval.retr_protocol import RetrStreamParser
from .util import LATCHED_QOS, declare_config, spin


class DialogNode(Node):
    def __init__(self) -> None:
        super().__init__("dialog_node")
        self.cfg = declare_config(self, ("dialog.",)).dialog
        self.composer = PromptComposer()
        self.parser = RetrStreamParser()
        group = ReentrantCallbackGroup()
        self.pub_prompt = self.create_publisher(String, "dialog/system_prompt", LATCHED_QOS)
        for topic in ("memchunk/level1", "memchunk/level2"):
            self.create_subscription(MemChunk, topic, self._on_chunk, LATCHED_QOS, callback_group=group)
        self.create_subscription(String, "dialog/text", self._on_text, 10, callback_group=group)
        self.retrieve = self.create_client(RetrieveText, self.cfg.retrieve_service, callback_group=group)

    def _on_chunk(self, msg: MemChunk) -> None:
        chunk = Chunk(msg.level, msg.user_id, msg.text, msg.token_count, msg.version, msg.tokenizer)
        if self.composer.update(chunk):
            self.pub_prompt.publish(String(data=self.composer.render()))

    def _on_text(self, msg: String) -> None:
        for query in self.parser.feed(msg.data):
            if not self.retrieve.service_is_ready():
                self.get_logger().warning("retrieval service not available: <retr> query dropped")
                continue
            req = RetrieveText.Request(user_id=self.composer.user_id, relation_query=list(query.relation_query),
                                       keyword_query=list(query.keyword_query), k=0)
            future = self.retrieve.call_async(req)  # the answer arrives as a latched Level-2 MemChunk
            timer = self.create_timer(self.cfg.retrieve_timeout_s, lambda f=future: self._timeout(f))
            future.add_done_callback(lambda _f, tm=timer: self.destroy_timer(tm))

    def _timeout(self, future) -> None:
        if not future.done():
            future.cancel()
            self.get_logger().warning(f"Level-2 retrieval took over {self.cfg.retrieve_timeout_s} s; "
                                      "the dialog goes on without it")


def main(args=None) -> None:
    rclpy.init(args=args)
    node = DialogNode()
    if node.cfg.mode != "external":
        node.get_logger().fatal(f"dialog.mode '{node.cfg.mode}' is not built yet in egomem_ros; use 'external' "
                                "(MemChunks as a system prompt for your dialog stack)")
        node.destroy_node()
        rclpy.try_shutdown()
        sys.exit(2)
    spin(node, threads=2)


if __name__ == "__main__":
    main()

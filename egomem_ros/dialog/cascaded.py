"""Cascaded dialog mode: transcript in, text out, through any OpenAI-compatible chat LLM.

The Level-1 / Level-2 MemChunks go into the system prompt (rendered by `PromptComposer`, the same text
the `external` mode publishes). Level-2 is fetched on demand, either as a `retrieve_memory` tool call
(models that support tools) or through the `<retr>` text protocol the full-duplex model uses. Either
way the retrieval runs with a timeout: if it is late the model answers with what it already has.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from ..memchunk import LEVEL2, MemChunk, clean_text
from ..memory.llm import ChatClient
from ..retrieval.retr_protocol import OPEN, RetrieveFn, RetrQuery, RetrStreamParser
from .prompt import PromptComposer

log = logging.getLogger(__name__)

RETRIEVE_TOOL = {
    "type": "function",
    "function": {
        "name": "retrieve_memory",
        "description": "Look up what you remember about people related to the current user "
                       "(family, friends, colleagues) and their facts and preferences.",
        "parameters": {
            "type": "object",
            "properties": {
                "relation_query": {"type": "array", "items": {"type": "string"},
                                   "description": "relation words, e.g. ['mother'] or ['colleague']"},
                "keyword_query": {"type": "array", "items": {"type": "string"},
                                  "description": "topic words, e.g. ['exercise', 'sport']"},
            },
        },
    },
}
TOOL_HELP = "If the answer needs someone related to the user that is not shown above, call retrieve_memory."


class CascadedDialog:
    def __init__(self, client: ChatClient, retrieve: RetrieveFn | None = None, *, use_tools: bool = True,
                 history_turns: int = 8, retrieve_timeout_s: float = 2.0):
        self.client, self.retrieve = client, retrieve
        self.use_tools, self.history_turns = use_tools, history_turns
        self.retrieve_timeout_s = retrieve_timeout_s
        self.composer = PromptComposer()
        self.history: list[dict] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="egomem-retr")

    def set_memchunk(self, chunk: MemChunk) -> bool:
        """Newest chunk per level; a new Level-1 user also clears Level-2 and the chat history."""
        previous_user = self.composer.user_id
        changed = self.composer.update(dataclasses.replace(chunk, text=clean_text(chunk.text)))
        if changed and self.composer.user_id != previous_user:
            self.history.clear()
        return changed

    def system_prompt(self) -> str:
        prompt = self.composer.render()
        return prompt + "\n" + TOOL_HELP if self.use_tools and self.retrieve else prompt

    def respond(self, user_text: str) -> str:
        user_text = clean_text(user_text).strip()
        if not user_text:
            raise ValueError("empty transcript: nothing to answer")
        turns = self.history[-2 * self.history_turns:]
        messages = [{"role": "system", "content": self.system_prompt()}, *turns,
                    {"role": "user", "content": user_text}]
        tools = [RETRIEVE_TOOL] if self.use_tools and self.retrieve else None
        message = self.client.chat_message(messages, tools)
        calls = [c for c in message.get("tool_calls") or [] if c.get("function", {}).get("name") == "retrieve_memory"]
        if calls:
            messages.append({"role": "assistant", "content": message.get("content") or "", "tool_calls": calls})
            for call in calls:
                found = self._retrieve(_query_from_tool_call(call))
                messages.append({"role": "tool", "tool_call_id": call.get("id", ""), "content": found or "nothing found"})
            messages[0] = {"role": "system", "content": self.system_prompt()}
            message = self.client.chat_message(messages)
        answer = message.get("content") or ""
        if OPEN in answer:  # the text protocol: retrieve, then ask again with Level-2 filled in
            queries = RetrStreamParser().feed(answer)
            for query in queries:
                self._retrieve(query)
            messages[0] = {"role": "system", "content": self.system_prompt()}
            answer = self.client.chat_message(messages).get("content") or ""
            answer = answer.split(OPEN)[0]  # never speak a second lookup aloud
        answer = answer.strip()
        self.history += [{"role": "user", "content": user_text}, {"role": "assistant", "content": answer}]
        return answer

    def _retrieve(self, query: RetrQuery) -> str:
        """Level-2 text for `query` (also set as the Level-2 chunk); empty when late or failing."""
        if self.retrieve is None:
            return ""
        future = self._pool.submit(self.retrieve, query)
        try:
            text = future.result(timeout=self.retrieve_timeout_s)
        except FutureTimeout:
            log.warning("Level-2 retrieval over %.2f s: answering without it", self.retrieve_timeout_s)
            return ""
        except Exception as err:  # noqa: BLE001 - a failing retrieval must not end the dialog
            log.warning("Level-2 retrieval failed (%s): answering without it", err)
            return ""
        current = self.composer.chunks.get(LEVEL2)
        version = (current.version if current else 0) + 1
        self.composer.update(MemChunk(LEVEL2, self.composer.user_id, text, 0, version, "cascaded"))
        return text


def _query_from_tool_call(call: dict) -> RetrQuery:
    try:
        args = json.loads(call.get("function", {}).get("arguments") or "{}")
    except json.JSONDecodeError:
        log.warning("retrieve_memory called with invalid JSON arguments: %r", call)
        args = {}

    def words(key: str) -> tuple[str, ...]:
        value = args.get(key) or []
        value = [value] if isinstance(value, str) else value
        return tuple(str(w).strip() for w in value if str(w).strip())

    return RetrQuery(words("relation_query"), words("keyword_query"))

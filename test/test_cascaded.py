"""Cascaded dialog mode against a scripted OpenAI-compatible server (real HTTP, real client)."""
from __future__ import annotations

import json
import logging
import time

import pytest
from test_llm_client import ScriptedServer, client

from egomem_ros.dialog.cascaded import CascadedDialog
from egomem_ros.memchunk import LEVEL1, MemChunk
from egomem_ros.retrieval.retr_protocol import RetrQuery

ALICE = MemChunk(LEVEL1, "u1", "User: Alice (id u1)\nFacts:\n- Alice is a nurse", 12, 1, "approx-v1")
BOB = MemChunk(LEVEL1, "u2", "User: Bob (id u2)", 6, 2, "approx-v1")
MOTHER = "Related memory:\n- Carol is Alice's mother; Carol likes swimming every morning"


@pytest.fixture
def server():
    servers = []

    def make(*script):
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def _tool_call(relations, keywords):
    return {"role": "assistant", "content": None, "tool_calls": [{
        "id": "call_1", "type": "function",
        "function": {"name": "retrieve_memory",
                     "arguments": json.dumps({"relation_query": relations, "keyword_query": keywords})}}]}


def test_tool_call_retrieves_level2_and_answers_with_it(server):
    s = server((200, _tool_call(["mother"], ["exercise"]), 0), (200, "Yes, Carol swims every morning.", 0))
    asked = []
    dialog = CascadedDialog(client(s), lambda q: asked.append(q) or MOTHER)
    dialog.set_memchunk(ALICE)
    assert dialog.respond("Does my mother like physical exercise?") == "Yes, Carol swims every morning."
    assert asked == [RetrQuery(("mother",), ("exercise",))]
    first, second = (r["body"] for r in s.requests)
    assert first["tools"][0]["function"]["name"] == "retrieve_memory"
    assert "Alice is a nurse" in first["messages"][0]["content"]
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": "call_1", "content": MOTHER}
    assert "Carol likes swimming" in second["messages"][0]["content"]  # Level-2 now in the system prompt


def test_text_protocol_retrieves_then_asks_again(server):
    s = server((200, "<retr>\nmother\nexercise<answer>", 0), (200, "She swims.", 0))
    asked = []
    dialog = CascadedDialog(client(s), lambda q: asked.append(q) or MOTHER, use_tools=False)
    dialog.set_memchunk(ALICE)
    assert dialog.respond("Does my mother exercise?") == "She swims."
    assert asked == [RetrQuery(("mother",), ("exercise",))]
    assert "tools" not in s.requests[0]["body"]
    assert "Carol likes swimming" in s.requests[1]["body"]["messages"][0]["content"]


def test_late_retrieval_is_skipped_and_the_dialog_answers(server, caplog):
    s = server((200, _tool_call(["mother"], []), 0), (200, "I am not sure.", 0))

    def slow(query):
        time.sleep(0.5)
        return MOTHER

    dialog = CascadedDialog(client(s), slow, retrieve_timeout_s=0.05)
    dialog.set_memchunk(ALICE)
    with caplog.at_level(logging.WARNING):
        assert dialog.respond("Does my mother exercise?") == "I am not sure."
    assert "answering without it" in caplog.text
    assert s.requests[1]["body"]["messages"][-1]["content"] == "nothing found"


def test_new_user_clears_history_and_level2(server):
    s = server((200, _tool_call(["mother"], []), 0), (200, "She swims.", 0), (200, "Hello Bob.", 0))
    dialog = CascadedDialog(client(s), lambda q: MOTHER)
    dialog.set_memchunk(ALICE)
    dialog.respond("Does my mother exercise?")
    dialog.set_memchunk(BOB)
    dialog.respond("Hi!")
    messages = s.requests[-1]["body"]["messages"]
    assert len(messages) == 2 and "Carol" not in messages[0]["content"] and "Bob" in messages[0]["content"]


def test_empty_transcript_is_refused(server):
    dialog = CascadedDialog(client(server()), None)
    with pytest.raises(ValueError, match="empty transcript"):
        dialog.respond("   ")

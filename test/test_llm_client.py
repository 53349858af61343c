"""The real OpenAI-compatible client against a small local HTTP server that answers from a script."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from egomem_ros.memory.extraction import LLMExtractor, Turn
from egomem_ros.memory.llm import ChatClient, LLMConfig, LLMError, extract_json


class ScriptedServer:
    """Each POST to /v1/chat/completions pops the next (status, content, delay) from `script`.

    `content` is the answer text, or a whole assistant message (a dict, e.g. with `tool_calls`).
    """

    def __init__(self, script):
        self.script = list(script)
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                status, content, delay = outer.script.pop(0) if outer.script else (500, "", 0)
                time.sleep(delay)
                message = content if isinstance(content, dict) else {"role": "assistant", "content": content}
                payload = json.dumps({"choices": [{"message": message}]}) if status == 200 else "error"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(payload.encode())
                except BrokenPipeError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def serve():
    servers = []

    def make(*script):
        s = ScriptedServer(script)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


GOOD = json.dumps({"summary": "Emily introduced herself.", "name": "Emily", "facts": ["works as a nurse"],
                   "preferences": ["loves tennis"], "events": [], "relations": [{"name": "Sarah", "relation": "colleague"}]})
TURNS = [Turn(speaker="user", text="I'm Emily, a nurse. I love tennis. Sarah is my colleague.")]


def client(server, **kw):
    return ChatClient(LLMConfig(base_url=server.url, model="test-model", api_key="sk-test", timeout_s=kw.pop("timeout_s", 2.0),
                                backoff_s=0.01, **kw))


def test_valid_answer_and_request_shape(serve):
    s = serve((200, GOOD, 0))
    ex = LLMExtractor(client(s)).extract(TURNS)
    assert ex.source == "llm" and ex.name == "Emily" and ex.relations[0].relation == "colleague"
    req = s.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test"
    assert req["body"]["model"] == "test-model" and req["body"]["response_format"] == {"type": "json_object"}
    assert "Emily" in req["body"]["messages"][-1]["content"]


def test_prose_and_fences_are_parsed():
    assert extract_json("Sure! ```json\n{\"a\": 1}\n``` hope it helps") == {"a": 1}
    assert extract_json("Here you go: {\"a\": [1, 2]} bye") == {"a": [1, 2]}


def test_invalid_json_gets_one_repair(serve):
    s = serve((200, "I think the user is called Emily.", 0), (200, GOOD, 0))
    assert LLMExtractor(client(s)).extract(TURNS).name == "Emily"
    assert len(s.requests) == 2 and "not valid" in s.requests[1]["body"]["messages"][-1]["content"]


def test_invalid_twice_raises(serve):
    s = serve((200, "{\"facts\": \"not a list\"}", 0), (200, "still prose", 0))
    with pytest.raises(LLMError, match="still invalid"):
        LLMExtractor(client(s)).extract(TURNS)


def test_retries_on_5xx_and_429(serve):
    s = serve((500, "", 0), (429, "", 0), (200, GOOD, 0))
    assert LLMExtractor(client(s, retries=3)).extract(TURNS).name == "Emily"
    assert len(s.requests) == 3


def test_timeout_is_bounded(serve):
    s = serve((200, GOOD, 1.5), (200, GOOD, 1.5))
    t = time.perf_counter()
    with pytest.raises(LLMError, match="unavailable"):
        client(s, timeout_s=0.3, retries=1).chat([{"role": "user", "content": "hi"}])
    assert time.perf_counter() - t < 3.0


def test_unreachable_endpoint(serve):
    c = ChatClient(LLMConfig(base_url="http://127.0.0.1:9/v1", timeout_s=0.5, retries=1, backoff_s=0.01))
    with pytest.raises(LLMError):
        c.chat([{"role": "user", "content": "hi"}])


def test_4xx_is_not_retried(serve):
    s = serve((401, "", 0))
    with pytest.raises(LLMError, match="refused"):
        client(s).chat([{"role": "user", "content": "hi"}])
    assert len(s.requests) == 1


@pytest.mark.parametrize("answer", [json.dumps({"Facts": ["works as a nurse"]}),      # a misspelt key
                                    json.dumps({}),                                    # nothing at all
                                    json.dumps({**json.loads(GOOD), "delete_user": "Emily"})])
def test_extractor_answers_with_wrong_keys_are_invalid_not_empty(serve, answer):
    """Such an answer used to validate as an empty extraction: the session was committed with its facts lost."""
    s = serve((200, answer, 0), (200, answer, 0))
    with pytest.raises(LLMError, match="still invalid"):
        LLMExtractor(client(s)).extract(TURNS)


def test_update_agent_answer_needs_its_operations(serve):
    from egomem_ros.memory.update_agent import OpList

    s = serve((200, json.dumps({"ops": [{"op": "ADD", "text": "x"}]}), 0), (200, json.dumps({"ops": []}), 0),
              (200, json.dumps({"operations": []}), 0))
    c = client(s)
    with pytest.raises(LLMError, match="still invalid"):
        c.ask_json("sys", "user", OpList)
    assert c.ask_json("sys", "user", OpList).operations == []   # "nothing to do" is a valid answer


def test_non_text_content_is_an_llm_error(serve):
    s = serve((200, {"role": "assistant", "content": [{"type": "text", "text": GOOD}]}, 0))
    with pytest.raises(LLMError, match="not text"):
        client(s).chat([{"role": "user", "content": "hi"}])


def test_llm_items_take_the_offline_shape_and_path(serve, store):
    """An LLM answer with items about a named friend and a dated event goes through the same grounding and
    writing as the offline extractor: the friend's item lands on a placeholder, not on the speaker; an
    item nobody said is dropped; the conversation's date reaches the prompt."""
    from egomem_ros.memory.consolidate import Consolidator, SessionInput
    from egomem_ros.memory.update_agent import RuleUpdateAgent

    answer = json.dumps({"summary": "Talked about a beagle and football.", "name": "Emily", "facts": [],
                         "preferences": [], "events": ["adopted a beagle named Biscuit (6 May 2024)", "won the lottery"],
                         "relations": [{"name": "Jack", "relation": "friend"}],
                         "others": [{"name": "Jack", "kind": "preference", "text": "hates football"}]})
    s = serve((200, answer, 0))
    turns = [Turn(speaker="user", text="I'm Emily. We adopted a beagle, his name is Biscuit. My friend Jack hates football.")]
    c = Consolidator(store, LLMExtractor(client(s)), RuleUpdateAgent(), lambda s: None)
    out = c.process(SessionInput("s1", 1_715_000_000.0, 1_715_000_060.0, turns))
    assert "6 May 2024" in s.requests[0]["body"]["messages"][-1]["content"]
    assert [f.text for f in store.facts(out.user_id)] == ["adopted a beagle named Biscuit (6 May 2024)"]
    jack = next(u for u in store.list_users() if u.name == "Jack")
    assert jack.placeholder and [f.text for f in store.facts(jack.id)] == ["hates football"]


def test_the_timeout_bounds_the_whole_answer_not_each_read():
    """An endpoint that trickles its answer a byte at a time never makes a read wait `timeout_s`, but the
    whole answer must come within it."""
    class Trickle(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": "{}"}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            try:
                for b in payload:
                    self.wfile.write(bytes([b]))
                    self.wfile.flush()
                    time.sleep(0.1)
            except (BrokenPipeError, ConnectionResetError):
                pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        client = ChatClient(LLMConfig(base_url=f"http://127.0.0.1:{httpd.server_port}/v1", model="m", timeout_s=1.0,
                                      retries=0))
        t0 = time.monotonic()
        with pytest.raises(LLMError, match="unavailable"):
            client.chat([{"role": "user", "content": "hi"}])
        assert time.monotonic() - t0 < 5.0     # the answer takes 6+ s to trickle; each read only 0.1 s
    finally:
        httpd.shutdown()


def test_json_nested_too_deep_is_an_invalid_answer_not_a_crash(serve):
    from pydantic import BaseModel

    class Facts(BaseModel):
        facts: list

    deep = '{"facts": ' + "[" * 200_000 + "]" * 200_000 + "}"
    server = serve((200, deep, 0), (200, deep, 0))
    client = ChatClient(LLMConfig(base_url=server.url, model="m", retries=0))
    with pytest.raises(LLMError, match="invalid"):
        client.ask_json("system", "user", Facts)

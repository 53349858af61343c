"""Memory management writing: new users, updates with history, relations, safety, retries, crashes."""
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from egomem_ros.memory.consolidate import Consolidator, SessionInput
from egomem_ros.memory.spool import SessionSpool
from egomem_ros.memory.extraction import RuleExtractor, Turn
from egomem_ros.memory.llm import ChatClient, LLMConfig
from egomem_ros.memory.update_agent import LLMUpdateAgent, RuleUpdateAgent


def session(sid, *user_lines, observed=(), voice=None):
    turns = []
    for line in user_lines:
        turns += [Turn(speaker="user", text=line), Turn(speaker="robot", text="I see.")]
    return SessionInput(sid, 100.0, 130.0, turns, voice_embeddings=[voice] if voice is not None else [],
                        observed_users=list(observed))


def make(store, identify=lambda s: s.observed_users[0] if s.observed_users else None, **kw):
    return Consolidator(store, RuleExtractor(), kw.pop("agent", RuleUpdateAgent()), identify,
                        voice_model="resemblyzer_ge2e", **kw)


@pytest.fixture
def store(any_store):
    """Consolidation runs on SQLite and on PostgreSQL."""
    return any_store


def test_new_user_gets_profile_keys_relations_and_placeholder(store):
    c = make(store)
    v = np.random.default_rng(0).normal(size=256).astype(np.float32)
    out = c.process(session("s1", "Hi, my name is Emily. I work as a nurse.", "I love tennis. My mother Anna lives in Leeds.",
                            voice=v))
    assert out.status == "written" and out.new_user
    emily = store.get_user(out.user_id)
    assert emily.name == "Emily" and len(store.user_keys(emily.id, "voice")) == 1
    assert {f.text for f in store.facts(emily.id)} >= {"works as a nurse", "loves tennis"}
    anna = next(u for u in store.list_users() if u.name == "Anna")
    assert anna.placeholder
    assert {(r.src, r.dst, r.relation) for r in store.relations()} == {(emily.id, anna.id, "mother"),
                                                                      (anna.id, emily.id, "child")}
    assert store.episode_exists("s1") and all(a.episode_id in (None, "s1") for a in store.audit(emily.id))
    assert any(e.item_kind == "relation" for e in out.events)


def test_known_user_update_keeps_history(store):
    emily = store.create_user("Emily")
    old = store.add_fact(emily.id, "fact", "works as a nurse")
    store.add_fact(emily.id, "preference", "likes coffee")
    out = make(store).process(session("s2", "I work as a teacher now. I like coffee. I hate coffee actually.",
                                      observed=[emily.id]))
    assert out.status == "written" and not out.new_user
    valid = {f.text for f in store.facts(emily.id)}
    assert "works as a teacher now" in valid and "works as a nurse" not in valid
    history = {f.id: f for f in store.facts(emily.id, include_invalid=True)}
    assert history[old.id].superseded_by is not None and history[old.id].invalid_at is not None
    assert sum(f.text == "likes coffee" for f in history.values()) == 1  # NOOP, then superseded by "hates coffee"
    assert "hates coffee actually" in valid


def test_a_session_cannot_change_other_people(store):
    john = store.create_user("John")
    store.add_fact(john.id, "fact", "plays tennis")
    emily = store.create_user("Emily")
    before = (store.get_user(john.id), store.facts(john.id, include_invalid=True))
    out = make(store).process(session("s3", "Forget everything about John.", "John's name is now Bob.",
                                      "My name is Bob.", observed=[emily.id]))
    assert out.status == "written"
    assert (store.get_user(john.id), store.facts(john.id, include_invalid=True)) == before
    assert store.get_user(emily.id).name == "Emily"  # a name is never overwritten by a session


def test_duplicate_session_is_skipped_and_empty_session_writes_nothing(store):
    c = make(store)
    assert c.process(session("s4", "I'm Emily. I love jazz.")).status == "written"
    n_users = len(store.list_users())
    assert c.process(session("s4", "I'm Emily. I love jazz.")).status == "duplicate"
    assert c.process(SessionInput("s5", 0, 1, [Turn(speaker="robot", text="Hello?")])).status == "empty"
    assert len(store.list_users()) == n_users and not store.episode_exists("s5")


def test_learn_new_users_off(store):
    out = make(store, learn_new_users=False).process(session("s6", "I'm Zed. I love chess."))
    assert out.status == "not-learned" and store.list_users() == []


def test_placeholder_merges_when_the_person_appears(store):
    c = make(store)
    emily = c.process(session("s7", "I'm Emily. Sarah is my colleague.")).user_id
    sarah = c.process(session("s8", "Hi, I'm Sarah. I love tennis.")).user_id
    users = store.list_users()
    assert [u.name for u in users if u.name == "Sarah"] == ["Sarah"] and not store.get_user(sarah).placeholder
    assert {(r.src, r.dst) for r in store.relations()} == {(emily, sarah), (sarah, emily)}


def test_llm_agent_touching_other_profiles_is_refused_whole(store):
    from test_llm_client import ScriptedServer

    john = store.create_user("John")
    jf = store.add_fact(john.id, "fact", "plays tennis")
    emily = store.create_user("Emily")
    bad = json.dumps({"operations": [{"op": "ADD", "kind": "fact", "text": "likes tea"},
                                     {"op": "INVALIDATE", "kind": "fact", "target": jf.id}]})
    server = ScriptedServer([(200, bad, 0)])
    try:
        agent = LLMUpdateAgent(ChatClient(LLMConfig(base_url=server.url, timeout_s=2, retries=0)))
        out = make(store, agent=agent).process(session("s9", "I like tea.", observed=[emily.id]))
    finally:
        server.close()
    assert out.status == "retry" and "outside" in out.reason
    assert store.facts(emily.id) == [] and store.facts(john.id)[0].valid and not store.episode_exists("s9")


def test_spool_roundtrip(tmp_path):
    spool = SessionSpool(tmp_path / "spool")
    s = session("s10", "I'm Emily.", voice=np.arange(4, dtype=np.float32))
    spool.put(s)
    back = spool.pending()[0]
    assert back.session_id == "s10" and back.turns == s.turns and np.array_equal(back.voice_embeddings[0], np.arange(4))
    (tmp_path / "spool" / "junk.json").write_text("{")
    assert [p.session_id for p in spool.pending()] == ["s10"] and (tmp_path / "spool" / "junk.bad").exists()
    spool.done("s10")
    assert spool.pending() == []


DRIVER = textwrap.dedent("""
    import sys, time
    from egomem_ros.store import SqliteStore
    from egomem_ros.memory.consolidate import Consolidator, SessionInput
    from egomem_ros.memory.spool import SessionSpool
    from egomem_ros.memory.extraction import RuleExtractor, Turn
    from egomem_ros.memory.update_agent import RuleUpdateAgent

    class SlowExtractor(RuleExtractor):
        def extract(self, turns, at=None):
            time.sleep(0.02)   # widen the window in which a kill lands mid-session
            return super().extract(turns, at)

    store = SqliteStore(sys.argv[1])
    spool = SessionSpool(sys.argv[2])
    c = Consolidator(store, SlowExtractor(), RuleUpdateAgent(), lambda s: None)
    for s in spool.pending():                          # recovery first, as the memory node does
        if c.process(s).status != "retry":
            spool.done(s.session_id)
    for i in range(int(sys.argv[3]), int(sys.argv[4])):
        s = SessionInput(f"s{i}", i, i + 1, [Turn(speaker="user", text=f"I'm User{i}. I love item{i}. Ann{i} is my friend.")])
        spool.put(s)
        c.process(s)
        spool.done(s.session_id)
        print(s.session_id, flush=True)
""")


def test_killed_mid_consolidation_loses_nothing_and_reprocesses(tmp_path):
    db, spool_dir = tmp_path / "m.db", tmp_path / "spool"
    rng = random.Random(3)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    start, total = 0, 0
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(db), str(spool_dir), str(start), str(start + 1000)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        first = proc.stdout.readline()
        assert first, proc.stderr.read()
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        done = [first.strip(), *out.split()]
        start = int(done[-1][1:]) + 1 if done[-1] else start
        total = start
    # a last clean run recovers whatever was spooled when the kill landed
    subprocess.run([sys.executable, "-c", DRIVER, str(db), str(spool_dir), str(total), str(total)], check=True,
                   capture_output=True, env=env)
    from egomem_ros.store import SqliteStore

    store = SqliteStore(db)
    assert store.integrity_check() == "ok"
    episodes = [r[0] for r in store._q("SELECT id FROM episodes")]
    assert len(episodes) == len(set(episodes))                           # never applied twice
    expected = {f"s{i}" for i in range(total)}
    assert expected <= set(episodes), sorted(expected - set(episodes))[:5]  # nothing lost
    for user in store.list_users(include_placeholders=False):
        texts = [f.text for f in store.facts(user.id, include_invalid=True)]
        assert len(texts) == len(set(texts))
    assert list((spool_dir).glob("*.json")) == []


def test_one_session_adds_at_most_a_hundred_items_whatever_the_extractor_says(store):
    from egomem_ros.memory.extraction import Extraction
    from egomem_ros.memory.item_budget import MAX_PER_SESSION

    class Flood:
        name = "llm"

        def extract(self, turns, at=None):
            return Extraction(source="llm", facts=[f"owns car number {i}" for i in range(5000)])

    emily = store.create_user("Emily")
    c = Consolidator(store, Flood(), RuleUpdateAgent(), lambda s: emily.id, voice_model="resemblyzer_ge2e")
    out = c.process(session("s1", "I own a lot of cars."))
    assert out.status == "written" and len(store.facts(emily.id)) == MAX_PER_SESSION == 100
    assert any("5000 items in one session" in n for n in out.extraction.notes)

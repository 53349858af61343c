"""Sessions that cannot be written because of what they hold, and spool files that are not sessions, are
moved aside with the reason: they never block `forget` or every later session of that memory."""
import json
import subprocess
import sys

import pytest

from egomem_ros.memory.consolidate import Consolidator, SessionInput
from egomem_ros.memory.extraction import Turn
from egomem_ros.memory.manager import MemoryManager
from egomem_ros.memory.spool import SessionSpool
from egomem_ros.memory.update_agent import RuleUpdateAgent


def _manager(store, tmp_path) -> MemoryManager:
    from egomem_ros.memory.buffer import StreamBuffer
    from egomem_ros.memory.disclosure import offline_extractor
    from egomem_ros.memory.trigger import BaselineSegmenter

    return MemoryManager(store, StreamBuffer(60), BaselineSegmenter(),
                         Consolidator(store, offline_extractor(30), RuleUpdateAgent(), lambda s: None),
                         SessionSpool(tmp_path / "memory.db.sessions"))


def _session(sid: str, text: str, start: float = 0.0) -> SessionInput:
    return SessionInput(sid, start, start + 5, [Turn(speaker="user", text=text)])


@pytest.mark.parametrize("said", [f"Hi robot, my name is A{'a' * 150}. I work as a pilot.",
                                  f"My brother B{'b' * 120} is a pilot."])
def test_a_session_the_store_refuses_is_set_aside_and_later_ones_are_written(store, tmp_path, said):
    manager = _manager(store, tmp_path)
    manager.spool.put(_session("s1-long", said))
    manager.spool.put(_session("s2-fine", "Hi robot, my name is Emily. I work as a nurse.", 10.0))
    outcomes = {o.session_id: o for o in manager.retry_spooled()}
    assert outcomes["s1-long"].status == "rejected" and "name" in outcomes["s1-long"].reason
    assert outcomes["s2-fine"].status == "written"
    assert [u.name for u in store.list_users()] == ["Emily"]
    folder = manager.spool.folder
    assert not list(folder.glob("*.json"))                       # nothing waits in front of later sessions
    assert (folder / "s1-long.bad").exists() and "name" in (folder / "s1-long.reason").read_text()
    assert manager.retry_spooled() == []                         # and nothing is retried on the next run


def test_a_store_that_fails_itself_still_stops_the_run(store, tmp_path, monkeypatch):
    """Only the session's own content is set aside: a store fault propagates, and the session waits."""
    from egomem_ros.store import StoreError

    manager = _manager(store, tmp_path)
    manager.spool.put(_session("s1", "Hi robot, my name is Emily."))

    def broken(*a, **k):
        raise StoreError("database is locked")
    monkeypatch.setattr(store, "list_users", broken)
    monkeypatch.setattr(manager.consolidator, "process_all", broken)
    with pytest.raises(StoreError):
        manager.retry_spooled()
    assert (manager.spool.folder / "s1.json").exists()


MALFORMED = ["[]", "null", "5", '{"session_id": "s", "start": 0, "end": 1, "turns": [["user", "hi"]], '
             '"face_embeddings": [], "voice_embeddings": [], "observed_users": []}',
             '{"session_id": "s", "start": 0, "end": 1, "turns": [], "face_embeddings": 5, '
             '"voice_embeddings": [], "observed_users": []}', "{", '{"session_id": "s"}']


@pytest.mark.parametrize("text", MALFORMED)
def test_forget_works_past_a_malformed_spool_file(tmp_path, text):
    from egomem_ros.store import SqliteStore

    db = tmp_path / "out.db"
    with SqliteStore(db) as store:
        store.create_user("Emily")
    spool = tmp_path / "out.db.sessions"
    spool.mkdir()
    (spool / "s1-x.json").write_text(text)
    r = subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", "forget", "Emily", "--db", str(db), "--yes"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    with SqliteStore(db) as store:
        assert store.list_users() == []
    assert not (spool / "s1-x.json").exists()


def test_forget_erases_the_sessions_set_aside_that_name_the_person(store, tmp_path):
    from egomem_ros.memory.manager import forget_person

    manager = _manager(store, tmp_path)
    emily = store.create_user("Emily")
    manager.spool.put(SessionInput("s1", 0, 5, [Turn(speaker="user", text=f"My brother {'B' * 121} knows Emily.")],
                                   observed_users=[emily.id]))
    manager.spool.put(_session("s2", "It is raining."))
    manager.spool.reject("s1", "a name too long")
    manager.spool.reject("s2", "something else")
    forget_person(store, manager.spool, emily.id)
    left = sorted(p.name for p in manager.spool.folder.iterdir())
    assert left == ["s2.bad", "s2.reason"], left
    assert "Emily" not in json.dumps([p.read_text() for p in manager.spool.folder.iterdir()])


def test_each_postgresql_database_has_its_own_spool(tmp_path, monkeypatch):
    from egomem_ros.config import EgomemConfig
    from egomem_ros.memory.locations import spool_dir

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    cfg = EgomemConfig()
    x1 = spool_dir(cfg, "postgresql://egomem@db.local/x1")
    x2 = spool_dir(cfg, "postgresql://egomem@db.local/x2")
    other_server = spool_dir(cfg, "postgresql://egomem@db2.local/x1")
    assert len({x1, x2, other_server}) == 3
    assert spool_dir(cfg, "postgresql://egomem:hunter2@db.local:5432/x1") == x1   # the password is no part of it
    assert "hunter2" not in str(spool_dir(cfg, "postgresql://egomem@/x1?host=/run/pg&password=hunter2"))
    assert spool_dir(cfg, "postgresql://egomem@/x1?host=/run/pg") != spool_dir(cfg, "postgresql://egomem@/x1?host=/tmp")


def test_an_update_that_supersedes_one_fact_twice_is_set_aside(store, tmp_path):
    """An LLM update agent that UPDATEs the same fact twice in one answer: the store refuses the second
    ("already invalid"); the session is set aside, nothing of it is half-written, and the next one is."""
    from egomem_ros.memory.update_agent import MemoryOp

    manager = _manager(store, tmp_path)
    emily = store.create_user("Emily")
    fact = store.add_fact(emily.id, "fact", "works as a nurse")

    class TwiceAgent:
        name = "llm"

        def decide(self, existing, ex):
            return [MemoryOp(op="UPDATE", kind="fact", text="works as a doctor", target=fact.id),
                    MemoryOp(op="UPDATE", kind="fact", text="works as a surgeon", target=fact.id)]

    manager.consolidator.agent = TwiceAgent()
    manager.consolidator.identify = lambda s: emily.id
    manager.spool.put(_session("s1", "I work as a doctor now."))
    [outcome] = manager.retry_spooled()
    assert outcome.status == "rejected" and "already invalid" in outcome.reason
    assert [f.text for f in store.facts(emily.id)] == ["works as a nurse"]   # the transaction was rolled back
    assert (manager.spool.folder / "s1.bad").exists() and not (manager.spool.folder / "s1.json").exists()


def test_a_session_committed_by_another_process_meanwhile_is_a_duplicate(any_store, monkeypatch):
    """Two replays of one bag on one shared database: both check that the episode is new, and the second
    insert meets the first's commit. That session is a duplicate, rolled back whole, not a failure."""
    from egomem_ros.memory.disclosure import offline_extractor

    consolidator = Consolidator(any_store, offline_extractor(30), RuleUpdateAgent(), lambda s: None)
    s = _session("s1", "Hi robot, my name is Emily. I work as a nurse.")
    assert consolidator.process(s).status == "written"
    monkeypatch.setattr(any_store, "episode_exists", lambda episode_id: False)   # the race: both saw none
    again = consolidator.process(s)
    assert again.status == "duplicate", again
    assert [u.name for u in any_store.list_users()] == ["Emily"]


def test_forget_deletes_the_reports_that_name_the_person(store, tmp_path):
    """`egomem report` / `replay --report` register what they write; `forget` deletes the reports that
    hold the person's name or id and says which, and leaves the others."""
    from egomem_ros.memory.locations import register_report, reports_registry
    from egomem_ros.memory.manager import forget_person

    manager = _manager(store, tmp_path)
    emily, sarah = store.create_user("Emily"), store.create_user("Sarah")
    about_emily, about_sarah = tmp_path / "emily.html", tmp_path / "sarah.html"
    about_emily.write_text(f"<p>Emily ({emily.id}) works as a nurse</p>")
    about_sarah.write_text(f"<p>Sarah ({sarah.id}) loves tennis</p>")
    for report in (about_emily, about_sarah):
        register_report(store.path, report)
    gone = forget_person(store, manager.spool, emily.id)
    assert gone.reports == [about_emily.resolve()] and not about_emily.exists() and about_sarah.exists()
    assert "emily" not in reports_registry(store.path).read_text()


def test_a_session_an_llm_fails_on_for_days_is_set_aside_but_an_outage_sets_nothing_aside(store, tmp_path):
    from egomem_ros.memory import manager as M
    from egomem_ros.memory.consolidate import SessionOutcome

    manager = _manager(store, tmp_path)
    manager.consolidator.process_all = lambda s: [SessionOutcome(s.session_id, "retry", reason="HTTP 500")]
    manager.spool.put(_session("s1", "Hi robot, my name is Emily."))
    for _ in range(M.MAX_TRIES + 2):                       # an hour's outage: tried often, kept waiting
        assert [o.status for o in manager.retry_spooled()] == ["retry"]
    path = manager.spool.folder / "s1.tries"
    tries, _ = path.read_text().split()
    path.write_text(f"{tries} {float(path.stat().st_mtime) - M.GIVE_UP_AFTER_S - 1}\n")   # the first try a day ago
    [outcome] = manager.retry_spooled()
    assert outcome.status == "rejected" and "HTTP 500" in outcome.reason
    assert (manager.spool.folder / "s1.bad").exists() and not path.exists()


def test_two_new_items_of_one_slot_replace_the_old_item_once():
    """"I work as a doctor. I work as a teacher." over "works as a nurse": one UPDATE, then an ADD. Two
    UPDATEs of one fact made the store refuse the whole session (found by the fault corpus)."""
    from egomem_ros.memory.extraction import Extraction
    from egomem_ros.store import SqliteStore

    store = SqliteStore(":memory:")
    emily = store.create_user("Emily")
    nurse = store.add_fact(emily.id, "fact", "works as a nurse")
    ex = Extraction(source="rules", facts=["works as a doctor", "works as a teacher"])
    ops = RuleUpdateAgent().decide(store.facts(emily.id), ex)
    assert [(o.op, o.target) for o in ops] == [("UPDATE", nurse.id), ("ADD", None)]

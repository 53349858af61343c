"""Fault cases of the memory: store faults, malformed spool files, bad LLM answers.

Every case writes its own bad input at test time and says what a user must see. A builder gets a `Kit`
(a folder of its own, a bad LLM endpoint, a PostgreSQL database) and returns the `Case` (faultkit.py);
`case` registers it in `CASES`. Rules: bad input exits 2 with the reason, sessions that wait for a retry
exit 3, nothing prints a traceback, nothing is lost.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable


from faultkit import (Case, Kit, Step, bag_closed, case, chat, llm_config, memory_lost, pg_spool, quiet_bag,
                      seed_memory, spool_lost, spooled_session, user_names)


# ---- store faults --------------------------------------------------------------------------------------------

def _sqlite_fault(kit: Kit, sql: str) -> str:
    db = str(kit.dir / "memory.db")
    seed_memory(db)
    with sqlite3.connect(db) as c:
        c.execute(sql)
    return db


@case("store/newer-schema")
def _(kit: Kit) -> Case:
    db = _sqlite_fault(kit, "PRAGMA user_version=99")
    return Case("store/newer-schema", [Step(["users", "--db", db], says=("newer than this egomem_ros",))])


@case("store/table-missing")
def _(kit: Kit) -> Case:
    db = _sqlite_fault(kit, "DROP TABLE facts")
    return Case("store/table-missing", [Step(["users", "--db", db], says=("no such table: facts",))])


@case("store/not-a-database")
def _(kit: Kit) -> Case:
    (kit.dir / "memory.db").write_bytes(b"this is not a database\n" * 100)
    before = (kit.dir / "memory.db").read_bytes()
    return Case("store/not-a-database", [Step(["users", "--db", kit.dir / "memory.db"], says=("memory.db",))],
                lambda: [] if (kit.dir / "memory.db").read_bytes() == before else ["the file was changed"])


@case("store/replay-into-a-misspelt-memory")
def _(kit: Kit) -> Case:
    bag = quiet_bag(kit.dir / "bag")
    typo = kit.dir / "mmeory.db"
    return Case("store/replay-into-a-misspelt-memory",
                [Step(["replay", bag, "--out", kit.dir / "o", "--db", typo], says=("does not exist",))],
                lambda: [f"{typo} was created"] if typo.exists() else [])


@case("store/postgresql-unreachable")
def _(kit: Kit) -> Case:
    return Case("store/postgresql-unreachable", [Step(["users", "--db", "postgresql://egomem@127.0.0.1:9/egomem"],
                                                      says=("127.0.0.1",))])


@case("store/postgresql-snapshot-holds-the-rows")
def _(kit: Kit) -> Case:
    """Another session's snapshot keeps the old rows: forget says so and exits non-zero (#40.1)."""
    url = kit.pg()
    seed_memory(url)
    import faultkit

    return Case("store/postgresql-snapshot-holds-the-rows",
                [Step(["forget", "Emily", "--db", url, "--yes"], says=("another process is reading", "compact"))],
                lambda: memory_lost(url, forgotten=("Emily",)), issue="#40.1",
                during=lambda: faultkit.held_postgres(url, ["BEGIN ISOLATION LEVEL REPEATABLE READ",
                                                            "SELECT count(*) FROM pg_class"]))


@case("store/postgresql-lock-held")
def _(kit: Kit) -> Case:
    """A connection idle in a transaction holds Emily's row: forget waits a bounded time, then says why (#40.8)."""
    url = kit.pg()
    ids = seed_memory(url)
    import faultkit

    return Case("store/postgresql-lock-held",
                [Step(["forget", "Emily", "--db", url, "--yes"], says=("lock",), within_s=60)],
                lambda: memory_lost(url), issue="#40.8",
                during=lambda: faultkit.held_postgres(url, ["BEGIN", f"SELECT * FROM users WHERE id = '{ids['Emily']}' "
                                                            "FOR UPDATE"]))


@case("store/postgresql-restarts-during-a-replay")
def _(kit: Kit) -> Case:
    """The server drops every connection, again and again: a clear error, the output bag closed, and the
    waiting session still waits (#40.12)."""
    import faultkit

    url, xdg = kit.pg(), kit.dir / "robot"
    seed_memory(url)
    folder = pg_spool(url, xdg)
    (folder / "s1.json").write_text(spooled_session("s1", "Hi robot, my name is Anna. I work as a pilot.", face_seed=9))
    out = kit.dir / "out"

    def lost() -> list[str]:
        written = "Anna" in user_names(url)
        return memory_lost(url) + bag_closed(out) + ([] if written else spool_lost(folder, "s1", waits=True))
    return Case("store/postgresql-restarts-during-a-replay",
                [Step(["replay", quiet_bag(kit.dir / "bag", seconds=20), "--out", out, "--db", url, "--quiet"],
                      says=("connection",), env={"XDG_DATA_HOME": str(xdg)})],
                lost, issue="#40.12", during=lambda: faultkit.postgres_going_away(url))


@case("store/two-robots-write-one-session-at-once")
def _(kit: Kit) -> Case:
    """Two replays of the same recording on one PostgreSQL memory, at once: one writes the session, the
    other says it is a duplicate; one Anna (#40.13)."""
    url = kit.pg()
    seed_memory(url)
    session = spooled_session("s1", "Hi robot, my name is Anna. I work as a pilot.", face_seed=9)
    steps = []
    for robot in ("a", "b"):
        xdg = kit.dir / f"robot-{robot}"
        (pg_spool(url, xdg) / "s1.json").write_text(session)
        steps.append(Step(["replay", quiet_bag(kit.dir / f"bag-{robot}"), "--out", kit.dir / f"out-{robot}", "--db", url,
                           "--quiet"], exit=0, env={"XDG_DATA_HOME": str(xdg)}))
    return Case("store/two-robots-write-one-session-at-once", steps,
                lambda: memory_lost(url) + ([] if user_names(url).count("Anna") == 1 else [f"users: {user_names(url)}"]),
                issue="#40.13", together=True)


@case("spool/one-spool-per-postgresql-database")
def _(kit: Kit) -> Case:
    """A session waiting for database x1 (its LLM failed) is never written into x2 (#40.2)."""
    x1, x2, xdg = kit.pg(), kit.pg(), kit.dir / "robot"
    seed_memory(x1)
    folder = pg_spool(x1, xdg)
    (folder / "s1.json").write_text(spooled_session("s1", "Hi robot, my name is Anna. I work as a pilot.", face_seed=9))
    failing = llm_config(kit.dir / "llm.yaml", kit.llm([(500, "Internal Server Error", 0)]))
    env = {"XDG_DATA_HOME": str(xdg)}
    bag = quiet_bag(kit.dir / "bag")
    return Case("spool/one-spool-per-postgresql-database",
                [Step(["replay", bag, "--out", kit.dir / "o1", "--db", x1, "--config", failing, "--quiet"], exit=3,
                      says=("wait in the spool",), env=env),
                 Step(["replay", bag, "--out", kit.dir / "o2", "--db", x2, "--quiet"], exit=0, env=env)],
                lambda: (memory_lost(x1) + spool_lost(folder, "s1", waits=True)
                         + (["x2 holds Anna"] if "Anna" in user_names(x2) else [])), issue="#40.2")


@case("store/forget-a-name-made-of-common-words")
def _(kit: Kit) -> Case:
    """Forgetting "Will Art" leaves Emily's "will" and "art" alone (#40.6)."""
    from egomem_ros.store import open_store

    db = str(kit.dir / "memory.db")
    ids = seed_memory(db)
    store = open_store(db)
    said = ["works at the will registry", "loves the art museum"]
    for text in said:
        store.add_fact(ids["Emily"], "fact", text)
    store.create_user("Will Art")
    store.close()

    def lost() -> list[str]:
        store = open_store(db)
        texts = [f.text for f in store.facts(ids["Emily"])]
        store.close()
        return memory_lost(db) + [f"Emily's {t!r} was rewritten" for t in said if t not in texts]
    return Case("store/forget-a-name-made-of-common-words",
                [Step(["forget", "Will Art", "--db", db, "--yes"], exit=0, says=("forgot Will Art",))], lost, issue="#40.6")


@case("store/forget-deletes-the-report-that-names-the-person")
def _(kit: Kit) -> Case:
    """`replay --report` wrote an HTML file naming Emily; `forget Emily` deletes it and says so (#40.14)."""
    db = str(kit.dir / "memory.db")
    seed_memory(db)
    report = kit.dir / "report.html"
    return Case("store/forget-deletes-the-report-that-names-the-person",
                [Step(["replay", quiet_bag(kit.dir / "bag"), "--out", kit.dir / "o", "--db", db, "--report", report,
                       "--quiet"], exit=0, says=("report:",)),
                 Step(["forget", "Emily", "--db", db, "--yes"], exit=0, says=("deleted the report",))],
                lambda: (memory_lost(db, forgotten=("Emily",))
                         + ([f"{report} still names Emily"] if report.exists() and "Emily" in report.read_text() else [])),
                issue="#40.14")


# ---- malformed spool files: forget still works and sets them aside (#40.5) -----------------------------------

SPOOL_FILES = {
    "a-list": "[]",
    "null": "null",
    "a-number": "5",
    "truncated": '{"session_id": "s1", "start": 0, "end": 1, "tur',
    "turns-as-pairs": '{"session_id": "s1", "start": 0, "end": 1, "turns": [["user", "hi"]], "face_embeddings": [], '
                      '"voice_embeddings": [], "observed_users": []}',
    "embeddings-a-number": '{"session_id": "s1", "start": 0, "end": 1, "turns": [], "face_embeddings": 5, '
                           '"voice_embeddings": [], "observed_users": []}',
    "fields-missing": '{"session_id": "s1"}',
}


def _spool_case(name: str) -> Callable[[Kit], Case]:
    def build(kit: Kit) -> Case:
        db = str(kit.dir / "memory.db")
        seed_memory(db)
        folder = kit.dir / "memory.db.sessions"
        folder.mkdir(mode=0o700)
        (folder / "s1.json").write_text(SPOOL_FILES[name])
        return Case(f"spool/{name}", [Step(["forget", "Emily", "--db", db, "--yes"], exit=0, says=("Emily",))],
                    lambda: memory_lost(db, forgotten=("Emily",)) + spool_lost(folder, "s1", waits=False), issue="#40.5")
    return build


for _name in SPOOL_FILES:
    case(f"spool/{_name}")(_spool_case(_name))


@case("spool/a-name-of-151-characters")
def _(kit: Kit) -> Case:
    """A session the store refuses for its own content is set aside; later sessions are written (#40.3)."""
    db = str(kit.dir / "memory.db")
    seed_memory(db)
    folder = kit.dir / "memory.db.sessions"
    folder.mkdir(mode=0o700)
    (folder / "s1.json").write_text(spooled_session("s1", f"Hi robot, my name is A{'a' * 150}. I work as a pilot.",
                                                    face_seed=7))
    (folder / "s2.json").write_text(spooled_session("s2", "Hi robot, my name is Tom. I work as a baker.", face_seed=8,
                                                    start=20))

    def lost() -> list[str]:
        from egomem_ros.store import open_store

        store = open_store(db)
        names = [u.name for u in store.list_users()]
        store.close()
        return memory_lost(db) + spool_lost(folder, "s1", waits=False) + ([] if "Tom" in names else ["Tom was not written"])
    return Case("spool/a-name-of-151-characters",
                [Step(["replay", quiet_bag(kit.dir / "bag"), "--out", kit.dir / "o", "--db", db, "--quiet"], exit=0,
                      says=("session set aside", "name"))], lost, issue="#40.3")


@case("spool/sealed-without-its-key")
def _(kit: Kit) -> Case:
    """A session sealed with a template key, read without it: a clear error, and it waits for the key."""
    import base64
    import os

    key = base64.b64encode(os.urandom(32)).decode()
    db = str(kit.dir / "memory.db")
    seed_memory(db)
    folder = kit.dir / "memory.db.sessions"
    folder.mkdir(mode=0o700)
    os.environ["EGOMEM_KEY"] = key
    try:
        (folder / "s1.json").write_text(spooled_session("s1", "Hi robot, I am Emily.", face_seed=1))
    finally:
        del os.environ["EGOMEM_KEY"]
    return Case("spool/sealed-without-its-key", [Step(["forget", "Sarah", "--db", db, "--yes"], says=("EGOMEM_KEY",))],
                lambda: memory_lost(db) + spool_lost(folder, "s1", waits=True))


# ---- bad LLM answers: the session waits (exit 3) or is set aside, never lost, never a crash ---------------

def _llm_case(name: str, answers: list[tuple[int, str, float]], *, spool: str = "waits", says: tuple[str, ...] = (),
              update_agent: str = "rules", issue: str = "", within_s: float = 120.0,
              check: Callable[[str, dict], list[str]] | None = None) -> None:
    """`spool`: what becomes of the waiting session: it "waits" (exit 3), is "set-aside" or "written" (exit 0)."""
    @case(f"llm/{name}")
    def build(kit: Kit) -> Case:
        db = str(kit.dir / "memory.db")
        ids = seed_memory(db)
        folder = kit.dir / "memory.db.sessions"
        folder.mkdir(mode=0o700)
        (folder / "s1.json").write_text(spooled_session("s1", "I work as a doctor now. I love tennis.", face_seed=1))
        script = [(s, body.replace("FACT_ID", ids["fact"]), t) for s, body, t in answers]
        config = llm_config(kit.dir / "llm.yaml", kit.llm(script), update_agent=update_agent)
        out = kit.dir / "o"
        step = Step(["replay", quiet_bag(kit.dir / "bag"), "--out", out, "--db", db, "--config", config, "--quiet"],
                    exit=3 if spool == "waits" else 0, says=says or (("wait in the spool",) if spool == "waits" else ()),
                    within_s=within_s)

        def lost() -> list[str]:
            left = [p.name for p in folder.iterdir()] if spool == "written" else []
            return (memory_lost(db) + bag_closed(out) + (check(db, ids) if check else [])
                    + (spool_lost(folder, "s1", waits=spool == "waits") if spool != "written" else
                       [f"{f} left in the spool" for f in left]))
        return Case(f"llm/{name}", [step], lost, issue=issue)


GOOD_EXTRACTION = {"summary": "Emily talked about work.", "name": None, "facts": ["works as a doctor"],
                   "preferences": ["loves tennis"], "events": [], "relations": []}
_llm_case("http-500", [(500, "Internal Server Error", 0)])
_llm_case("an-html-page", [(200, "<html><body><h1>502 Bad Gateway</h1></body></html>", 0)])
_llm_case("truncated-json", [(200, chat('{"summary": "Emily talked", "facts": ["works as'), 0)])
_llm_case("wrong-keys", [(200, chat({"answer": "Emily is a doctor"}), 0)])
_llm_case("nan", [(200, chat('{"summary": NaN, "facts": [NaN], "preferences": [], "events": [], "relations": []}'), 0)])
_llm_case("json-nested-200000-deep", [(200, chat('{"facts": ' + "[" * 200_000 + "]" * 200_000 + "}"), 0)], issue="#40.10")
_llm_case("trickles-a-byte-at-a-time", [(200, chat(GOOD_EXTRACTION), 0.05)], issue="#40.9", within_s=60)
_llm_case("supersedes-one-fact-twice",
          [(200, chat(GOOD_EXTRACTION), 0),
           (200, chat({"operations": [{"op": "UPDATE", "kind": "fact", "text": "works as a doctor", "target": "FACT_ID"},
                                      {"op": "UPDATE", "kind": "fact", "text": "works as a doctor", "target": "FACT_ID"}]}),
            0)], spool="set-aside", says=("session set aside", "already invalid"), update_agent="llm", issue="#40.11")


def _at_most(limit: int) -> Callable[[str, dict], list[str]]:
    def check(db: str, ids: dict) -> list[str]:
        from egomem_ros.store import open_store

        store = open_store(db)
        n = len(store.facts(ids["Emily"]))
        store.close()
        return [] if n <= limit else [f"one answer put {n} items on Emily"]
    return check


_llm_case("200000-facts", [(200, chat({**GOOD_EXTRACTION, "facts": [f"works as a doctor {i}" for i in range(200_000)]}), 0)],
          spool="written", says=("sessions written: 1",), issue="#40 low", check=_at_most(200))

"""forget() must leave no trace of the person's name or biometric bytes in the database file."""
import numpy as np

from egomem_ros.store import SqliteStore


def test_forget_erases_name_and_embedding_bytes(tmp_path):
    db = tmp_path / "memory.db"
    store = SqliteStore(db)
    name = "Zebulon Quartermaine"
    target = store.create_user(name)
    other = store.create_user("Emily")
    face = np.random.default_rng(0).normal(size=128).astype(np.float32)
    voice = np.random.default_rng(1).normal(size=256).astype(np.float32)
    store.add_key(target.id, "face", "dlib", face)
    store.add_key(target.id, "voice", "resemblyzer", voice)
    store.add_fact(target.id, "fact", f"{name} is a falconer")
    store.add_episode(target.id, 0.0, 10.0, transcript=f"hi, I am {name}", summary="introduced himself")
    store.add_relation(other.id, target.id, "friend")
    store.set_name(target.id, name)  # puts the name into the audit detail too
    store.add_fact(other.id, "fact", "likes tea")
    store.close()
    raw = db.read_bytes()
    assert name.encode() in raw and face.tobytes() in raw  # the check below can fail

    store = SqliteStore(db)
    store.forget_user(target.id)
    store.close()
    raw = db.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("memory.db-*"))
    assert name.encode() not in raw
    assert face.tobytes() not in raw and voice.tobytes() not in raw
    assert face[:8].tobytes() not in raw

    store = SqliteStore(db)
    assert [u.name for u in store.list_users()] == ["Emily"]
    assert store.relations() == [] and [f.text for f in store.facts(other.id)] == ["likes tea"]
    assert store.integrity_check() == "ok"


def test_forget_erases_the_persons_waiting_sessions_and_a_stale_one_never_crashes(tmp_path):
    """A spooled session of the person (seen in it, or the one that enrolled them) is erased with them; one
    that names a forgotten user is dropped when processed, instead of crashing every later run."""
    from egomem_ros.memory.consolidate import Consolidator, SessionInput, SessionSpool
    from egomem_ros.memory.extraction import RuleExtractor, Turn
    from egomem_ros.memory.manager import forget_person
    from egomem_ros.memory.update_agent import RuleUpdateAgent

    store = SqliteStore(tmp_path / "memory.db")
    spool = SessionSpool(tmp_path / "memory.db.sessions")
    emily, john = store.create_user("Emily"), store.create_user("John")
    face = np.random.default_rng(0).normal(size=128).astype(np.float32)
    store.add_key(emily.id, "face", "dlib", face)
    said = [Turn(speaker="user", text="I love tennis.")]
    spool.put(SessionInput("s1-a", 0, 5, said, observed_users=[emily.id]))
    spool.put(SessionInput("s2-b", 6, 9, said, face_embeddings=[face.copy()]))
    spool.put(SessionInput("s3-c", 10, 15, said, observed_users=[john.id]))
    stale = SessionInput("s4-d", 20, 25, said, observed_users=[emily.id])
    assert forget_person(store, spool, emily.id) == 2
    assert [s.session_id for s in spool.pending()] == ["s3-c"]
    raw = b"".join(p.read_bytes() for p in spool.folder.iterdir())
    assert face.tobytes() not in raw and b"s1-a" not in raw
    c = Consolidator(store, RuleExtractor(), RuleUpdateAgent(), lambda s: s.observed_users[0])
    assert c.process(stale).status == "forgotten" and not store.episode_exists("s4-d")
    assert [u.name for u in store.list_users()] == ["John"]
    store.close()


def test_forget_says_so_when_a_reader_keeps_the_bytes(tmp_path):
    import sqlite3

    import pytest

    from egomem_ros.store import StoreError

    db = tmp_path / "memory.db"
    store = SqliteStore(db)
    gone = store.create_user("Zebulon")
    store.create_user("Emily")
    reader = sqlite3.connect(db)
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM users").fetchall()       # a read transaction holds the WAL
    try:
        with pytest.raises(StoreError, match="another process is reading"):
            store.forget_user(gone.id)
    finally:
        reader.rollback()
        reader.close()
    store.forget_user(store.create_user("Again").id)        # with the reader gone, erasure completes
    store.close()


def test_same_offset_different_conversation_is_not_a_duplicate():
    from egomem_ros.memory.extraction import Turn
    from egomem_ros.memory.manager import session_id

    a = session_id(12.0, 20.0, [Turn(speaker="user", text="I love tennis.")])
    b = session_id(12.0, 20.0, [Turn(speaker="user", text="I work as a pilot.")])
    assert a != b and a.startswith("s12000-")
    assert a == session_id(12.0, 20.0, [Turn(speaker="user", text="I love tennis.")])   # the same one again: same id

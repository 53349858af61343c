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

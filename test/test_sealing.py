"""Face and voice templates sealed at rest (store/sealing.py): no template in clear in any file when a key
is set, a missing or wrong key is a clear error that writes nothing, and rekeying reseals in one go."""
import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from egomem_ros.memory.consolidate import SessionInput
from egomem_ros.memory.extraction import Turn
from egomem_ros.store.sealing import ENV_KEY, ENV_KEY_FILE, TemplateKeyError, parse_key


def _key() -> str:
    return base64.b64encode(np.random.default_rng().bytes(32)).decode()


def _vec(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=256).astype(np.float32)


def _raw(path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file())


@pytest.fixture
def sealed_store(db_url, monkeypatch):
    """SQLite and PostgreSQL, opened with EGOMEM_KEY set (a store reads the key when it opens)."""
    from egomem_ros.store import open_store

    monkeypatch.setenv(ENV_KEY, _key())
    store = open_store(db_url)
    yield store
    store.close()


def test_a_sealed_template_is_in_no_file_and_reads_back(sealed_store, tmp_path):
    store = sealed_store
    emily = store.create_user("Emily").id
    v = np.random.default_rng().normal(size=256).astype(np.float32)   # unseeded: no other test stored these bytes
    store.add_key(emily, "voice", "resemblyzer_ge2e", v)
    assert np.array_equal(store.user_keys(emily, "voice")[0].vector, v)
    path = str(getattr(store, "path", ""))
    if path.endswith(".db"):
        store.compact()
        raw = _raw(Path(path))
    else:   # PostgreSQL: every file of the throw-away server's data directory, write-ahead log included
        store._x("CHECKPOINT")
        raw = b"".join(p.read_bytes() for p in Path(os.environ["EGOMEM_PG_DIR"], "data").rglob("*") if p.is_file())
    assert len(raw) > 10_000 and v.tobytes()[:16] not in raw and v.tobytes()[-16:] not in raw


def test_a_missing_or_wrong_key_is_an_error_that_writes_nothing(tmp_path, monkeypatch):
    from egomem_ros.store import SqliteStore

    monkeypatch.setenv(ENV_KEY, key := _key())
    with SqliteStore(tmp_path / "m.db") as store:
        emily = store.create_user("Emily").id
        store.add_key(emily, "face", "dlib_resnet_v1", _vec(1))
    for env in ({}, {ENV_KEY: _key()}):
        monkeypatch.delenv(ENV_KEY, raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        with SqliteStore(tmp_path / "m.db") as store:
            with pytest.raises(TemplateKeyError, match="EGOMEM_KEY"):
                store.keys("face")
            with pytest.raises(TemplateKeyError):
                store.add_key(emily, "face", "dlib_resnet_v1", _vec(2))
    monkeypatch.setenv(ENV_KEY, key)
    with SqliteStore(tmp_path / "m.db") as store:
        assert len(store.keys("face")) == 1 and np.array_equal(store.keys("face")[0].vector, _vec(1))


def test_rekey_seals_clear_templates_and_changes_the_key(tmp_path, monkeypatch):
    from egomem_ros.store import SqliteStore

    db = tmp_path / "m.db"
    monkeypatch.delenv(ENV_KEY, raising=False)
    with SqliteStore(db) as store:   # a memory from before a key was set
        emily = store.create_user("Emily").id
        store.add_key(emily, "voice", "resemblyzer_ge2e", _vec(3))
    assert _vec(3).tobytes()[:16] in _raw(db)
    first, second = _key(), _key()
    (tmp_path / "k1").write_text(first)
    cli = [sys.executable, "-m", "egomem_ros.cli.main"]
    r = subprocess.run([*cli, "rekey", "--new-key-file", tmp_path / "k1", "--db", db], capture_output=True, text=True)
    assert r.returncode == 0 and "1 templates sealed" in r.stdout, r.stderr
    assert _vec(3).tobytes()[:16] not in _raw(db)
    monkeypatch.setenv(ENV_KEY, first)
    with SqliteStore(db) as store:
        assert store.reseal_templates(parse_key(second.encode(), "test")) == 1
    with SqliteStore(db) as store, pytest.raises(TemplateKeyError):
        store.keys("voice")
    monkeypatch.setenv(ENV_KEY, second)
    with SqliteStore(db) as store:
        assert np.array_equal(store.keys("voice")[0].vector, _vec(3))
    r = subprocess.run([*cli, "keygen", tmp_path / "k1"], capture_output=True, text=True)
    assert r.returncode == 2 and "never overwritten" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([*cli, "keygen", tmp_path / "k2"], capture_output=True, text=True)
    assert r.returncode == 0 and (tmp_path / "k2").stat().st_mode & 0o777 == 0o600
    assert len(parse_key((tmp_path / "k2").read_bytes(), "k2").key) == 32


def test_spooled_sessions_hold_no_template_in_clear(monkeypatch, tmp_path):
    s = SessionInput("s1", 1.0, 2.0, [Turn(speaker="user", text="hi")], face_embeddings=[_vec(4)],
                     voice_embeddings=[_vec(5)], speech_voice=_vec(6))
    (tmp_path / "key").write_text(_key())
    monkeypatch.setenv(ENV_KEY_FILE, str(tmp_path / "key"))
    text = s.to_json()
    assert str(float(_vec(4)[0]))[:8] not in text and "sealed" in json.loads(text)["face_embeddings"][0]
    back = SessionInput.from_json(text)
    assert np.array_equal(back.face_embeddings[0], _vec(4)) and np.array_equal(back.speech_voice, _vec(6))
    monkeypatch.delenv(ENV_KEY_FILE)
    with pytest.raises(TemplateKeyError):   # not "malformed": the file stays in the spool for the right key
        SessionInput.from_json(text)
    monkeypatch.setenv(ENV_KEY, "too short")
    with pytest.raises(TemplateKeyError, match="32 bytes"):
        s.to_json()


def test_a_wrong_key_is_refused_even_when_the_first_template_predates_the_key(db_url, monkeypatch):
    """A memory with a template in clear and then sealed ones: a wrong key must still be caught before it
    seals anything, not waved through because the first row opens with any key."""
    from egomem_ros.store import open_store

    monkeypatch.delenv(ENV_KEY, raising=False)
    with open_store(db_url) as store:
        emily = store.create_user("Emily").id
        store.add_key(emily, "voice", "resemblyzer_ge2e", _vec(7))   # stored before a key was set
    monkeypatch.setenv(ENV_KEY, _key())
    with open_store(db_url) as store:
        store.add_key(emily, "voice", "resemblyzer_ge2e", _vec(8))
    monkeypatch.setenv(ENV_KEY, _key())   # another key
    with open_store(db_url) as store:
        with pytest.raises(TemplateKeyError):
            store.add_key(emily, "voice", "resemblyzer_ge2e", _vec(9))
        assert len(store._q("SELECT id FROM voice_keys WHERE user_id=?", (emily,))) == 2

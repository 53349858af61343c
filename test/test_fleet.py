"""Several robots, one PostgreSQL memory (issue #27): real concurrent processes, and galleries that follow
the shared store."""
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from egomem_ros.store import open_store

WORKER = Path(__file__).with_name("fleet_worker.py")


def test_four_robots_writing_at_once_make_one_user_per_person_and_write_every_session(pg_url):
    start_at = time.time() + 3.0
    robots = [subprocess.Popen([sys.executable, str(WORKER), pg_url, str(r), str(start_at)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(4)]
    results = [p.communicate(timeout=120) for p in robots]
    for p, (_, err) in zip(robots, results):
        assert p.returncode == 0, err[-3000:]
    statuses = [line.split()[1] for out, _ in results for line in out.splitlines()]
    assert statuses.count("written") == 4 * 3 * 3, statuses
    store = open_store(pg_url)
    people = [u for u in store.list_users() if not u.placeholder]
    assert sorted(u.name for u in people) == ["Amara", "Bodhi", "Celeste"]
    for u in people:
        assert len(store.episodes(u.id)) == 12                               # every robot's 3 sessions
        facts = store.facts(u.id, include_invalid=True)
        works = [f for f in facts if f.text.startswith("works at")]
        assert len(works) == 12 and sum(f.valid for f in works) == 1         # one chain, no lost update
        assert len([f for f in facts if f.kind == "preference" and f.valid]) == 12
    store.close()


def test_a_person_forgotten_on_one_robot_leaves_another_robots_gallery_within_a_poll(pg_url):
    from egomem_ros.config import EgomemConfig
    from egomem_ros.retrieval.factory import make_poller

    lobby, dining = open_store(pg_url), open_store(pg_url)
    emily = lobby.create_user("Emily")
    lobby.add_key(emily.id, "voice", "resemblyzer_ge2e", np.random.default_rng(0).normal(size=256).astype(np.float32))
    poller = make_poller(dining, EgomemConfig(), face=False)                 # the dining-room robot
    assert poller.voice_gallery.users() == {emily.id}
    john = lobby.create_user("John")                                         # enrolled in the lobby ...
    lobby.add_key(john.id, "voice", "resemblyzer_ge2e", np.random.default_rng(1).normal(size=256).astype(np.float32))
    lobby.forget_user(emily.id)                                              # ... and Emily forgotten there
    t0 = time.monotonic()
    poller.poll(2.0)                                                         # the dining robot's next poll
    assert time.monotonic() - t0 < 5.0
    assert poller.voice_gallery.users() == {john.id}
    poller.close()
    lobby.close()
    dining.close()


def test_forget_on_the_shared_server_leaves_no_row_and_no_table_file_holding_the_person(pg_url):
    import os

    import psycopg

    store = open_store(pg_url)
    zeb, sarah = store.create_user("Zebulon Quartermaine"), store.create_user("Sarah")
    face = np.random.default_rng(0).normal(size=128).astype(np.float32)
    store.add_key(zeb.id, "face", "dlib", face)
    store.add_fact(zeb.id, "fact", "keeps gyrfalcons")
    store.add_fact(sarah.id, "fact", "walks dogs with Zebulon")
    store.add_relation(sarah.id, zeb.id, "neighbour")
    store.forget_user(zeb.id)
    assert [f.text for f in store.facts(sarah.id)] == ["walks dogs with [forgotten]"]
    with psycopg.connect(pg_url) as conn:                       # every text and bytea column, every table
        dump = b"".join(str(row).encode() for table in ("users", "facts", "episodes", "relations", "audit",
                                                         "face_keys", "voice_keys")
                        for row in conn.execute(f"SELECT * FROM {table}").fetchall())
        oid = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()[0]
    assert b"Zebulon" not in dump and b"gyrfalcons" not in dump and zeb.id.encode() not in dump
    pg_dir = os.environ.get("EGOMEM_PG_DIR")
    if pg_dir:                                                   # the database's table files (not the server's WAL)
        base = Path(pg_dir) / "data" / "base" / str(oid)
        raw = b"".join(p.read_bytes() for p in base.iterdir() if p.is_file())
        assert b"Quartermaine" not in raw and b"gyrfalcons" not in raw and face.tobytes() not in raw
    store.close()


def test_every_memory_command_takes_a_postgresql_url(pg_url, tmp_path):
    def egomem(*args):
        return subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", *map(str, args)],
                              capture_output=True, text=True)

    store = open_store(pg_url)
    emily = store.create_user("Emily")
    store.add_fact(emily.id, "fact", "plays squash on Mondays")
    store.close()
    r = egomem("users", "--db", pg_url)
    assert r.returncode == 0 and "Emily" in r.stdout, r.stderr
    r = egomem("show", "Emily", "--db", pg_url)
    assert r.returncode == 0 and "plays squash on Mondays" in r.stdout, r.stderr
    assert egomem("graph", "--out", tmp_path / "g.json", "--db", pg_url).returncode == 0
    r = egomem("forget", "Emily", "--yes", "--db", pg_url)
    assert r.returncode == 0 and "forgot Emily" in r.stdout, r.stderr
    assert "Emily" not in egomem("users", "--db", pg_url).stdout
    (tmp_path / "c.yaml").write_text("store: {url: 'postgresql://robot:secret@db.example/egomem'}\n")
    r = egomem("users", "--config", tmp_path / "c.yaml")
    assert r.returncode == 2 and "PGPASSWORD" in r.stderr and "secret" not in r.stderr


def test_a_server_that_closes_the_connection_is_a_store_error(pg_url):
    """PostgreSQL stopped or restarted mid-replay: the store says so as a StoreError (replay then stops
    with exit 2 and a closed output bag, as for any store failure), never a driver traceback."""
    import psycopg

    from egomem_ros.store import StoreError, open_store

    store = open_store(pg_url)
    try:
        store.create_user("Emily")
        pid = store._conn.info.backend_pid
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StoreError, match="closed the connection|failed"):
            store.list_users()
        with pytest.raises(StoreError):
            with store.transaction():
                store.create_user("Sarah")
    finally:
        try:
            store.close()
        except Exception:  # noqa: BLE001 - closing a dead connection may complain; the test is above
            pass


def test_forget_on_postgresql_is_verified_while_another_session_holds_a_snapshot(pg_url):
    """Another session in a REPEATABLE READ transaction keeps old row versions alive: `forget` erases the
    rows but says the bytes remain (StoreError, as on SQLite), and `compact` completes once it ends."""
    import psycopg

    from egomem_ros.store import StoreError

    store = open_store(pg_url)
    emily = store.create_user("Emily")
    store.add_fact(emily.id, "fact", "works as a nurse")
    reader = psycopg.connect(pg_url)
    try:
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        reader.execute("SELECT count(*) FROM pg_class").fetchone()
        with pytest.raises(StoreError, match="another process is reading"):
            store.forget_user(emily.id)
        assert store.list_users() == []                  # the rows are gone; only old versions remain
        assert store.compact() is False
    finally:
        reader.rollback()
        reader.close()
    assert store.compact() is True
    store.close()


def test_a_lock_held_by_an_idle_transaction_is_waited_for_a_bounded_time(pg_url):
    """A session that locked the person's row and went idle: `forget` gives up after the lock timeout with
    a clear StoreError instead of stalling every robot."""
    import psycopg

    from egomem_ros.store import StoreError
    from egomem_ros.store.pg_store import PostgresStore

    store = PostgresStore(pg_url, lock_timeout_s=1.0)
    emily = store.create_user("Emily")
    holder = psycopg.connect(pg_url)
    try:
        holder.execute("BEGIN")
        holder.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (emily.id,))
        t0 = time.monotonic()
        with pytest.raises(StoreError, match="held a lock"):
            store.forget_user(emily.id)
        assert time.monotonic() - t0 < 30
    finally:
        holder.rollback()
        holder.close()
    assert [u.name for u in store.list_users()] == ["Emily"]   # nothing was half-erased
    store.close()


def test_compact_on_postgresql_does_not_claim_the_servers_log_is_clean(pg_url):
    """`compact` rewrites the tables; the server's pg_wal and backups are its own (docs/fleet.md)."""
    open_store(pg_url).close()
    r = subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", "compact", "--db", pg_url],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert "pg_wal" in out and "nothing erased remains" not in out

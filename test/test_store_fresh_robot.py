"""A fresh robot: several processes opening one new SQLite memory at once (a launch file configures every
node together)
all get a migrated database: the schema level is read inside the write lock."""
from __future__ import annotations

import multiprocessing as mp


def _open(path: str, barrier, errors) -> None:
    from egomem_ros.store import SqliteStore

    barrier.wait()
    try:
        SqliteStore(path).close()
    except Exception as err:  # noqa: BLE001 - the failure is the finding
        errors.put(repr(err))


def test_nodes_creating_one_new_database_together(tmp_path):
    ctx = mp.get_context("fork")
    errors = ctx.Queue()
    for attempt in range(6):
        path = str(tmp_path / f"m{attempt}.db")
        barrier = ctx.Barrier(6)
        procs = [ctx.Process(target=_open, args=(path, barrier, errors)) for _ in range(6)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []


def test_the_shipped_defaults_open_a_memory_on_a_fresh_robot(tmp_path, monkeypatch):
    """No store.db_path: the memory goes to $XDG_DATA_HOME/egomem/, made when missing."""
    from egomem_ros.config import load_config, resolve_db
    from egomem_ros.store import open_store

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "fresh" / "share"))
    cfg = load_config(None)
    with open_store(resolve_db(cfg)) as store:
        assert store.list_users() == []
    assert (tmp_path / "fresh" / "share" / "egomem" / "memory.db").is_file()

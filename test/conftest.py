"""Shared fixtures. Real data lives in ../shared/data (never copied into the project)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_TORCH_COMPILE", "1")
# Real ROS 2 in the node tests: a DDS domain of this pytest process's own, and localhost only.
os.environ["ROS_DOMAIN_ID"] = os.environ.get("EGOMEM_TEST_DOMAIN_ID") or str(1 + os.getpid() % 100)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("EGOMEM_SHARED_DATA", REPO.parent / "shared" / "data"))


PG_URL = os.environ.get("EGOMEM_PG_URL", "")   # scripts/test.sh starts a throw-away server and sets it
BACKENDS = ["sqlite", "postgres"]


@pytest.fixture
def store(tmp_path):
    from egomem_ros.store import SqliteStore

    s = SqliteStore(tmp_path / "memory.db")
    yield s
    s.close()


def with_database(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(url)._replace(path="/" + name))


@pytest.fixture
def pg_url():
    """A new, empty PostgreSQL database of this test's own on the throw-away server (dropped after)."""
    if not PG_URL:
        pytest.skip("no PostgreSQL server: EGOMEM_PG_URL is unset (scripts/test.sh starts one)")
    import secrets

    import psycopg

    name = "t_" + secrets.token_hex(6)
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield with_database(PG_URL, name)
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path) -> str:
    """What `--db` / `store.url` takes, for each backend: a file path or a postgresql:// URL."""
    return str(tmp_path / "memory.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")


@pytest.fixture
def any_store(db_url):
    """The same store tests on SQLite and on PostgreSQL."""
    from egomem_ros.store import open_store

    s = open_store(db_url)
    yield s
    s.close()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA} (set EGOMEM_SHARED_DATA)")
    return SHARED_DATA

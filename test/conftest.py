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


@pytest.fixture
def store(tmp_path):
    from egomem_ros.store import SqliteStore

    s = SqliteStore(tmp_path / "memory.db")
    yield s
    s.close()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA} (set EGOMEM_SHARED_DATA)")
    return SHARED_DATA

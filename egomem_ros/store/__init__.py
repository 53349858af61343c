"""Long-term memory: users, biometric keys, facts, episodes, relations, audit log."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from .models import (
    FACT_KINDS,
    AuditEntry,
    BiometricKey,
    Episode,
    Fact,
    MemoryRepository,
    Relation,
    StoreError,
    UnknownUserError,
    User,
)
from .pg_store import PostgresStore, is_postgres_url
from .sql_store import SqlStore
from .sqlite_store import SqliteStore, new_person_id


def open_store(db: str | Path, *, clock: Callable[[], float] = time.time) -> SqlStore:
    """The memory at `db`: a `postgresql://` URL (a fleet's shared server) or a SQLite file path."""
    if is_postgres_url(str(db)):
        return PostgresStore(str(db), clock=clock)
    return SqliteStore(db, clock=clock)


__all__ = [
    "FACT_KINDS", "AuditEntry", "BiometricKey", "Episode", "Fact", "MemoryRepository", "PostgresStore", "Relation",
    "SqlStore", "SqliteStore", "StoreError", "UnknownUserError", "User", "is_postgres_url", "new_person_id",
    "open_store",
]

"""SQLite dialect of the memory repository (the embedded default, one robot).

Durability: WAL journal with `synchronous=FULL`, so a commit survives a killed process or a power
cut. `BEGIN IMMEDIATE` makes every write transaction exclusive, which also serialises users and
enrolment. Deleted rows are zeroed (`secure_delete`); `compact` checkpoints and VACUUMs.
"""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .models import DuplicateEpisodeError, StoreError, User
from .schema import SchemaTooNewError, migrate
from .sql_store import MAX_NAME_CHARS, SqlStore, checked_name, new_person_id

__all__ = ["MAX_NAME_CHARS", "SqliteStore", "checked_name", "new_person_id"]


class SqliteStore(SqlStore):
    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time):
        self.path = Path(path).expanduser()
        if str(self.path) != ":memory:":
            parent = self.path.parent
            if not parent.is_dir():
                raise StoreError(f"cannot open memory database {self.path}: directory {parent} does not exist")
        self.clock = clock
        self._init_state()
        try:
            self._conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout=5000")
            self._setup()
        except (sqlite3.DatabaseError, SchemaTooNewError) as err:
            raise StoreError(f"cannot open memory database {self.path}: {err}") from None

    def _setup(self, attempts: int = 50) -> None:
        """WAL, pragmas and migrations. Switching a new file to WAL takes its lock without waiting (SQLite
        does not call the busy handler there): nodes started together on a new file try again."""
        for attempt in range(attempts):
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=FULL")
                self._conn.execute("PRAGMA foreign_keys=ON")
                self._conn.execute("PRAGMA secure_delete=ON")  # deleted rows are zeroed, not left in free pages
                migrate(self._conn)
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or attempt == attempts - 1:
                    raise
                time.sleep(0.05 + 0.05 * attempt)

    def _execute(self, sql: str, args: tuple) -> Any:
        try:
            return self._conn.execute(sql, args)
        except sqlite3.IntegrityError as err:
            if "episodes.id" in str(err):
                raise DuplicateEpisodeError(str(err)) from err
            raise

    def _begin(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")   # the one writer: users and enrolment are serialised too

    def lock_user(self, user_id: str) -> User:
        return self.get_user(user_id)

    def lock_enrolment(self) -> None:
        """BEGIN IMMEDIATE already holds the database's write lock."""

    @property
    def revision(self) -> tuple[int, int]:
        """Changes whenever this connection or another one commits: a cache key for derived views."""
        return self._commits, self._q("PRAGMA data_version")[0][0]

    def integrity_check(self) -> str:
        return self._q("PRAGMA integrity_check")[0][0]

    def compact(self) -> bool:
        """Rewrite the file and empty the write-ahead log, so nothing deleted remains in either. False when
        another connection's open read transaction keeps the log (nothing is lost; try again later)."""
        with self._lock:
            busy = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                self._conn.execute("VACUUM")
                busy = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        return not busy

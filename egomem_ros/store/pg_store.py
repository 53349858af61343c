"""PostgreSQL dialect of the memory repository: one memory that a fleet of robots shares.

Each robot process holds one connection (psycopg 3). Transactions are READ COMMITTED with row locks:
every write locks its user's row (`SELECT ... FOR UPDATE`), so two robots writing about one person
take turns and neither loses the other's update; enrolment takes a transaction-level advisory lock, so
two robots meeting the same new person create one user. The connection URL comes from `store.url` or
`--db`; put the password in the environment (`PGPASSWORD`, `~/.pgpass`), never in the YAML.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .models import DuplicateEpisodeError, StoreError, UnknownUserError, User, is_postgres_url, redacted_url, without_secrets
from .pg_schema import ENROLMENT_LOCK, migrate_pg
from .schema import SchemaTooNewError
from .sql_store import SqlStore

__all__ = ["PostgresStore", "is_postgres_url"]
LOCK_TIMEOUT_S = 10.0   # how long a statement waits behind another session's lock before it gives up


class PostgresStore(SqlStore):
    _INSERT_ORDER = "seq"

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time, connect_timeout_s: int = 10,
                 lock_timeout_s: float = LOCK_TIMEOUT_S):
        try:
            import psycopg
        except ImportError as err:
            raise StoreError("a postgresql:// store needs psycopg (pip install 'egomem_ros[fleet]')") from err
        self.url = url
        self.path = redacted_url(url)       # what messages and `egomem users` show: never the password
        self.clock = clock
        self._init_state()
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout_s)
            # no statement waits for ever behind another session's lock (an idle transaction, a VACUUM FULL)
            self._conn.execute(f"SET lock_timeout = {int(lock_timeout_s * 1000)}")
            self.lock_timeout_s = lock_timeout_s
            migrate_pg(self._conn)
        except (psycopg.Error, SchemaTooNewError) as err:
            raise StoreError(f"cannot open memory database {self.path}: {without_secrets(str(err), url)}") from None

    def _execute(self, sql: str, args: tuple) -> Any:
        import psycopg

        try:
            return self._conn.execute(sql.replace("?", "%s"), args)
        except psycopg.errors.IntegrityError as err:
            if getattr(err.diag, "constraint_name", "") == "episodes_pkey":
                raise DuplicateEpisodeError(str(err).splitlines()[0]) from err
            raise StoreError(str(err).splitlines()[0]) from err
        except psycopg.errors.LockNotAvailable:
            raise StoreError(f"another session has held a lock on the memory {self.path} for more than "
                             f"{self.lock_timeout_s:g} s (a transaction left open?): nothing was changed; "
                             "try again once it ends") from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as err:   # the server stopped, the link broke
            raise StoreError(f"the PostgreSQL server {self.path} failed or closed the connection: "
                             f"{without_secrets(str(err).strip(), self.url)}") from None

    def _begin(self) -> None:
        self._execute("BEGIN", ())

    def lock_user(self, user_id: str) -> User:
        rows = self._q(f"SELECT {self._USER_COLS} FROM users WHERE id=? FOR UPDATE", (user_id,))
        if not rows:
            raise UnknownUserError(user_id)
        return self._user(rows[0])

    def lock_enrolment(self) -> None:
        self._x("SELECT pg_advisory_xact_lock(?)", (ENROLMENT_LOCK,))

    @property
    def revision(self) -> tuple[int, int]:
        """Changes whenever any robot commits a write (every write is audit-logged)."""
        return self._commits, int(self._q("SELECT coalesce(max(id), 0) FROM audit")[0][0])

    def integrity_check(self) -> str:
        return "ok"   # the server guarantees it; kept for the repository's interface

    def compact(self) -> bool:
        """VACUUM FULL rewrites the tables, so deleted rows leave the data files (it briefly locks them).
        The server's own write-ahead log and backups are the operator's (docs/fleet.md).
        Verified, not assumed: False when another session holds a snapshot (an open REPEATABLE READ
        transaction, a long query), whose old row versions VACUUM must keep, as SQLite's compact is False
        while a reader holds the write-ahead log. `egomem compact` finishes once that session ends."""
        with self._lock:
            for table in ("audit", "facts", "episodes", "relations", "face_keys", "voice_keys", "users"):
                self._execute(f"VACUUM FULL {table}", ())
            others = self._execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                   "AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL", ()).fetchone()[0]
        return others == 0

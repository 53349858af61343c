"""PostgreSQL schema as an ordered list of forward migrations, recorded in `egomem_schema`.

The SQLite migrations (store/schema.py) in PostgreSQL types, so the tables are defined once. Append a
migration to change them; never edit one that has shipped. Migrations run under an advisory lock, so
several robots starting at once migrate once.
"""
from __future__ import annotations

import re
from typing import Any

from .schema import MIGRATIONS, SchemaTooNewError

_PG_TYPES = [(r"\bINTEGER PRIMARY KEY\b", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
             (r"\bREAL\b", "DOUBLE PRECISION"), (r"\bBLOB\b", "BYTEA")]


def to_postgres(sqlite_ddl: str) -> str:
    """A SQLite migration in PostgreSQL types: the tables are written once, in store/schema.py."""
    for pattern, pg_type in _PG_TYPES:
        sqlite_ddl = re.sub(pattern, pg_type, sqlite_ddl)
    return sqlite_ddl


# PostgreSQL has no rowid: facts get an insertion-order column (sql_store orders by it).
PG_MIGRATIONS: list[str] = [
    to_postgres(MIGRATIONS[0]) + "ALTER TABLE facts ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY;",
    to_postgres(MIGRATIONS[1]),
]
PG_SCHEMA_VERSION = len(PG_MIGRATIONS)
MIGRATION_LOCK = 0x6567_6F00   # pg_advisory_xact_lock keys: "ego" + 0 (migrations), + 1 (enrolment)
ENROLMENT_LOCK = 0x6567_6F01


def migrate_pg(conn: Any) -> int:
    """Bring the database to PG_SCHEMA_VERSION; `conn` is an autocommit psycopg connection."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS egomem_schema (version INTEGER NOT NULL)")
        row = conn.execute("SELECT max(version) FROM egomem_schema").fetchone()
        current = row[0] or 0
        if current > PG_SCHEMA_VERSION:
            raise SchemaTooNewError(f"database schema version {current} is newer than this egomem_ros "
                                    f"({PG_SCHEMA_VERSION}); upgrade the package")
        for version in range(current + 1, PG_SCHEMA_VERSION + 1):
            for statement in filter(str.strip, PG_MIGRATIONS[version - 1].split(";")):
                conn.execute(statement)
            conn.execute("INSERT INTO egomem_schema (version) VALUES (%s)", (version,))
    return PG_SCHEMA_VERSION

"""PostgreSQL schema as an ordered list of forward migrations, recorded in `egomem_schema`.

The same tables and constraints as the SQLite schema (store/schema.py), in PostgreSQL types. Append a
migration to change it; never edit one that has shipped. Migrations run under an advisory lock, so
several robots starting at once migrate once.
"""
from __future__ import annotations

from typing import Any

from .schema import SchemaTooNewError

PG_MIGRATIONS: list[str] = [
    # 1: initial schema
    """
    CREATE TABLE users (
        id          TEXT PRIMARY KEY,
        name        TEXT,
        placeholder INTEGER NOT NULL DEFAULT 0,
        created_at  DOUBLE PRECISION NOT NULL,
        last_seen   DOUBLE PRECISION
    );
    CREATE TABLE face_keys (
        id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        model      TEXT NOT NULL,
        dim        INTEGER NOT NULL,
        vec        BYTEA NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX face_keys_user ON face_keys(user_id);
    CREATE TABLE voice_keys (
        id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        model      TEXT NOT NULL,
        dim        INTEGER NOT NULL,
        vec        BYTEA NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX voice_keys_user ON voice_keys(user_id);
    CREATE TABLE episodes (
        id         TEXT PRIMARY KEY,
        user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,
        start      DOUBLE PRECISION NOT NULL,
        "end"      DOUBLE PRECISION NOT NULL,
        transcript TEXT NOT NULL DEFAULT '',
        summary    TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX episodes_user ON episodes(user_id);
    CREATE TABLE facts (
        id             TEXT PRIMARY KEY,
        user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        kind           TEXT NOT NULL CHECK (kind IN ('fact','preference','event','summary')),
        text           TEXT NOT NULL,
        source_episode TEXT REFERENCES episodes(id) ON DELETE SET NULL,
        valid_from     DOUBLE PRECISION NOT NULL,
        invalid_at     DOUBLE PRECISION,
        superseded_by  TEXT REFERENCES facts(id) ON DELETE SET NULL,
        seq            BIGINT GENERATED ALWAYS AS IDENTITY   -- insertion order (SQLite's rowid)
    );
    CREATE INDEX facts_user ON facts(user_id);
    CREATE TABLE relations (
        id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        src            TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        dst            TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        relation       TEXT NOT NULL,
        since          DOUBLE PRECISION NOT NULL,
        source_episode TEXT REFERENCES episodes(id) ON DELETE SET NULL,
        UNIQUE (src, dst, relation)
    );
    CREATE INDEX relations_src ON relations(src);
    CREATE INDEX relations_dst ON relations(dst);
    CREATE TABLE audit (
        id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        ts         DOUBLE PRECISION NOT NULL,
        op         TEXT NOT NULL,
        user_id    TEXT,
        item_kind  TEXT NOT NULL,
        item_id    TEXT,
        detail     TEXT NOT NULL DEFAULT '',
        episode_id TEXT
    );
    CREATE INDEX audit_user ON audit(user_id);
    """,
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

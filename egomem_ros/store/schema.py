"""SQLite schema as an ordered list of forward migrations; `PRAGMA user_version` records the level.

Append a migration to change the schema; never edit one that has shipped.
"""
from __future__ import annotations

import sqlite3

from ..errors import EgomemError

MIGRATIONS: list[str] = [
    # 1: initial schema
    """
    CREATE TABLE users (
        id          TEXT PRIMARY KEY,
        name        TEXT,
        placeholder INTEGER NOT NULL DEFAULT 0,
        created_at  REAL NOT NULL,
        last_seen   REAL
    );
    CREATE TABLE face_keys (
        id         INTEGER PRIMARY KEY,
        user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        model      TEXT NOT NULL,
        dim        INTEGER NOT NULL,
        vec        BLOB NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX face_keys_user ON face_keys(user_id);
    CREATE TABLE voice_keys (
        id         INTEGER PRIMARY KEY,
        user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        model      TEXT NOT NULL,
        dim        INTEGER NOT NULL,
        vec        BLOB NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX voice_keys_user ON voice_keys(user_id);
    CREATE TABLE episodes (
        id         TEXT PRIMARY KEY,
        user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,
        start      REAL NOT NULL,
        "end"      REAL NOT NULL,
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
        valid_from     REAL NOT NULL,
        invalid_at     REAL,
        superseded_by  TEXT REFERENCES facts(id) ON DELETE SET NULL
    );
    CREATE INDEX facts_user ON facts(user_id);
    CREATE TABLE relations (
        id             INTEGER PRIMARY KEY,
        src            TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        dst            TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        relation       TEXT NOT NULL,
        since          REAL NOT NULL,
        source_episode TEXT REFERENCES episodes(id) ON DELETE SET NULL,
        UNIQUE (src, dst, relation)
    );
    CREATE INDEX relations_src ON relations(src);
    CREATE INDEX relations_dst ON relations(dst);
    CREATE TABLE audit (
        id         INTEGER PRIMARY KEY,
        ts         REAL NOT NULL,
        op         TEXT NOT NULL,
        user_id    TEXT,
        item_kind  TEXT NOT NULL,
        item_id    TEXT,
        detail     TEXT NOT NULL DEFAULT '',
        episode_id TEXT
    );
    CREATE INDEX audit_user ON audit(user_id);
    """,
    # 2: who may be told an item (store/visibility.py): shared by default, as before
    """
    ALTER TABLE facts ADD COLUMN visibility TEXT NOT NULL DEFAULT 'shared'
        CHECK (visibility IN ('private','shared','public'));
    ALTER TABLE facts ADD COLUMN hidden_from TEXT NOT NULL DEFAULT '';
    ALTER TABLE episodes ADD COLUMN visibility TEXT NOT NULL DEFAULT 'shared'
        CHECK (visibility IN ('private','shared','public'));
    ALTER TABLE episodes ADD COLUMN hidden_from TEXT NOT NULL DEFAULT '';
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNewError(EgomemError, RuntimeError):
    pass


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to SCHEMA_VERSION, each migration in its own transaction. The level is read
    inside the write lock: nodes started together on a new file (a launch file configures them all at
    once) migrate it once, and the others find it done."""
    for version in range(1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            if current > SCHEMA_VERSION:
                raise SchemaTooNewError(f"database schema version {current} is newer than this egomem_ros "
                                        f"({SCHEMA_VERSION}); upgrade the package")
            if current < version:
                for statement in filter(str.strip, MIGRATIONS[version - 1].split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION

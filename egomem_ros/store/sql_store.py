"""The memory repository in portable SQL: every query and rule, for SQLite and PostgreSQL alike.

A dialect (`SqliteStore`, `PostgresStore`) gives the connection, transactions, the per-user lock and
compaction; everything else (history kept, bi-temporal facts, placeholders and merges, the audit log,
erasure) is written once, here. Queries use `?` placeholders; a dialect translates them.

Every write is one transaction, audit-logged in that same transaction. History is never lost:
superseding or invalidating a fact only stamps `invalid_at`/`superseded_by`. The only true deletion is
`forget_user`, which then compacts so the bytes leave the files.
"""
from __future__ import annotations

import secrets
import string
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..relations import relation_lexicon
from .forget import Forgetting
from .models import (
    FACT_KINDS,
    AuditEntry,
    Episode,
    Fact,
    Relation,
    StoreError,
    UnknownUserError,
    User,
)
from .sealing import cipher_from_env
from .templates import Templates
from .visibility import Visibility

MAX_NAME_CHARS = 100


def checked_name(name: str | None) -> str | None:
    """A person's name is one line of printable text: a newline in it would forge lines in Level-1."""
    if name is None:
        return None
    if any(not ch.isprintable() for ch in name) or len(name) > MAX_NAME_CHARS:
        raise StoreError(f"a name must be one line of printable text of at most {MAX_NAME_CHARS} characters, "
                         f"not {name[:40]!r}")
    return " ".join(name.split()) or None


def new_person_id() -> str:
    """Short random id in the ROS4HRI (REP-155) style, e.g. 'kxqzp'."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(5))


class SqlStore(Templates, Forgetting):
    """Thread-safe (one connection behind an RLock): ROS executors call it from several threads.

    Subclasses set `self._conn`, `self.clock`, and implement `_execute`, `_begin`, `lock_user`,
    `revision`, `lock_enrolment` and `compact`."""

    _conn: Any
    clock: Callable[[], float]
    _INSERT_ORDER = "rowid"    # a column that grows with every insert (facts' ids are random)
    _USER_COLS = "id, name, placeholder, created_at, last_seen"

    def _init_state(self) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._commits = 0
        self.cipher = cipher_from_env()   # templates sealed at rest when a key is configured (store/sealing.py)
        self._key_checked = False

    # -- dialect -----------------------------------------------------------------------------
    def _execute(self, sql: str, args: tuple) -> Any:
        """Run one statement; returns a cursor (fetchone/fetchall)."""
        raise NotImplementedError

    def _begin(self) -> None:
        raise NotImplementedError

    def lock_user(self, user_id: str) -> User:
        """The user, locked against other writers until the transaction ends (UnknownUserError if none)."""
        raise NotImplementedError

    def lock_enrolment(self) -> None:
        """Inside a transaction: one enrolment at a time across every process sharing this store, so two
        robots meeting the same new person create one user."""
        raise NotImplementedError

    def compact(self) -> bool:
        raise NotImplementedError

    # -- plumbing ----------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit; nested calls join the outer transaction (one per dialog session)."""
        with self._lock:
            if self._depth == 0:
                self._begin()
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._execute("ROLLBACK", ())
                raise
            self._depth -= 1
            if self._depth == 0:
                self._execute("COMMIT", ())
                self._commits += 1

    def _x(self, sql: str, args: tuple = ()) -> Any:
        with self._lock:
            return self._execute(sql, args)

    def _q(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._execute(sql, args).fetchall()

    def _log(self, op: str, user_id: str | None, kind: str, item_id: str | None, detail: str = "",
             episode_id: str | None = None) -> None:
        self._x(
            "INSERT INTO audit (ts, op, user_id, item_kind, item_id, detail, episode_id) VALUES (?,?,?,?,?,?,?)",
            (self.clock(), op, user_id, kind, item_id, detail, episode_id),
        )

    # -- users -------------------------------------------------------------------------------
    @staticmethod
    def _user(row: tuple) -> User:
        return User(id=row[0], name=row[1], placeholder=bool(row[2]), created_at=row[3], last_seen=row[4])

    def create_user(self, name: str | None = None, *, placeholder: bool = False,
                    user_id: str | None = None, episode_id: str | None = None) -> User:
        name = checked_name(name)
        with self.transaction():
            uid = user_id or new_person_id()
            while user_id is None and self._q("SELECT 1 FROM users WHERE id=?", (uid,)):
                uid = new_person_id()
            now = self.clock()
            self._x(
                "INSERT INTO users (id, name, placeholder, created_at, last_seen) VALUES (?,?,?,?,?)",
                (uid, name, int(placeholder), now, None if placeholder else now),
            )
            self._log("ADD", uid, "user", uid, f"placeholder={placeholder}", episode_id)
        return self.get_user(uid)

    def get_user(self, user_id: str) -> User:
        rows = self._q(f"SELECT {self._USER_COLS} FROM users WHERE id=?", (user_id,))
        if not rows:
            raise UnknownUserError(user_id)
        return self._user(rows[0])

    def find_user(self, id_or_name: str) -> User:
        """By id, else by exact (case-insensitive) name; an ambiguous name is an error."""
        try:
            return self.get_user(id_or_name)
        except UnknownUserError:
            pass
        rows = self._q(f"SELECT {self._USER_COLS} FROM users WHERE lower(name)=lower(?)",
                       (id_or_name,))
        if len(rows) > 1:
            ids = ", ".join(r[0] for r in rows)
            raise StoreError(f"name {id_or_name!r} is ambiguous ({ids}); use the user id")
        if not rows:
            raise UnknownUserError(id_or_name)
        return self._user(rows[0])

    def list_users(self, include_placeholders: bool = True) -> list[User]:
        sql = f"SELECT {self._USER_COLS} FROM users"
        if not include_placeholders:
            sql += " WHERE placeholder=0"
        return [self._user(r) for r in self._q(sql + " ORDER BY created_at, id")]

    def set_name(self, user_id: str, name: str, episode_id: str | None = None) -> None:
        name = checked_name(name)
        with self.transaction():
            old = self.lock_user(user_id).name
            self._x("UPDATE users SET name=? WHERE id=?", (name, user_id))
            self._log("UPDATE", user_id, "name", user_id, f"{old!r} -> {name!r}", episode_id)

    def touch_user(self, user_id: str, ts: float | None = None) -> None:
        with self.transaction():
            self.lock_user(user_id)
            self._x("UPDATE users SET last_seen=?, placeholder=0 WHERE id=?",
                (self.clock() if ts is None else ts, user_id))

    # -- facts -------------------------------------------------------------------------------
    _FACT_COLS = "id, user_id, kind, text, valid_from, source_episode, invalid_at, superseded_by, visibility, hidden_from"

    @staticmethod
    def _as_fact(row: tuple) -> Fact:
        return Fact(*row[:8], visibility=Visibility.from_columns(row[8], row[9]))

    def _fact(self, fact_id: str) -> Fact:
        rows = self._q(f"SELECT {self._FACT_COLS} FROM facts WHERE id=?", (fact_id,))
        if not rows:
            raise StoreError(f"unknown fact: {fact_id!r}")
        return self._as_fact(rows[0])

    def add_fact(self, user_id: str, kind: str, text: str, *, episode_id: str | None = None,
                 valid_from: float | None = None, fact_id: str | None = None,
                 visibility: Visibility | None = None) -> Fact:
        if kind not in FACT_KINDS:
            raise StoreError(f"fact kind must be one of {FACT_KINDS}, not {kind!r}")
        text = text.strip()
        if not text:
            raise StoreError("refusing an empty fact")
        fact_id = fact_id or "f" + secrets.token_hex(8)   # 64 bits: no collision in any memory
        vis = visibility or Visibility()
        with self.transaction():
            self.lock_user(user_id)
            self._x(
                "INSERT INTO facts (id, user_id, kind, text, source_episode, valid_from, visibility, hidden_from) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (fact_id, user_id, kind, text, episode_id, self.clock() if valid_from is None else valid_from,
                 vis.level, vis.hidden_column),
            )
            self._log("ADD", user_id, kind, fact_id, text, episode_id)
        return self._fact(fact_id)

    def supersede_fact(self, fact_id: str, new_text: str, *, episode_id: str | None = None,
                       visibility: Visibility | None = None) -> Fact:
        """UPDATE without losing history: the old item is closed and points at its replacement. The
        replacement keeps the old item's visibility unless the new statement came with its own."""
        with self.transaction():
            old = self._fact(fact_id)
            self.lock_user(old.user_id)
            old = self._fact(fact_id)                # as it is now that no one else can change it
            if not old.valid:
                raise StoreError(f"fact {fact_id} is already invalid; supersede its replacement instead")
            new = self.add_fact(old.user_id, old.kind, new_text, episode_id=episode_id,
                                visibility=visibility or old.visibility)
            self._x("UPDATE facts SET invalid_at=?, superseded_by=? WHERE id=?",
                    (new.valid_from, new.id, fact_id))
            self._log("UPDATE", old.user_id, old.kind, fact_id, f"superseded by {new.id}", episode_id)
        return new

    def invalidate_fact(self, fact_id: str, *, episode_id: str | None = None) -> Fact:
        with self.transaction():
            old = self._fact(fact_id)
            self.lock_user(old.user_id)
            self._x("UPDATE facts SET invalid_at=? WHERE id=? AND invalid_at IS NULL",
                    (self.clock(), fact_id))
            self._log("INVALIDATE", old.user_id, old.kind, fact_id, "", episode_id)
        return self._fact(fact_id)

    def facts(self, user_id: str, include_invalid: bool = False) -> list[Fact]:
        sql = f"SELECT {self._FACT_COLS} FROM facts WHERE user_id=?"
        if not include_invalid:
            sql += " AND invalid_at IS NULL"
        return [self._as_fact(r) for r in self._q(sql + f" ORDER BY valid_from DESC, {self._INSERT_ORDER} DESC",
                                                  (user_id,))]

    def set_visibility(self, item_id: str, visibility: Visibility, *, episode_id: str | None = None) -> None:
        """Who may be told a fact or an episode from now on; the audit log keeps each change."""
        table = "facts" if self._q("SELECT 1 FROM facts WHERE id=?", (item_id,)) else "episodes"
        with self.transaction():
            rows = self._q(f"SELECT user_id FROM {table} WHERE id=?", (item_id,))
            if not rows:
                raise StoreError(f"no fact or episode {item_id!r}")
            self.lock_user(rows[0][0])
            self._x(f"UPDATE {table} SET visibility=?, hidden_from=? WHERE id=?",
                    (visibility.level, visibility.hidden_column, item_id))
            self._log("VISIBILITY", rows[0][0], table[:-1], item_id, visibility.describe(), episode_id)

    # -- episodes ----------------------------------------------------------------------------
    def add_episode(self, user_id: str | None, start: float, end: float, transcript: str = "",
                    summary: str = "", episode_id: str | None = None,
                    visibility: Visibility | None = None) -> Episode:
        eid = episode_id or "e" + secrets.token_hex(8)
        vis = visibility or Visibility()
        with self.transaction():
            if user_id is not None:
                self.lock_user(user_id)
            self._x(
                'INSERT INTO episodes (id, user_id, start, "end", transcript, summary, visibility, hidden_from) '
                'VALUES (?,?,?,?,?,?,?,?)', (eid, user_id, start, end, transcript, summary, vis.level, vis.hidden_column),
            )
            self._log("ADD", user_id, "episode", eid, summary, eid)
        return Episode(eid, user_id, start, end, transcript, summary, vis)

    def episode_exists(self, episode_id: str) -> bool:
        return bool(self._q("SELECT 1 FROM episodes WHERE id=?", (episode_id,)))

    def episodes(self, user_id: str) -> list[Episode]:
        rows = self._q('SELECT id, user_id, start, "end", transcript, summary, visibility, hidden_from FROM episodes '
                       'WHERE user_id=? ORDER BY start DESC', (user_id,))
        return [Episode(*r[:6], visibility=Visibility.from_columns(r[6], r[7])) for r in rows]

    # -- relations ---------------------------------------------------------------------------
    def add_relation(self, src: str, dst: str, relation: str, *,
                     episode_id: str | None = None) -> list[Relation]:
        """Add `dst is src's relation` and its inverse edge (when the lexicon knows one); returns the
        edges that were new (an existing edge is left as it is)."""
        if src == dst:
            raise StoreError("a relation needs two different users")
        lex = relation_lexicon()
        canon = lex.canonical(relation)
        if not canon:
            raise StoreError("empty relation")
        edges = [(src, dst, canon)]
        inverse = lex.inverse(canon)
        if inverse:
            edges.append((dst, src, inverse))
        new_ids = []
        with self.transaction():
            self.lock_user(src), self.lock_user(dst)
            for a, b, rel in edges:
                row = self._x(
                    "INSERT INTO relations (src, dst, relation, since, source_episode) VALUES (?,?,?,?,?) "
                    "ON CONFLICT DO NOTHING RETURNING id",
                    (a, b, rel, self.clock(), episode_id),
                ).fetchone()
                if row:
                    new_ids.append(row[0])
                    self._log("ADD", a, "relation", str(row[0]), f"{b} is {a}'s {rel}", episode_id)
                elif episode_id and self._q("SELECT 1 FROM episodes WHERE id=? AND user_id=?", (episode_id, a)):
                    # `a` now says it themselves: the edge becomes theirs (it reaches their Level-1)
                    self._x("UPDATE relations SET source_episode=? WHERE src=? AND dst=? AND relation=?",
                                       (episode_id, a, b, rel))
        return [r for r in self.relations(src) if r.id in new_ids]

    def relations(self, user_id: str | None = None) -> list[Relation]:
        sql = "SELECT id, src, dst, relation, since, source_episode FROM relations"
        if user_id is None:
            return [Relation(*r) for r in self._q(sql + " ORDER BY id")]
        return [Relation(*r) for r in self._q(sql + " WHERE src=? OR dst=? ORDER BY id", (user_id, user_id))]

    # -- merge and erase ---------------------------------------------------------------------
    def merge_users(self, keep_id: str, merge_id: str) -> None:
        """Fold `merge_id` (typically a placeholder) into `keep_id`: keys, facts, episodes and edges move."""
        if not keep_id or not merge_id:
            raise StoreError("merging needs two user ids (keep_id and merge_id)")
        if keep_id == merge_id:
            raise StoreError("cannot merge a user into itself")
        with self.transaction():
            keep, gone = self.lock_user(keep_id), self.lock_user(merge_id)
            for table in ("face_keys", "voice_keys", "facts", "episodes"):
                self._x(f"UPDATE {table} SET user_id=? WHERE user_id=?", (keep_id, merge_id))
            for col, other in (("src", "dst"), ("dst", "src")):
                # an edge keep already has would be a duplicate: drop it, move the rest
                self._x(f"DELETE FROM relations WHERE {col}=? AND EXISTS (SELECT 1 FROM relations k WHERE "
                        f"k.{col}=? AND k.{other}=relations.{other} AND k.relation=relations.relation)",
                        (merge_id, keep_id))
                self._x(f"UPDATE relations SET {col}=? WHERE {col}=? AND {other}!=?", (keep_id, merge_id, keep_id))
            self._x("DELETE FROM relations WHERE src=? OR dst=?", (merge_id, merge_id))
            # the audit trail follows the person, so that forgetting them erases what was said as the
            # placeholder too (its rows, and its id in the texts of other people's rows)
            self._x("UPDATE audit SET user_id=? WHERE user_id=?", (keep_id, merge_id))
            self._x("UPDATE audit SET item_id=? WHERE item_id=?", (keep_id, merge_id))
            for table in ("facts", "episodes"):   # "don't tell Tom" about a placeholder Tom: now about Tom
                self._x(f"UPDATE {table} SET hidden_from=replace(hidden_from, ?, ?) WHERE hidden_from LIKE ?",
                        (f",{merge_id},", f",{keep_id},", f"%,{merge_id},%"))
            self._x("UPDATE audit SET detail=replace(detail, ?, ?) WHERE detail LIKE ?", (merge_id, keep_id, f"%{merge_id}%"))
            if not keep.name and gone.name:
                self._x("UPDATE users SET name=? WHERE id=?", (gone.name, keep_id))
            self._x("DELETE FROM users WHERE id=?", (merge_id,))
            self._log("MERGE", keep_id, "user", merge_id, f"{merge_id} merged into {keep_id}")

    def audit(self, user_id: str | None = None) -> list[AuditEntry]:
        sql = "SELECT id, ts, op, user_id, item_kind, item_id, detail, episode_id FROM audit"
        if user_id is None:
            return [AuditEntry(*r) for r in self._q(sql + " ORDER BY id")]
        return [AuditEntry(*r) for r in self._q(sql + " WHERE user_id=? ORDER BY id", (user_id,))]

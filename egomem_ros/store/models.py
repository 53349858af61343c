"""Plain records returned by a memory repository, and the repository interface itself.

Every call is scoped by user id (mem0's habit): nothing here reads or writes "all memory".
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from ..errors import EgomemError
from .visibility import SHARED_DEFAULT, Visibility

FactKind = Literal["fact", "preference", "event", "summary"]
FACT_KINDS: tuple[str, ...] = ("fact", "preference", "event", "summary")
Modality = Literal["face", "voice"]


def is_postgres_url(db: object) -> bool:
    """A `--db` / `store.url` naming a PostgreSQL server rather than a SQLite file."""
    return str(db).startswith(("postgresql://", "postgres://"))


def url_query_password(url: str) -> str:
    """The password a postgresql:// URL's query carries (`?password=`, percent-encoded or not), or ""."""
    from urllib.parse import parse_qsl, urlsplit

    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    return next((v or "(empty)" for k, v in pairs if k.strip().lower() == "password"), "")


def without_secrets(text: str, url: str) -> str:
    """`text` (a driver's error) with the URL's passwords replaced, wherever the driver quoted them."""
    from urllib.parse import urlsplit

    for secret in (urlsplit(url).password, url_query_password(url)):
        if secret and secret != "(empty)":
            text = text.replace(secret, "***")
    return text.replace(url, redacted_url(url))


def redacted_url(url: str) -> str:
    """The URL as messages may show it: no password, neither in `user:password@` nor in the query."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        host = parts.hostname or ""
        netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(k.strip().lower() == "password" for k, _ in pairs):
        parts = parts._replace(query=urlencode([(k, "***" if k.strip().lower() == "password" else v) for k, v in pairs],
                                               safe="/*"))
    return urlunsplit(parts)


def shown_db(db: object) -> str:
    """A `--db` as messages may show it: a PostgreSQL URL without its password."""
    return redacted_url(str(db)) if is_postgres_url(db) else str(db)


class StoreError(EgomemError, RuntimeError):
    """A store operation that cannot be carried out (unknown user, bad key, ...)."""


def shown(text: str, most: int = 64) -> str:
    """Input quoted in a message, cut short: a 1 MB id must not make a 1 MB answer."""
    return repr(text) if len(text) <= most else f"{text[:most]!r}... ({len(text)} characters)"


class DuplicateEpisodeError(StoreError):
    """The session's episode was committed by another process between our check and our insert (two
    robots or two replays of one bag on one shared database): the session is a duplicate, not a fault."""


class UnknownUserError(StoreError, KeyError):
    def __init__(self, user_id: str):
        super().__init__(f"unknown user: {shown(user_id)}")
        self.user_id = user_id

    def __str__(self) -> str:  # KeyError would quote the whole message
        return self.args[0]


@dataclass(frozen=True)
class User:
    id: str
    name: str | None
    placeholder: bool
    created_at: float
    last_seen: float | None

    @property
    def display_name(self) -> str:
        return self.name or self.id


@dataclass(frozen=True)
class Fact:
    id: str
    user_id: str
    kind: str
    text: str
    valid_from: float
    source_episode: str | None = None
    invalid_at: float | None = None
    superseded_by: str | None = None
    visibility: Visibility = SHARED_DEFAULT

    @property
    def valid(self) -> bool:
        return self.invalid_at is None


@dataclass(frozen=True)
class Relation:
    """`dst` is the `relation` of `src`: (Emily, John, colleague) reads "John is Emily's colleague"."""

    id: int
    src: str
    dst: str
    relation: str
    since: float
    source_episode: str | None = None


@dataclass(frozen=True)
class Episode:
    id: str
    user_id: str | None
    start: float
    end: float
    transcript: str = ""
    summary: str = ""
    visibility: Visibility = SHARED_DEFAULT


@dataclass(frozen=True)
class Erased:
    """What `forget_about` erased: items deleted, and episodes whose transcript or summary lost sentences."""
    items: int
    episodes: int


@dataclass(frozen=True)
class BiometricKey:
    id: int
    user_id: str
    modality: str
    model: str
    vector: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    ts: float
    op: str
    user_id: str | None
    item_kind: str
    item_id: str | None
    detail: str
    episode_id: str | None


class MemoryRepository(Protocol):
    """What the three EgoMem processes need from long-term memory: `SqliteStore` (one robot) and
    `PostgresStore` (a fleet sharing one server) implement it with the same SQL (store/sql_store.py)."""

    @property
    def revision(self) -> object: ...   # changes whenever anyone commits: a cache key for derived views
    def transaction(self) -> AbstractContextManager[None]: ...
    def lock_user(self, user_id: str) -> User: ...      # in a transaction: writes about one person take turns
    def lock_enrolment(self) -> None: ...               # in a transaction: one enrolment at a time
    def keys_revision(self) -> tuple[int, ...]: ...     # changes whenever a key is added or deleted
    def create_user(self, name: str | None = None, *, placeholder: bool = False,
                    user_id: str | None = None, episode_id: str | None = None) -> User: ...
    def get_user(self, user_id: str) -> User: ...
    def find_user(self, id_or_name: str) -> User: ...
    def list_users(self, include_placeholders: bool = True) -> list[User]: ...
    def set_name(self, user_id: str, name: str, episode_id: str | None = None) -> None: ...
    def touch_user(self, user_id: str, ts: float | None = None) -> None: ...
    def add_key(self, user_id: str, modality: Modality, model: str, vector: np.ndarray) -> int: ...
    def keys(self, modality: Modality, model: str | None = None) -> list[BiometricKey]: ...
    def user_keys(self, user_id: str, modality: Modality) -> list[BiometricKey]: ...
    def add_fact(self, user_id: str, kind: str, text: str, *, episode_id: str | None = None,
                 valid_from: float | None = None, fact_id: str | None = None,
                 visibility: Visibility | None = None) -> Fact: ...
    def supersede_fact(self, fact_id: str, new_text: str, *, episode_id: str | None = None,
                       visibility: Visibility | None = None) -> Fact: ...
    def set_visibility(self, item_id: str, visibility: Visibility, *, episode_id: str | None = None) -> None: ...
    def invalidate_fact(self, fact_id: str, *, episode_id: str | None = None) -> Fact: ...
    def facts(self, user_id: str, include_invalid: bool = False) -> list[Fact]: ...
    def add_episode(self, user_id: str | None, start: float, end: float, transcript: str = "",
                    summary: str = "", episode_id: str | None = None,
                    visibility: Visibility | None = None) -> Episode: ...
    def episodes(self, user_id: str) -> list[Episode]: ...
    def episode_exists(self, episode_id: str) -> bool: ...
    def add_relation(self, src: str, dst: str, relation: str, *,
                     episode_id: str | None = None) -> list[Relation]: ...
    def relations(self, user_id: str | None = None) -> list[Relation]: ...
    def merge_users(self, keep_id: str, merge_id: str) -> None: ...
    def forget_user(self, user_id: str) -> None: ...
    def forget_about(self, user_id: str, about: str) -> Erased: ...
    def audit(self, user_id: str | None = None) -> list[AuditEntry]: ...

"""Long-term memory: users, biometric keys, facts, episodes, relations, audit log."""
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
from .sqlite_store import SqliteStore, new_person_id

__all__ = [
    "FACT_KINDS", "AuditEntry", "BiometricKey", "Episode", "Fact", "MemoryRepository", "Relation",
    "SqliteStore", "StoreError", "UnknownUserError", "User", "new_person_id",
]

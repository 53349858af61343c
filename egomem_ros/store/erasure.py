"""What `forget` does to the words other people's memory holds about the forgotten person.

Policy (docs/privacy.md): what other users said stays their memory, but the person's name, each part of
it and their user id are replaced by `FORGOTTEN` wherever they appear as whole words: facts, episode
transcripts and summaries, the audit log and sessions waiting in the spool. Whole words only, so
forgetting "Al" leaves "Alice" alone.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

FORGOTTEN = "[forgotten]"


def name_words(name: str | None, user_id: str) -> list[str]:
    """The full name, each of its parts and the id, longest first (so "Emily Chen" goes before "Emily")."""
    words = {user_id}
    if name and name.strip():
        words.add(" ".join(name.split()))
        words.update(part for part in re.split(r"[\s-]+", name) if part)
    return sorted(words, key=len, reverse=True)


def name_pattern(words: Iterable[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(w) for w in words if w)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def scrub(text: str, pattern: re.Pattern[str]) -> str:
    return pattern.sub(FORGOTTEN, text) if text else text

"""What `forget` does to the words other people's memory holds about the forgotten person.

Policy (docs/privacy.md): what other users said stays their memory, but the person's name, each part of
it and their user id are replaced by `FORGOTTEN` wherever they appear as whole words: facts, episode
transcripts and summaries, the audit log and sessions waiting in the spool. Whole words only, so
forgetting "Al" leaves "Alice" alone.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

FORGOTTEN = "[forgotten]"


def name_words(name: str | None, user_id: str) -> list[str]:
    """The full name, each of its parts and the id, longest first (so "Emily Chen" goes before "Emily")."""
    words = {user_id}
    if name and name.strip():
        words.add(" ".join(name.split()))
        words.update(part for part in re.split(r"[\s-]+", name) if part)
    return sorted(words, key=len, reverse=True)


def name_pattern(words: Iterable[str]) -> re.Pattern[str]:
    """Whole words, in any case, except a name part that is also a common English word ("Will", "Art",
    "Rose"): that one only as a name is written, capitalised, so that forgetting Will Art leaves "I will
    visit the art museum" alone. Which words are common comes from WordNet's lemma lists; without them
    every part matches in any case (erasing too much rather than too little)."""
    common = english_words()
    alternatives = []
    for w in (w for w in words if w):
        if " " not in w and w.lower() in common:
            alternatives.append(f"(?-i:{re.escape(w[:1].upper() + w[1:])}|{re.escape(w.upper())})")
        else:
            alternatives.append(re.escape(w))
    return re.compile(rf"(?<!\w)(?:{'|'.join(alternatives)})(?!\w)", re.IGNORECASE)


WORDNET = Path("/usr/share/wordnet")


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Every lemma of Debian's `wordnet-base` (nouns, verbs, adjectives, adverbs) that is written in lower
    case somewhere: "will", "art", "rose"; not "Sarah" or "Emily", which WordNet has only as names."""
    words: set[str] = set()
    for pos in ("noun", "verb", "adj", "adv"):
        path = WORDNET / f"data.{pos}"
        if not path.exists():
            continue
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(" "):   # the license header
                    continue
                fields = line.split(" ", 4 + 2 * 64)
                for i in range(int(fields[3], 16)):
                    lemma = fields[4 + 2 * i].split("(")[0]
                    if lemma.islower():
                        words.add(lemma)
    return frozenset(words)


def scrub(text: str, pattern: re.Pattern[str]) -> str:
    return pattern.sub(FORGOTTEN, text) if text else text

"""How much of a person's talk memory keeps: `items_per_100_sentences` items per 100 sentences they
said within the last hour, and never fewer than `FLOOR` in that hour.

The extractor ranks a session's items by how much there is to remember. The budget is the person's,
not the session's: two people taking turns in front of the robot make every turn a session, and a
floor of `FLOOR` per session would let memory grow with every turn. A short first visit ("Hi, I'm
Priya. I work as a nurse. I love chess.") keeps both of its items: the floor is the person's hour's.
A session always gets its own share (its sentences at the rate, rounded up): otherwise the first turns
of a visit spend the hour's share and a later, richer turn keeps nothing.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence

from .extraction import Extraction
from ..store.visits import user_lines

WINDOW_S = 3600.0
FLOOR = 3
MAX_PER_SESSION = 100   # what one session may add whatever an extractor answers (an LLM once returned 200,000 facts)
ITEM_KINDS = ("fact", "preference", "event")


def sentence_count(text: str) -> int:
    return len([s for s in re.split(r"[.!?]+", text) if re.search(r"[A-Za-z]", s)])


def recent_talk(store, user_id: str, before: float) -> tuple[int, int]:
    """(items kept, user sentences) of the person's sessions that ended within WINDOW_S before `before`."""
    recent = {e.id: e for e in store.episodes(user_id) if before - WINDOW_S <= e.end <= before}
    if not recent:
        return 0, 0
    said = sum(sentence_count(line) for e in recent.values() for line in user_lines(e.transcript))
    kept = sum(1 for f in store.facts(user_id, include_invalid=True) if f.source_episode in recent and f.kind in ITEM_KINDS)
    return kept, said


def within_budget(ex: Extraction, kept_before: int, said_before: int) -> Extraction:
    """`ex` with its items cut to what the person's budget leaves, the best first (an extraction without
    a ranking, from the LLM, is left as it is)."""
    if not ex.ranked or ex.items_per_100 <= 0:
        return ex
    hour = max(FLOOR, math.ceil((said_before + ex.sentences) * ex.items_per_100 / 100)) - kept_before
    allowed = max(hour, math.ceil(ex.sentences * ex.items_per_100 / 100))
    keep = set(ex.ranked[:max(0, allowed)])
    if len(keep) == len(ex.ranked):
        return ex
    cut = {k: _only(getattr(ex, k), keep) for k in ("facts", "preferences", "events")}
    notes = [*ex.notes, f"person's budget: {len(keep)} of {len(ex.ranked)} items kept "
                        f"({kept_before} kept from {said_before} sentences in the last hour)"]
    return ex.model_copy(update={**cut, "notes": notes})


def capped(ex: Extraction) -> Extraction:
    """`ex` with at most MAX_PER_SESSION items, relations and items about other people, in its order."""
    lists = ("facts", "preferences", "events", "relations", "others")
    total = sum(len(getattr(ex, k)) for k in lists)
    if total <= MAX_PER_SESSION:
        return ex
    left, cut = MAX_PER_SESSION, {}
    for k in lists:
        cut[k] = getattr(ex, k)[:left]
        left -= len(cut[k])
    note = f"{total} items in one session: the first {MAX_PER_SESSION} kept (memory.item_budget.MAX_PER_SESSION)"
    return ex.model_copy(update={**cut, "notes": [*ex.notes, note]})


def _only(items: Sequence[str], keep: set[str]) -> list[str]:
    return [i for i in items if i in keep or i.startswith("lives in ")]   # a move's home slot goes with the move

"""A person's visit: their sessions less than `VISIT_GAP_S` apart.

Two people taking turns before the robot make every turn a session (the cut at each change of voice).
What the dialog model should see of their recent conversations is one line per visit, naming the
visit's topics, not the last three turns of the last visit. So a session's summary speaks of the whole
visit so far, and the Level-1 "Recent conversations" shows each visit's latest summary.
"""
from __future__ import annotations

from collections.abc import Sequence

from .models import Episode

VISIT_GAP_S = 1800.0   # half an hour without a session of theirs ends a visit


def visits(episodes: Sequence[Episode]) -> list[list[Episode]]:
    """The episodes grouped into visits, oldest first, each in time order."""
    grouped: list[list[Episode]] = []
    for e in sorted(episodes, key=lambda e: e.start):
        if grouped and e.start - grouped[-1][-1].end < VISIT_GAP_S:
            grouped[-1].append(e)
        else:
            grouped.append([e])
    return grouped


def user_lines(transcript: str) -> list[str]:
    """What the user said in a stored transcript ("user: ..." lines)."""
    return [line.split(":", 1)[1].strip() for line in transcript.splitlines() if line.startswith("user:")]


def earlier_in_visit(episodes: Sequence[Episode], start: float) -> list[str]:
    """What the person said in the visit that a session starting at `start` continues: their episodes that
    ended less than VISIT_GAP_S before it, back to the last longer gap."""
    before = [e for e in episodes if e.end <= start]
    if not before:
        return []
    last = visits(before)[-1]
    if start - last[-1].end >= VISIT_GAP_S:
        return []
    return [text for e in last for text in user_lines(e.transcript)]

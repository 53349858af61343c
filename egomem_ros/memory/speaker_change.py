"""Where the speaker changes inside a session: two people talking in front of the robot are two speakers.

The session segmenter cuts the stream at silences and at a change of the person in view. Two people
standing together and taking turns give one session with both voices in it, and a session's words are
written onto one person. So a session is cut again at each user turn whose voice is not the voice of
the turns before it (the turn's speaker embedding against the running mean of the part so far).

A session is also cut at a user turn that introduces another name than an earlier turn of the same
part did ("Hi robot, my name is Wendy ..." then "Hi robot, my name is Jamal ..."): however alike two
voices sound, two names are two people.

Once the people taking turns are known, each turn is also matched against their enrolled voices, and
the session is cut where the known voice a turn clearly sounds like changes (`known_speaker_changes`).
Two alike voices may both stay above the change threshold turn after turn, yet each turn is still
nearer the keys of the one who said it: enrolled keys average many turns, a part's first turns few.

Turns too short to embed (under the voice engine's `min_voiced_s`) stay with the part they follow.
The cosine a turn needs to stay in its part is the backend's `turn_change_cosine`. For resemblyzer it
was measured on 1.5 s clips of the shared LibriSpeech and FSDD speakers: at 0.65, 5 % of same-speaker
pairs fall below it and 1 % of different-speaker pairs reach it. A wrong cut costs little (two sessions
of one person, each attributed on its own); a missed cut writes one person's words onto the other.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .extraction import Turn, introduced_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimedTurn:
    start: float
    end: float
    turn: Turn


def voice_changes(turns: Sequence[tuple[int, int, np.ndarray | None]], threshold: float) -> list[int]:
    """Cut where a user turn sounds unlike the session so far (its running voice centroid): one short,
    noisy turn compared with the previous one alone split sessions too often. `turns`: (start, end,
    unit embedding or None); returns the starts of the turns that begin another speaker's part."""
    cuts: list[int] = []
    centroid = None
    for s, _, emb in turns:
        if emb is None:
            continue
        if centroid is not None and float(emb @ (centroid / np.linalg.norm(centroid))) < threshold:
            cuts.append(s)
            centroid = None
        centroid = emb if centroid is None else centroid + emb
    return cuts


def known_speaker_changes(scores: Sequence[tuple[int, dict[str, float]]], margin: float) -> list[int]:
    """Cut where the known person a turn clearly sounds like is not the one the turns before sounded
    like. `scores`: (turn index, per-person similarity to their enrolled voice keys); a turn is that
    person's when it is `margin` nearer them than anyone else, else it says nothing."""
    cuts: list[int] = []
    current = None
    for i, per_user in scores:
        ranked = sorted(per_user.items(), key=lambda kv: -kv[1])
        log.debug("turn %d: known voices %s", i, {u: round(c, 3) for u, c in ranked[:3]})
        if len(ranked) < 2 or ranked[0][1] - ranked[1][1] < margin:
            continue
        if current is not None and ranked[0][0] != current:
            cuts.append(i)
        current = ranked[0][0]
    return cuts


def split_by_voice(turns: Sequence[TimedTurn], embed: Callable[[float, float], np.ndarray | None],
                   min_cosine: float, known: Callable[[np.ndarray], dict[str, float]] | None = None,
                   margin: float = 0.0) -> list[list[TimedTurn]]:
    """The session's turns in parts, one speaker each; `embed(start, end)`: the user's voice in that span,
    or None when there is too little of it (`min_cosine` 0: introductions only, no voice cuts). `known`:
    an embedding's similarity to each known person's voice keys (`margin`: how much nearer one must be).
    Robot turns stay in the part they fall in."""
    cuts = set(introductions(turns))
    if min_cosine > 0:
        voices = [(i, i, _unit(embed(t.start, t.end)) if t.turn.speaker == "user" else None) for i, t in enumerate(turns)]
        cuts.update(voice_changes(voices, min_cosine))
        if known is not None and margin > 0:
            cuts.update(known_speaker_changes([(i, known(e)) for i, _, e in voices if e is not None], margin))
    bounds = [0, *sorted(cuts), len(turns)]
    return [list(turns[a:b]) for a, b in zip(bounds, bounds[1:]) if b > a]


def introductions(turns: Sequence[TimedTurn]) -> list[int]:
    """The user turns that introduce another name than the one introduced last (each begins a part)."""
    cuts, last = [], None
    for i, t in enumerate(turns):
        name = introduced_name(t.turn.text) if t.turn.speaker == "user" else None
        if name and last and name.lower() != last.lower():
            cuts.append(i)
        last = name or last
    return cuts


def _unit(v: np.ndarray | None) -> np.ndarray | None:
    if v is None:
        return None
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else None

"""Turning face distances and voice scores into one decision, and keeping it steady across polls.

Each modality's score becomes a per-user confidence with a logistic around its calibrated threshold
(0.5 exactly at the threshold). Present modalities are averaged with their weights; the best user at
≥ 0.5 is `known`, otherwise a present face or voice means `unknown`, and nothing present is `nobody`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

KNOWN, UNKNOWN, NOBODY = "known", "unknown", "nobody"


def logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


def distance_confidence(distance: float, threshold: float) -> float:
    """Smaller distance is better; slope: the confidence is 0.73/0.27 at ±5% of the threshold."""
    return logistic((threshold - distance) / (threshold / 20.0))


def score_confidence(score: float, threshold: float, scale: float) -> float:
    """Larger score is better (cosine or s-norm)."""
    return logistic((score - threshold) / scale)


@dataclass(frozen=True)
class Decision:
    status: str                 # known | unknown | nobody
    user_id: str = ""
    confidence: float = 0.0
    corroborated: bool = False  # face and voice each point to this user on their own


def fuse(face: dict[str, float] | None, voice: dict[str, float] | None, face_weight: float) -> Decision:
    """`face`/`voice`: user -> confidence for that modality (None when the modality is absent)."""
    present = [(c, w) for c, w in ((face, face_weight), (voice, 1.0 - face_weight)) if c is not None]
    if not present:
        return Decision(NOBODY)
    total_w = sum(w for _, w in present) or 1.0
    users = set().union(*(c.keys() for c, _ in present))
    fused = {u: sum(c.get(u, 0.0) * w for c, w in present) / total_w for u in users}
    if fused:
        best = max(fused, key=lambda u: (fused[u], u))
        if fused[best] >= 0.5:
            both = len(present) == 2 and all(c.get(best, 0.0) >= 0.5 for c, _ in present)
            return Decision(KNOWN, best, fused[best], both)
    best_conf = max(fused.values(), default=0.0)
    return Decision(UNKNOWN, "", 1.0 - best_conf)


class SwitchHysteresis:
    """The current identity changes after `polls` agreeing polls, or at once for a confident one
    (fused confidence ≥ `instant_confidence`, or face and voice independently agreeing).

    This keeps one bad poll from flapping the user while a clear recognition still reaches the
    dialog model within one poll. Going to `nobody` always needs `polls` agreeing polls.
    """

    def __init__(self, polls: int = 2, instant_confidence: float = 0.9):
        self.polls = polls
        self.instant_confidence = instant_confidence
        self.current = ""        # stable identity key: user id, temporary id, or "" for nobody
        self._pending = ""
        self._count = 0

    def update(self, key: str, confidence: float, corroborated: bool = False) -> bool:
        """Feed this poll's identity key; True when the stable identity switched."""
        if key == self.current:
            self._pending, self._count = "", 0
            return False
        self._count = self._count + 1 if key == self._pending else 1
        self._pending = key
        if self._count >= self.polls or (key and (corroborated or confidence >= self.instant_confidence)):
            self.current, self._pending, self._count = key, "", 0
            return True
        return False

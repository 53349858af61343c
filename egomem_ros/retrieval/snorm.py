"""Adaptive symmetric score normalisation (AS-norm) for speaker verification (paper §3.1.2, §5.1).

    s_norm(q, k) = ½ [ (s − μ_q) / σ_q + (s − μ_k) / σ_k ]

μ and σ are the mean and standard deviation of the top-N cosine scores of the query (or of the
enrolled key) against an imposter cohort. The cohort must never contain the target user: cohort rows
carry an owner label and rows owned by the candidate user are excluded for both sides.

Where the cohort comes from on a robot: voices of people it heard but never enrolled (unknown-person
embeddings kept by the memory process) plus the other users' keys. In `egomem eval speaker` it is the
enrolment utterances of the other speakers (leave-one-out), or `--cohort DIR`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-12)


class AdaptiveSNorm:
    def __init__(self, cohort: np.ndarray, labels: Sequence[str | None] | None = None, top_n: int = 200):
        self.cohort = l2_normalise(np.atleast_2d(cohort)) if len(cohort) else np.zeros((0, 1), np.float32)
        self.labels = np.array([lbl if lbl is not None else "" for lbl in (labels or [None] * len(self.cohort))],
                               dtype=object)
        if len(self.labels) != len(self.cohort):
            raise ValueError("one label per cohort row")
        self.top_n = top_n
        self._key_stats: dict[tuple[str, int], tuple[float, float]] = {}

    def __len__(self) -> int:
        return len(self.cohort)

    def _stats(self, vec: np.ndarray, exclude: str | None) -> tuple[float, float]:
        scores = self.cohort @ vec
        if exclude:
            scores = scores[self.labels != exclude]
        if scores.size < 2:
            return 0.0, 1.0
        n = min(self.top_n, scores.size)
        top = np.partition(scores, -n)[-n:]
        return float(top.mean()), float(max(top.std(), 1e-4))

    def precompute_key(self, key_id: int, user: str, key: np.ndarray) -> None:
        """Enrolled keys' statistics are computed once, when the key is added."""
        self._key_stats[(user, key_id)] = self._stats(l2_normalise(key), user)

    def key_stats(self, key_id: int, user: str, key: np.ndarray) -> tuple[float, float]:
        if (user, key_id) not in self._key_stats:
            self.precompute_key(key_id, user, key)
        return self._key_stats[(user, key_id)]

    def forget_user(self, user: str) -> None:
        self._key_stats = {k: v for k, v in self._key_stats.items() if k[0] != user}
        keep = self.labels != user
        self.cohort, self.labels = self.cohort[keep], self.labels[keep]

    def normalise(self, query: np.ndarray, keys: np.ndarray, key_users: Sequence[str],
                  key_ids: Sequence[int] | None = None) -> np.ndarray:
        """s-norm scores of one query against rows of `keys` owned by `key_users`."""
        q = l2_normalise(query)
        k = l2_normalise(np.atleast_2d(keys))
        raw = k @ q
        if len(self) < 2:
            return raw
        ids = list(key_ids) if key_ids is not None else list(range(len(k)))
        qstats: dict[str, tuple[float, float]] = {}
        owners = set(self.labels.tolist())
        shared = None
        out = np.empty_like(raw)
        for i, (user, kid) in enumerate(zip(key_users, ids)):
            if user not in qstats:
                if user in owners:
                    qstats[user] = self._stats(q, user)
                else:  # the cohort holds nothing of this user: one set of query statistics serves all
                    shared = shared or self._stats(q, None)
                    qstats[user] = shared
            mq, sq = qstats[user]
            mk, sk = self.key_stats(kid, user, k[i])
            out[i] = 0.5 * ((raw[i] - mq) / sq + (raw[i] - mk) / sk)
        return out

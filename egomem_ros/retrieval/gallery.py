"""Biometric key search: exact numpy up to `exact_max_keys`, an HNSW index (hnswlib) beyond.

Keys are added and removed incrementally; forgetting a user removes their keys from whichever index
is live. Distances: Euclidean for dlib faces, cosine distance (1 − cos) for voices and Facenet512.

The HNSW index holds a PCA projection of the keys to `ann_dim` dimensions (fitted on the keys when
the index is built) and its `ann_candidates` nearest keys are re-ranked exactly on the full vectors.
Why: a graph search's cost is dominated by distance computations, so a 96-d graph can search much
broader than a 256-d one in the same time, and the exact re-rank makes the returned distances (and
the order) those of exact search. At 10^6 real-like voice keys the true neighbour's rank in the 96-d
projection was at most 2 (at 64-d, over 128 for 0.3% of queries), so 64 candidates lose nothing and
what is left is the graph search: M 48, ef 500 gave 3.9 ms and recall@1 0.991 (bench/bench_match.py).
Keys added after the build are projected with the same matrix.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np

from .snorm import l2_normalise

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Match:
    key_id: int
    user_id: str
    distance: float


class KeyGallery:
    def __init__(self, dim: int, metric: str = "cosine", *, exact_max_keys: int = 100_000,
                 hnsw_m: int = 48, hnsw_ef_construction: int = 200, hnsw_ef: int = 500,
                 ann_dim: int = 96, ann_candidates: int = 64):
        if metric not in ("cosine", "euclidean"):
            raise ValueError(f"metric must be cosine or euclidean, not {metric!r}")
        self.dim, self.metric, self.exact_max_keys = dim, metric, exact_max_keys
        self._hnsw_params = (hnsw_m, hnsw_ef_construction, hnsw_ef)
        self.ann_dim = ann_dim if 0 < ann_dim < dim else dim
        self.ann_candidates = ann_candidates
        self._proj: tuple[np.ndarray, np.ndarray] | None = None  # (mean, dim x ann_dim) of the PCA
        self._vecs = np.zeros((0, dim), np.float32)
        self._key_ids = np.zeros(0, np.int64)
        self._users = np.zeros(0, dtype=object)
        self._alive = np.zeros(0, bool)
        self._row_of: dict[int, int] = {}
        self._hnsw = None
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return int(self._alive.sum())

    @property
    def uses_ann(self) -> bool:
        return self._hnsw is not None

    def _prep(self, vecs: np.ndarray) -> np.ndarray:
        vecs = np.atleast_2d(np.asarray(vecs, np.float32))
        if vecs.shape[1] != self.dim:
            raise ValueError(f"key dimension {vecs.shape[1]} does not match the gallery's {self.dim}")
        if not np.all(np.isfinite(vecs)):
            raise ValueError("keys with NaN/inf values are refused")
        return l2_normalise(vecs) if self.metric == "cosine" else vecs

    def add(self, key_ids, user_ids, vecs) -> None:
        key_ids = np.atleast_1d(np.asarray(key_ids, np.int64))
        users = np.atleast_1d(np.asarray(user_ids, dtype=object))
        vecs = self._prep(vecs)
        if not (len(key_ids) == len(users) == len(vecs)):
            raise ValueError("one key id and one user id per vector")
        with self._lock:
            start = len(self._key_ids)
            self._vecs = np.concatenate([self._vecs, vecs])
            self._key_ids = np.concatenate([self._key_ids, key_ids])
            self._users = np.concatenate([self._users, users])
            self._alive = np.concatenate([self._alive, np.ones(len(key_ids), bool)])
            for i, kid in enumerate(key_ids):
                if int(kid) in self._row_of:
                    self._alive[self._row_of[int(kid)]] = False
                self._row_of[int(kid)] = start + i
            if self._hnsw is not None:
                self._hnsw_add(np.arange(start, start + len(key_ids)))
            elif len(self) > self.exact_max_keys:
                self._build_hnsw()

    def remove_key(self, key_id: int) -> None:
        with self._lock:
            row = self._row_of.pop(int(key_id), None)
            if row is None:
                return
            self._alive[row] = False
            if self._hnsw is not None:
                self._hnsw.mark_deleted(row)

    def remove_user(self, user_id: str) -> int:
        with self._lock:
            rows = np.flatnonzero(self._alive & (self._users == user_id))
            for row in rows:
                self.remove_key(int(self._key_ids[row]))
            return len(rows)

    def users(self) -> set[str]:
        return set(self._users[self._alive])

    def key_count(self, user_id: str) -> int:
        return int(np.count_nonzero(self._alive & (self._users == user_id)))

    def vector(self, key_id: int) -> np.ndarray:
        return self._vecs[self._row_of[int(key_id)]]

    def _sq_norms(self) -> np.ndarray:
        if getattr(self, "_norm_cache", (None, -1))[1] != len(self._vecs):
            self._norm_cache = (np.einsum("ij,ij->i", self._vecs, self._vecs), len(self._vecs))
        return self._norm_cache[0]

    # -- ANN -----------------------------------------------------------------------------------
    def _fit_projection(self, rows: np.ndarray, max_rows: int = 50_000) -> None:
        if self.ann_dim >= self.dim:
            return
        sample = self._vecs[rows[np.linspace(0, len(rows) - 1, min(len(rows), max_rows)).astype(np.int64)]]
        mean = sample.mean(0)
        _, _, vt = np.linalg.svd(sample - mean, full_matrices=False)
        self._proj = (mean.astype(np.float32), np.ascontiguousarray(vt[:self.ann_dim].T, np.float32))

    def _project(self, vecs: np.ndarray) -> np.ndarray:
        if self._proj is None:
            return vecs
        mean, basis = self._proj
        return (vecs - mean) @ basis

    def _build_hnsw(self) -> None:
        import hnswlib

        m, efc, ef = self._hnsw_params
        alive = np.flatnonzero(self._alive)
        self._fit_projection(alive)
        # projected keys are no longer unit length: L2 in the projected space approximates 2 - 2 cos
        space = "cosine" if self.metric == "cosine" and self._proj is None else "l2"
        index = hnswlib.Index(space=space, dim=self.ann_dim)
        index.init_index(max_elements=max(1024, 2 * len(self._key_ids)), ef_construction=efc, M=m,
                         allow_replace_deleted=False)
        index.set_ef(ef)
        self._hnsw = index
        log.info("key gallery: %d keys > %d, switching to an HNSW index (%d-d, exact re-rank of %d)",
                 len(self), self.exact_max_keys, self.ann_dim, self.ann_candidates)
        self._hnsw_add(alive)

    def _hnsw_add(self, rows: np.ndarray) -> None:
        if not len(rows):
            return
        need = int(rows.max()) + 1
        if need > self._hnsw.get_max_elements():
            self._hnsw.resize_index(max(need, 2 * self._hnsw.get_max_elements()))
        self._hnsw.add_items(self._project(self._vecs[rows]), rows)

    # -- search --------------------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int = 10) -> list[Match]:
        """The k nearest live keys (ascending distance)."""
        q = self._prep(query)[0]
        with self._lock:
            n_alive = len(self)
            if n_alive == 0:
                return []
            k = min(k, n_alive)
            if self._hnsw is not None:
                found, _ = self._hnsw.knn_query(self._project(q[None, :]), k=min(max(k, self.ann_candidates), n_alive))
                cand = found[0].astype(np.int64)
                d = self._distances(q, cand)
            else:
                cand = None  # dead rows are masked, not copied out, to keep this one matmul
                d = np.where(self._alive, self._distances(q), np.inf)
            k = min(k, len(d))
            top = np.argpartition(d, k - 1)[:k] if k < len(d) else np.arange(len(d))
            top = top[np.argsort(d[top])]
            top = top[np.isfinite(d[top])]
            rows = top if cand is None else cand[top]
            return [Match(int(self._key_ids[r]), str(self._users[r]), float(x)) for r, x in zip(rows, d[top])]

    def _distances(self, q: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Exact distances of `q` to the given rows (all rows when None)."""
        vecs = self._vecs if rows is None else self._vecs[rows]
        if self.metric == "cosine":
            return 1.0 - vecs @ q
        sq = self._sq_norms() if rows is None else np.einsum("ij,ij->i", vecs, vecs)
        return np.sqrt(np.maximum(sq - 2 * vecs @ q + q @ q, 0))

    def best_per_user(self, query: np.ndarray, k: int = 20) -> dict[str, Match]:
        """Nearest key of each user among the k nearest keys."""
        best: dict[str, Match] = {}
        for m in self.search(query, k):
            if m.user_id not in best or m.distance < best[m.user_id].distance:
                best[m.user_id] = m
        return best

"""Helpers shared by the benchmarks: real embeddings from ../shared/data, and 'real-like' synthetic
identities made by perturbing them (uniform random vectors would make ANN recall meaningless)."""
from __future__ import annotations

import os
import statistics
from pathlib import Path

import numpy as np

SHARED = Path(os.environ.get("EGOMEM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def summary(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {"median_ms": statistics.median(ms), "p95_ms": ms[min(len(ms) - 1, int(0.95 * len(ms)))]}


def real_like_identities(base: np.ndarray, n: int, *, spread: float = 0.35, seed: int = 0) -> np.ndarray:
    """n distinct identity centres near the manifold of real embeddings `base` (rows)."""
    rng = np.random.default_rng(seed)
    b = base / np.linalg.norm(base, axis=1, keepdims=True)
    mix = b[rng.integers(0, len(b), n)] + spread * rng.normal(size=(n, b.shape[1])) / np.sqrt(b.shape[1]) * 4
    return (mix / np.linalg.norm(mix, axis=1, keepdims=True)).astype(np.float32)


def perturb(x: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = x + sigma * rng.normal(size=x.shape) / np.sqrt(x.shape[1]) * 4
    return (y / np.linalg.norm(y, axis=1, keepdims=True)).astype(np.float32)

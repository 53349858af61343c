"""`egomem eval face DIR`: LFW-protocol face verification accuracy on any DIR/<identity>/<images>."""
from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ...retrieval.face import FaceEngine
from ...retrieval.media import load_image
from ...identity_dirs import IMAGE_EXT, identity_files
from .datasets import embed_files
from .metrics import kfold_verification_accuracy

Progress = Callable[[Iterable], Iterable]


def embed_faces(engine: FaceEngine, files: dict[str, list[Path]], progress: Progress | None = None
                ) -> tuple[dict[Path, np.ndarray], dict[str, int], float]:
    return embed_files(files, lambda p: engine.observe(load_image(p)), empty="no_face", progress=progress)


def lfw_pairs(files: dict[str, list[Path]], seed: int = 0) -> list[tuple[Path, Path, bool]]:
    """All same-identity pairs plus an equal number of seeded different-identity pairs."""
    rng = random.Random(seed)
    same = [(a, b, True) for fs in files.values() for a, b in itertools.combinations(fs, 2)]
    names = [n for n in files]
    diff: set[tuple[Path, Path]] = set()
    if len(names) >= 2:
        while len(diff) < len(same):
            n1, n2 = rng.sample(names, 2)
            diff.add((rng.choice(files[n1]), rng.choice(files[n2])))
    return same + [(a, b, False) for a, b in sorted(diff)]


def evaluate_faces(root: str | Path, engine: FaceEngine, *, folds: int = 10, seed: int = 0,
                   progress: Progress | None = None) -> dict[str, Any]:
    files = identity_files(root, IMAGE_EXT)
    embeddings, counts, ms = embed_faces(engine, files, progress)
    pairs = [(a, b, s) for a, b, s in lfw_pairs(files, seed) if a in embeddings and b in embeddings]
    if not any(s for *_, s in pairs) or all(s for *_, s in pairs):
        raise ValueError("need at least two identities with two usable faces each")
    dist = np.array([engine.distances(embeddings[a], embeddings[b][None, :])[0] for a, b, _ in pairs])
    same = np.array([s for *_, s in pairs])
    acc, std, thr = kfold_verification_accuracy(dist, same, folds=min(folds, len(pairs)), seed=seed)
    return {
        "accuracy": acc,
        "accuracy_std": std,
        "threshold": thr,
        "default_threshold": engine.threshold,
        "accuracy_at_default_threshold": float(np.mean((dist < engine.threshold) == same)),
        "pairs": len(pairs),
        "identities": len(files),
        "images": sum(len(f) for f in files.values()),
        "no_face": counts["no_face"],
        "corrupt": counts["corrupt"],
        "ms_per_image": ms,
        "model": engine.model,
        "metric": engine.backend.metric,
    }

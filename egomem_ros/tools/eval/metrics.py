"""Verification metrics shared by the face and speaker evaluations."""
from __future__ import annotations

import numpy as np


def eer(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """Equal error rate and its threshold for similarity scores (higher = same person)."""
    genuine, impostor = np.asarray(genuine, float), np.asarray(impostor, float)
    if genuine.size == 0 or impostor.size == 0:
        raise ValueError("EER needs both genuine and impostor scores")
    thresholds = np.unique(np.concatenate([genuine, impostor]))
    g = np.sort(genuine)
    i = np.sort(impostor)
    frr = np.searchsorted(g, thresholds, side="left") / g.size          # genuine below threshold
    far = 1.0 - np.searchsorted(i, thresholds, side="left") / i.size    # impostors at/above threshold
    k = int(np.argmin(np.abs(far - frr)))
    return float((far[k] + frr[k]) / 2), float(thresholds[k])


def best_accuracy_threshold(distances: np.ndarray, same: np.ndarray) -> float:
    """Distance threshold (same if d < t) that maximises accuracy on these pairs."""
    order = np.unique(distances)
    candidates = np.concatenate([[order[0] - 1e-6], (order[:-1] + order[1:]) / 2, [order[-1] + 1e-6]])
    acc = [np.mean((distances < t) == same) for t in candidates]
    return float(candidates[int(np.argmax(acc))])


def kfold_verification_accuracy(distances: np.ndarray, same: np.ndarray, folds: int = 10,
                                seed: int = 0) -> tuple[float, float, float]:
    """LFW protocol: threshold picked on k-1 folds, accuracy measured on the held-out fold.

    Returns (mean accuracy, std, threshold fitted on all pairs).
    """
    distances, same = np.asarray(distances, float), np.asarray(same, bool)
    idx = np.random.default_rng(seed).permutation(len(distances))
    parts = np.array_split(idx, folds)
    accs = []
    for k in range(folds):
        test = parts[k]
        train = np.concatenate([p for j, p in enumerate(parts) if j != k])
        t = best_accuracy_threshold(distances[train], same[train])
        accs.append(np.mean((distances[test] < t) == same[test]))
    return float(np.mean(accs)), float(np.std(accs)), best_accuracy_threshold(distances, same)

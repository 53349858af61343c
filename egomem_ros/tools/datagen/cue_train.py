"""Train the privacy cue classifier that `memory/cue_intent.py` runs (not on the robot).

The examples of `data/privacy_intents.yaml` (`secret`, `public`, `forget`, `none`) and clauses of ordinary
conversation as `none` (the dev conversations, bench/data/conversations/conv01-06.json: people telling a
friend about their week), embedded by all-MiniLM-L6-v2, fit one multinomial logistic regression. The
conversations teach it what everyday talk sounds like, so that "I wasn't going to tell anyone yet, but we're
expecting" does not read as an order to the robot as often as the examples alone would make it.

    egomem train cues [--out egomem_ros/data/cue_intent.npz] [--conversations FILE ...]
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ...memory.cue_intent import clauses, load_examples

C = 4.0                  # inverse regularisation (chosen with memory/cue_intent.MIN_PROBABILITY)
CONVERSATION_CLAUSES = 600
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")


def conversation_clauses(files: Sequence[Path], n: int = CONVERSATION_CLAUSES, seed: int = 0) -> list[str]:
    """`n` clauses drawn from what the people of the conversation files say."""
    found = []
    for f in files:
        for session in json.loads(Path(f).read_text(encoding="utf-8"))["sessions"]:
            for turn in session["turns"]:
                found += [c for s in _SENTENCE.findall(turn["text"]) for c in clauses(s)]
    pick = np.random.default_rng(seed).choice(len(found), min(n, len(found)), replace=False)
    return [found[i] for i in sorted(pick)]


def train_cue_intent(embed: Callable[[Sequence[str]], np.ndarray], conversations: Sequence[Path]
                     ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """The classifier's arrays, and its 5-fold cross-validated quality (`fit_quality`)."""
    from sklearn.linear_model import LogisticRegression  # training only

    texts, labels = [], []
    for label, examples in load_examples().items():
        texts += examples
        labels += [label] * len(examples)
    ordinary = conversation_clauses(conversations)
    x, y = embed(texts + ordinary), np.array(labels + ["none"] * len(ordinary))
    model = LogisticRegression(C=C, class_weight="balanced", max_iter=2000).fit(x, y)
    return ({"labels": np.array(model.classes_), "weights": model.coef_.astype(np.float32),
             "bias": model.intercept_.astype(np.float32), "examples": np.array(len(y))}, fit_quality(x, y))


def fit_quality(x: np.ndarray, y: np.ndarray, folds: int = 5) -> dict[str, float]:
    """Held-out fold by fold: each intent's recall at `MIN_PROBABILITY` (the share of its examples the
    classifier answers with it), and the share of `none` clauses given any intent (false alarms)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from ...memory.cue_intent import MIN_PROBABILITY

    said = np.empty(len(y), dtype=object)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(x, y):
        model = LogisticRegression(C=C, class_weight="balanced", max_iter=2000).fit(x[train], y[train])
        p = model.predict_proba(x[test])
        best = p.argmax(axis=1)
        said[test] = np.where(p[np.arange(len(test)), best] >= MIN_PROBABILITY, model.classes_[best], "none")
    quality = {f"{label} recall": float(np.mean(said[y == label] == label)) for label in sorted(set(y)) if label != "none"}
    quality["none given an intent"] = float(np.mean(said[y == "none"] != "none"))
    return quality


def write_cue_intent(out: Path, embed: Callable[[Sequence[str]], np.ndarray], conversations: Sequence[Path]
                     ) -> dict[str, float]:
    """Train, write the weights to `out`, and return the cross-validated quality."""
    out.parent.mkdir(parents=True, exist_ok=True)
    arrays, quality = train_cue_intent(embed, conversations)
    np.savez(out, **arrays)
    return quality

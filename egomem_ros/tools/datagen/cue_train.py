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


def train_cue_intent(embed: Callable[[Sequence[str]], np.ndarray], conversations: Sequence[Path]) -> dict[str, np.ndarray]:
    from sklearn.linear_model import LogisticRegression  # training only

    texts, labels = [], []
    for label, examples in load_examples().items():
        texts += examples
        labels += [label] * len(examples)
    ordinary = conversation_clauses(conversations)
    model = LogisticRegression(C=C, class_weight="balanced", max_iter=2000).fit(
        embed(texts + ordinary), labels + ["none"] * len(ordinary))
    return {"labels": np.array(model.classes_), "weights": model.coef_.astype(np.float32),
            "bias": model.intercept_.astype(np.float32), "examples": np.array(len(texts) + len(ordinary))}


def write_cue_intent(out: Path, embed: Callable[[Sequence[str]], np.ndarray], conversations: Sequence[Path]) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **train_cue_intent(embed, conversations))
    return out

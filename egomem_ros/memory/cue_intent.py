"""Requests about telling and forgetting in words the cue patterns (memory/privacy.py) do not hold.

People ask for discretion in endless ways ("I'm trusting you with this", "Tom must never find out",
"un-remember that"). Each clause is embedded with all-MiniLM-L6-v2, the encoder Level-2 reranks with, and a
multinomial logistic regression reads its intent: `secret`, `public`, `forget` or `none`. It was trained
(`tools/datagen/cue_train.py`, `egomem train cues`) on the examples of `data/privacy_intents.yaml` and on
clauses of ordinary conversation as `none`; the weights ship as `data/cue_intent.npz`. It answers only
when the intent is likely (`MIN_PROBABILITY`): a false "forget" erases, and a false "secret" hides an item
from the family. The patterns run first; this catches what they miss. Without the encoder or the weights
the patterns work alone (said once in the log).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from .extraction import content_stems

log = logging.getLogger(__name__)
MIN_PROBABILITY = 0.8   # chosen on the dev conversations: 0.7 raised 14 cues in their 2,783 sentences, 0.8 raises 8
_CLAUSE = re.compile(r"\s*(?:[,:;!?]|\.(?:\s|$)|\s-\s|\s\bbut\b\s|\s\bthough\b\s)\s*", re.IGNORECASE)


def clauses(sentence: str) -> list[str]:
    """The parts of a sentence a cue can stand in: "Whatever you do, my dad can't find out: I'm ..."."""
    return [c.strip() for c in _CLAUSE.split(sentence) if len(c.split()) >= 2]


class CueIntent:
    """The intent of clauses, from their normalised sentence embeddings; judged once per clause."""

    def __init__(self, labels: Sequence[str], weights: np.ndarray, bias: np.ndarray,
                 embed: Callable[[Sequence[str]], np.ndarray], *, min_probability: float = MIN_PROBABILITY):
        self.labels = list(labels)
        self.weights, self.bias = np.asarray(weights, np.float32), np.asarray(bias, np.float32)
        self.embed = embed
        self.min_probability = min_probability
        self._seen: dict[str, np.ndarray] = {}

    def prepare(self, texts: Sequence[str]) -> None:
        """Judge every clause of `texts` (a session's sentences) in one encoder batch."""
        todo = [c for c in dict.fromkeys(_key(c) for t in texts for c in [t, *clauses(t)]) if c not in self._seen]
        if todo:
            logits = self.embed(todo) @ self.weights.T + self.bias
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            self._seen.update(zip(todo, p / p.sum(axis=1, keepdims=True)))

    def probabilities(self, clause: str) -> dict[str, float]:
        self.prepare([clause])
        return dict(zip(self.labels, map(float, self._seen[_key(clause)])))

    def intent(self, clause: str) -> str:
        """`secret` | `public` | `forget` | `none`."""
        p = self.probabilities(clause)
        best = max(p, key=p.__getitem__)
        return best if p[best] >= self.min_probability else "none"

    def of_sentence(self, sentence: str, known: set[str] = frozenset()) -> list[tuple[str, str, str]]:
        """(intent, clause, topic) for each clause of `sentence` that carries an intent. A clause is also
        read with the words the person told the robot before (`known`, content stems) taken out: "scratch
        all that stuff about the marathon" is a request whatever the marathon is, and "the marathon" is then
        its topic."""
        found = []
        for c in clauses(sentence):
            bare, topic = skeleton(c, known)
            self.prepare([c, bare])
            label = self.intent(c)
            if topic and self.intent(bare) != "none":
                label = self.intent(bare)
            if label != "none":
                found.append((label, c, topic))
        return found


_DETERMINERS = frozenset("the a an my your our his her their this that these those all any".split())


def skeleton(clause: str, known: set[str]) -> tuple[str, str]:
    """`clause` with each run of words whose content stem is in `known` (and the determiners before it)
    said as "it", and those words: ("scratch all that stuff about it", "the marathon")."""
    if not known:
        return clause, ""
    words = clause.split()
    hit = [bool(content_stems(w) & known) for w in words]
    out: list[str] = []
    topic: list[str] = []
    i = 0
    while i < len(words):
        if not hit[i]:
            out.append(words[i])
            i += 1
            continue
        run: list[str] = []
        while out and out[-1].lower() in _DETERMINERS:
            run.insert(0, out.pop())
        while i < len(words) and (hit[i] or words[i].lower() in _DETERMINERS and i + 1 < len(words) and hit[i + 1]):
            run.append(words[i])
            i += 1
        topic += run
        out.append("it")
    return " ".join(out), " ".join(topic)


def _key(clause: str) -> str:
    return " ".join(clause.lower().split())


def load_examples() -> dict[str, list[str]]:
    """The labelled clauses the classifier is trained on (besides ordinary conversation)."""
    path = resources.files("egomem_ros").joinpath("data/privacy_intents.yaml")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def shipped_weights_path() -> Path:
    return Path(str(resources.files("egomem_ros").joinpath("data/cue_intent.npz")))


@lru_cache(maxsize=1)
def shipped_cue_intent() -> CueIntent | None:
    """The shipped classifier on MiniLM, loaded once per process; None (said once) without them."""
    path = shipped_weights_path()
    try:
        from ..retrieval.rerank import shared_reranker

        encoder = shared_reranker("minilm")
        with np.load(path) as z:
            labels, weights, bias = [str(x) for x in z["labels"]], z["weights"], z["bias"]
    except (ImportError, OSError) as err:
        log.warning("privacy cues: patterns only (the cue classifier cannot load: %s)", err)
        return None
    return CueIntent(labels, weights, bias, encoder.embed)

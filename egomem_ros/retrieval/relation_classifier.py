"""Which lexicon relations a relation word names, from its sentence embedding ("wifey" -> spouse,
partner; "gaffer" -> boss; "mam" -> mother).

A one-vs-rest logistic regression per relation of `data/relations.yaml`, over all-MiniLM-L6-v2
embeddings of "my <word>", trained on WordNet's person words under each relation
(`datagen/relation_train.py`, `egomem train relations`). The weights ship as
`data/relation_classifier.npz` (57 KB); running it costs one embedding per new word, with the encoder
the dense reranker already holds.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
TEMPLATE = "my {}"
MIN_PROBABILITY, MARGIN = 0.5, 0.1   # a relation is named when p >= 0.5 and within 0.1 of the best


@lru_cache(maxsize=4)
def load_weights(path: str) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(labels, weights, bias) of a classifier file, read once per process."""
    with np.load(path) as z:
        return (tuple(str(x) for x in z["labels"]), z["weights"].astype(np.float32),
                z["bias"].astype(np.float32))


class RelationClassifier:
    def __init__(self, labels: Sequence[str], weights: np.ndarray, bias: np.ndarray,
                 embed: Callable[[Sequence[str]], np.ndarray]):
        self.labels = list(labels)
        self.weights = np.asarray(weights, np.float32)
        self.bias = np.asarray(bias, np.float32)
        self.embed = embed
        self._cache: dict[str, list[str]] = {}

    def probabilities(self, words: Sequence[str]) -> np.ndarray:
        x = self.embed([TEMPLATE.format(w.strip().lower()) for w in words])
        if x.shape[1] != self.weights.shape[1]:
            raise ValueError(f"relation classifier expects {self.weights.shape[1]}-d embeddings, got {x.shape[1]}")
        return 1.0 / (1.0 + np.exp(-(x @ self.weights.T + self.bias)))

    def relations(self, word: str) -> list[str]:
        """The relations `word` names, most likely first; [] when none reaches `MIN_PROBABILITY`."""
        key = word.strip().lower()
        if key not in self._cache:
            p = self.probabilities([key])[0]
            floor = max(MIN_PROBABILITY, float(p.max()) - MARGIN)
            self._cache[key] = [self.labels[i] for i in np.argsort(-p) if p[i] >= floor]
        return self._cache[key]


def shipped_classifier_path() -> Path:
    return Path(str(resources.files("egomem_ros").joinpath("data/relation_classifier.npz")))


def relation_classifier_for(reranker: object) -> RelationClassifier | None:
    """The shipped classifier on the reranker's encoder when it is all-MiniLM-L6-v2 (the one it was
    trained on); None otherwise (lexical, none, bge)."""
    embed = getattr(reranker, "embed", None)
    path = shipped_classifier_path()
    if embed is None or getattr(reranker, "name", "") != "minilm":
        return None
    if not path.is_file():
        log.warning("relation classifier %s missing: relation words outside the lexicon and WordNet are "
                    "matched by the nearest relation only", path)
        return None
    return RelationClassifier(*load_weights(str(path)), embed)

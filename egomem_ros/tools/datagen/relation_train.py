"""Train the relation-word classifier that `retrieval/relation_classifier.py` runs (not on the robot).

People name relations in words no lexicon holds ("wifey", "gaffer", "our mam"). WordNet lists many
such words, not all: under each relation of `data/relations.yaml` it files a tree of narrower person
words ("father": dad, pops, old man, stepfather, ...). Those words, embedded as "my <word>" by the
sentence encoder Level-2 already runs, are the training examples of a one-vs-rest logistic regression
per relation. A word the tree lacks then falls on the side of the relations whose words it sounds like.
The relations overlap (a wife is a spouse and a partner), so each has its own yes/no model.

    egomem train relations [--out egomem_ros/data/relation_classifier.npz]
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ...relations import RelationLexicon, relation_lexicon
from ...retrieval.relation_classifier import TEMPLATE
from ...retrieval.wordnet import NOUN_PERSON, WordNetNouns, wordnet_nouns

DEPTH = 2      # hyponym levels under a relation's own senses (deeper reaches job titles and saints)
SENSES = 2     # a relation word's most frequent person senses


def relation_examples(wn: WordNetNouns, lex: RelationLexicon, *, depth: int = DEPTH) -> dict[str, set[str]]:
    """relation -> the words that name it: its lexicon forms and the WordNet person words at most
    `depth` hyponym levels under its first senses (proper names left out)."""
    examples: dict[str, set[str]] = {}
    for canon in lex.inverses:
        words = [canon.replace("_", " "), *lex.forms(canon)]
        found = set(words)
        seen: set[int] = set()
        for word in words:
            senses = [o for o in wn.senses(word)[:SENSES] if wn.synset(o).lexfile == NOUN_PERSON]
            frontier = [(o, 0) for o in senses]
            while frontier:
                offset, level = frontier.pop()
                if offset in seen:
                    continue
                seen.add(offset)
                ss = wn.synset(offset)
                found |= {w.replace("_", " ") for w, name in zip(ss.lemmas, ss.names) if not name}
                if level < depth:
                    frontier += [(h, level + 1) for h in ss.hyponyms]
        examples[canon] = found
    return examples


def train_relation_classifier(embed: Callable[[Sequence[str]], np.ndarray], *, wn: WordNetNouns | None = None,
                              c: float = 1.0) -> dict[str, np.ndarray]:
    """Fit one logistic regression per relation on the embedded example words; returns the arrays
    `RelationClassifier` loads."""
    from sklearn.linear_model import LogisticRegression  # training only

    wn = wn or wordnet_nouns()
    if wn is None:
        raise RuntimeError("training the relation classifier needs WordNet (apt-get install wordnet-base)")
    examples = relation_examples(wn, relation_lexicon())
    labels = sorted(examples)
    words = sorted(set().union(*examples.values()))
    x = embed([TEMPLATE.format(w) for w in words])
    y = np.array([[w in examples[label] for label in labels] for w in words])
    weights, bias = [], []
    for j in range(len(labels)):
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000).fit(x, y[:, j])
        weights.append(model.coef_[0])
        bias.append(model.intercept_[0])
    return {"labels": np.array(labels), "weights": np.array(weights, np.float32),
            "bias": np.array(bias, np.float32), "examples": np.array(len(words))}


def write_relation_classifier(out: Path, embed: Callable[[Sequence[str]], np.ndarray]) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **train_relation_classifier(embed))
    return out

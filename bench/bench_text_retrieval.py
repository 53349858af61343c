"""Level-2 retrieval: quality per backend on benchmark files, and latency at 500 and 100,000 documents.

Run: .venv/bin/python bench/bench_text_retrieval.py [--sizes 500 100000] [--no-dense] [--quality FILE ...]
`--quality` prints pass@1, pass@5 and ms/query per backend (none, lexical, minilm at fp32 and at the
precision `auto` picks on this CPU) for each benchmark file,
side by side (bench/data/text_retrieval_outside.json is written in everyday words the code's lexicons do
not hold). Latency: median/p95 ms per query and the ratio to the BM25-relation-only baseline in the same run.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from egomem_ros.retrieval.rerank import make_reranker
from egomem_ros.tools.text_bench import TOPICS, DAYS, PETS, RELATIONS, Tick
from egomem_ros.retrieval.text_retrieval import TextRetriever
from egomem_ros.store import SqliteStore


def build(n_docs: int, seed: int = 0) -> tuple[SqliteStore, str, list[tuple[list[str], list[str]]]]:
    rng = random.Random(seed)
    store = SqliteStore(":memory:", clock=Tick())
    facts_per_user = 5 if n_docs <= 1000 else 50
    with store.transaction():
        me = store.create_user("Emily").id
        for u in range(max(1, n_docs // facts_per_user)):
            other = store.create_user(f"user{u}").id
            store.add_relation(me, other, rng.choice(RELATIONS))
            for _ in range(facts_per_user):
                topic = rng.choice(TOPICS)
                store.add_fact(other, "fact", rng.choice(topic[2]).format(day=rng.choice(DAYS), pet=rng.choice(PETS)))
    queries = []
    for _ in range(200):
        topic = rng.choice(TOPICS)
        mode = rng.randrange(3)
        queries.append(([rng.choice(RELATIONS)] if mode != 1 else [], [rng.choice(topic[1])] if mode != 0 else []))
    return store, me, queries


def measure(store, me, queries, backend: str, precision: str = "auto") -> dict[str, float]:
    reranker = make_reranker(backend, precision=precision)
    retriever = TextRetriever(store, reranker)
    t0 = time.perf_counter()
    retriever.documents(me)
    build_s = time.perf_counter() - t0
    times = []
    for rq, kq in queries:
        t = time.perf_counter()
        retriever.retrieve(me, rq, kq, 5)
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return {"precision": getattr(reranker, "precision", "-"), "index_build_s": build_s,
            "ms_median": statistics.median(times), "ms_p95": times[int(0.95 * len(times))]}


BACKENDS = [("none", "fp32"), ("lexical", "fp32"), ("minilm", "fp32"), ("minilm", "auto")]


def quality(files: list[str]) -> list[dict]:
    from egomem_ros.tools.text_bench import evaluate_text_bench, load_text_bench

    rows = []
    print("| benchmark | backend | pass@1 | pass@5 | ms/query median |\n|---|---|---|---|---|")
    for backend, precision in BACKENDS:
        reranker = make_reranker(backend, precision=precision)
        label = backend + (f" ({getattr(reranker, 'precision', precision)})" if backend == "minilm" else "")
        for f in files:
            r = evaluate_text_bench(load_text_bench(f), reranker)
            print(f"| {f.split('/')[-1]} | {label} | {r['pass_at_1']:.3f} | {r['pass_at_5']:.3f} | "
                  f"{r['ms_per_query_median']:.2f} |")
            rows.append({"benchmark": f.split("/")[-1], "backend": label, "queries": r["queries"],
                         **{k: r[k] for k in ("pass_at_1", "pass_at_5", "ms_per_query_median")}})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 100_000])
    ap.add_argument("--no-dense", action="store_true", help="leave out the MiniLM reranker (the default backend)")
    ap.add_argument("--quality", nargs="*", default=[], help="benchmark JSON files to score per backend")
    args = ap.parse_args()
    rows = quality(args.quality) if args.quality else []
    results = []
    for n in args.sizes:
        store, me, queries = build(n)
        backends = BACKENDS if not args.no_dense else BACKENDS[:2]
        base = None
        for backend, precision in backends:
            r = measure(store, me, queries, backend, precision)
            base = base or r["ms_median"]
            label = backend + (f" ({r['precision']})" if backend == "minilm" else "")
            r.update(docs=len(TextRetriever(store, None).documents(me)), backend=label,
                     ratio_to_bm25_only=r["ms_median"] / base)
            results.append(r)
            print(f"{r['docs']:>7} docs  {label:<12} median {r['ms_median']:7.2f} ms  p95 {r['ms_p95']:7.2f} ms  "
                  f"x{r['ratio_to_bm25_only']:.2f} vs BM25-only  (index build {r['index_build_s']:.1f} s)")
    print(json.dumps({"quality": rows, "latency": results}))


if __name__ == "__main__":
    main()

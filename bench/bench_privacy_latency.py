"""What per-item visibility costs a `<retr>`: Level-2 latency with and without it, side by side in one run.

Run: .venv/bin/python bench/bench_privacy_latency.py [--sizes 100000] [--backends none lexical minilm] [--rounds 3]
The memory of bench_text_retrieval.py (Emily and her related people, 50 items each). "shared" leaves every
item shared; "private" makes the same memory's items 20 % private and 10 % hidden from Emily. Each round
builds Emily's index afresh on both and runs the same 200 queries; the rounds alternate, and the medians of
the rounds are reported. Target (issue #39): at most 1 ms more per `<retr>` at 10^5 documents.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics

from bench_text_retrieval import build, measure

from egomem_ros.store.visibility import PRIVATE, Visibility


def with_visibility(store, me: str, seed: int = 1) -> int:
    """Make 20 % of the items private and 10 % hidden from `me`; returns how many were changed."""
    rng = random.Random(seed)
    hidden = Visibility(hidden_from=frozenset({me}))
    changed = 0
    with store.transaction():
        for user in store.list_users():
            for fact in store.facts(user.id):
                roll = rng.random()
                if roll < 0.3:
                    store.set_visibility(fact.id, Visibility(PRIVATE) if roll < 0.2 else hidden)
                    changed += 1
    return changed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    ap.add_argument("--backends", nargs="+", default=["none", "lexical", "minilm"],
                    help="rerankers (minilm: the shipped default; it embeds every document when an index is built)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        plain, me, queries = build(n)
        private, private_me, _ = build(n)          # the same memory and queries (one seed), its own ids
        changed = with_visibility(private, private_me)
        for backend in args.backends:
            runs: dict[str, list[dict]] = {"shared": [], "private": []}
            for _ in range(args.rounds):
                for name, store, asker in (("shared", plain, me), ("private", private, private_me)):
                    runs[name].append(measure(store, asker, queries, backend))
            row = {"documents": n, "items with a visibility": changed, "backend": backend}
            for name, got in runs.items():
                for key in ("ms_median", "ms_p95", "index_build_s"):
                    row[f"{name} {key}"] = statistics.median(r[key] for r in got)
            row["ms more per <retr>"] = row["private ms_median"] - row["shared ms_median"]
            rows.append(row)
            print(f"{n:>7} docs ({changed} with a visibility), {backend}: median {row['shared ms_median']:.2f} ms "
                  f"shared / {row['private ms_median']:.2f} ms with visibility ({row['ms more per <retr>']:+.2f} ms); "
                  f"p95 {row['shared ms_p95']:.2f} / {row['private ms_p95']:.2f} ms; index build "
                  f"{row['shared index_build_s']:.2f} / {row['private index_build_s']:.2f} s", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

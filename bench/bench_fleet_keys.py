"""Biometric key search for a fleet: each robot's local gallery against pgvector on the shared server.

Run: .venv/bin/python bench/bench_fleet_keys.py [--sizes 10000 100000] [--queries 300]
Needs the `pgserver` wheel (a PostgreSQL with pgvector, `pip install pgserver`; Debian 12 has no pgvector
package). Keys are 256-d voice-like unit vectors around real resemblyzer embeddings of the shared
LibriSpeech speakers (bench/common.py); queries are perturbed keys. Side by side, per size: the local
gallery (`KeyGallery` as the identity node builds it: exact numpy up to `exact_search_max_keys`, HNSW
beyond), pgvector exact (`ORDER BY vec <=> q`) and pgvector HNSW (`vector_cosine_ops`, ef_search 100),
each as median/p95 ms per query from this process and recall@1 against exact search.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_match import base_embeddings  # noqa: E402
from common import perturb, real_like_identities, summary  # noqa: E402

from egomem_ros.config import IdentityConfig  # noqa: E402
from egomem_ros.retrieval.gallery import KeyGallery  # noqa: E402


def vec_literal(v: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7f}" for x in v) + "]"


def pg_search(conn, queries: np.ndarray) -> tuple[list[float], list[int]]:
    times, top = [], []
    for q in queries:
        t0 = time.perf_counter()
        row = conn.execute("SELECT id FROM voice_vec ORDER BY vec <=> %s::vector LIMIT 5", (vec_literal(q),)).fetchone()
        times.append((time.perf_counter() - t0) * 1e3)
        top.append(int(row[0]))
    return times, top


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    try:
        import pgserver
        import psycopg
    except ImportError:
        raise SystemExit("needs `pip install pgserver` (PostgreSQL with pgvector in a wheel) and psycopg") from None
    cfg = IdentityConfig()
    base = base_embeddings()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = pgserver.get_server(tmp, cleanup_mode="stop")
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            for n in args.sizes:
                keys = real_like_identities(base, n, seed=n)
                queries = perturb(keys[np.random.default_rng(0).integers(0, n, args.queries)], 0.15)
                exact = [int(np.argmax(keys @ q)) for q in queries]
                gallery = KeyGallery(keys.shape[1], "cosine", exact_max_keys=cfg.exact_search_max_keys,
                                     ann_dim=cfg.ann_dim, ann_candidates=cfg.ann_candidates, hnsw_m=cfg.ann_m,
                                     hnsw_ef=cfg.ann_ef)
                gallery.add(list(range(n)), [f"u{i}" for i in range(n)], keys)
                local_t, local_top = [], []
                for q in queries:
                    t0 = time.perf_counter()
                    local_top.append(gallery.search(q, k=5)[0].key_id)
                    local_t.append((time.perf_counter() - t0) * 1e3)
                conn.execute("DROP TABLE IF EXISTS voice_vec")
                conn.execute(f"CREATE TABLE voice_vec (id BIGINT PRIMARY KEY, vec vector({keys.shape[1]}))")
                with conn.cursor().copy("COPY voice_vec (id, vec) FROM STDIN") as copy:
                    for i, k in enumerate(keys):
                        copy.write_row((i, vec_literal(k)))
                pg_exact_t, pg_exact_top = pg_search(conn, queries)
                t0 = time.perf_counter()
                conn.execute("CREATE INDEX ON voice_vec USING hnsw (vec vector_cosine_ops) WITH (m = 16, ef_construction = 64)")
                build_s = time.perf_counter() - t0
                conn.execute("SET hnsw.ef_search = 100")
                pg_hnsw_t, pg_hnsw_top = pg_search(conn, queries)
                recall = lambda top, exact=exact: float(np.mean([a == b for a, b in zip(top, exact)]))  # noqa: E731
                rows.append((n, summary(local_t), recall(local_top), "exact" if not gallery.uses_ann else "HNSW",
                             summary(pg_exact_t), recall(pg_exact_top), summary(pg_hnsw_t), recall(pg_hnsw_top), build_s))
    print(f"# {args.queries} queries per size, 256-d keys, one process and a local server on the same 2 cores")
    print("| keys | local gallery ms median / p95 (recall@1) | pgvector exact ms | pgvector HNSW ms (recall@1, build s) |")
    print("|---|---|---|---|")
    for n, lt, lr, kind, et, er, ht, hr, bs in rows:
        print(f"| {n} | {kind} {lt['median_ms']:.2f} / {lt['p95_ms']:.2f} ({lr:.3f}) | {et['median_ms']:.2f} / "
              f"{et['p95_ms']:.2f} ({er:.3f}) | {ht['median_ms']:.2f} / {ht['p95_ms']:.2f} ({hr:.3f}, {bs:.0f} s) |")


if __name__ == "__main__":
    main()

"""Key matching at scale: exact numpy vs HNSW (hnswlib), latency and recall@1, s-norm included.

The HNSW graph holds a PCA projection of the keys (`--ann-dim`, 0 = the full 256 dimensions) and its
`--candidates` nearest keys are re-ranked exactly (see egomem_ros/retrieval/gallery.py).

Keys are 'real-like': identity centres drawn around real resemblyzer embeddings of the shared
LibriSpeech speakers, queries are perturbed centres. Recall@1 = the ANN's top-1 key equals the exact
search's top-1 key. Run: .venv/bin/python bench/bench_match.py [--sizes 1000 10000 100000 1000000]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, perturb, real_like_identities, summary  # noqa: E402

from egomem_ros.config import IdentityConfig  # noqa: E402
from egomem_ros.retrieval.gallery import KeyGallery  # noqa: E402
from egomem_ros.retrieval.snorm import AdaptiveSNorm  # noqa: E402

IDENTITY = IdentityConfig()  # the runtime's defaults (config/egomem.yaml)


def base_embeddings() -> np.ndarray:
    from egomem_ros.retrieval.voice import VoiceEngine, make_voice_backend

    engine = VoiceEngine(make_voice_backend(), use_vad=True, min_voiced_s=0.1)
    files = sorted((SHARED / "speech").glob("*/*.wav"))[::2]
    vecs = [o.embedding for o in (engine.observe_file(f) for f in files) if o is not None]
    return np.stack(vecs)


def run(size: int, base: np.ndarray, queries: int, snorm: AdaptiveSNorm, efs: list[int], ann_dim: int,
        candidates: int, hnsw_m: int, ef_construction: int) -> list[dict]:
    keys = real_like_identities(base, size, seed=size)
    users = np.array([f"u{i}" for i in range(size)], dtype=object)
    picks = np.random.default_rng(7).integers(0, size, queries)
    q = perturb(keys[picks], 0.25, seed=size + 1)
    out = []
    exact_top = []
    for mode, ef in [("exact", None)] + [("hnsw", e) for e in efs]:
        if mode == "exact" or ef == efs[0]:
            g = KeyGallery(keys.shape[1], "cosine", exact_max_keys=10**9 if mode == "exact" else 0,
                           ann_dim=ann_dim, ann_candidates=candidates, hnsw_m=hnsw_m,
                           hnsw_ef_construction=ef_construction)
            t0 = time.perf_counter()
            g.add(np.arange(size), users, keys)
            build = time.perf_counter() - t0
        if ef is not None:
            g._hnsw.set_ef(ef)  # noqa: SLF001 - query-time breadth: the recall/latency trade-off, same index
        times, top = [], []
        for i in range(queries):
            t = time.perf_counter()
            cands = g.search(q[i], 20)
            snorm.normalise(q[i], np.stack([g.vector(m.key_id) for m in cands]), [m.user_id for m in cands],
                            [m.key_id for m in cands])
            times.append((time.perf_counter() - t) * 1e3)
            top.append(cands[0].key_id)
        if mode == "exact":
            exact_top = top
        r = {"keys": size, "mode": mode, "ef": ef, "ann_dim": g.ann_dim if ef else None, "queries": queries,
             "hnsw_m": hnsw_m if ef else None, "ef_construction": ef_construction if ef else None,
             "candidates": candidates if ef else None, "build_s": build, **summary(times),
             "recall_at_1_vs_exact": float(np.mean(np.array(top) == np.array(exact_top))),
             "true_identity_at_1": float(np.mean(np.array(top) == picks))}
        r["speedup_vs_exact"] = out[0]["median_ms"] / r["median_ms"] if out else 1.0
        out.append(r)
        print(f"{size:>8} keys {mode:<5} ef {ef or '-':>4} dim {r['ann_dim'] or '-':>4} build {build:7.1f} s  "
              f"match+s-norm median {r['median_ms']:7.2f} ms  "
              f"p95 {r['p95_ms']:7.2f} ms  recall@1 vs exact {r['recall_at_1_vs_exact']:.3f}  "
              f"true id@1 {r['true_identity_at_1']:.3f}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--ef", type=int, nargs="+", default=[IDENTITY.ann_ef], help="HNSW query breadths to measure on one index")
    ap.add_argument("--ann-dim", type=int, default=IDENTITY.ann_dim, help="PCA dimensions the HNSW graph holds (0: all)")
    ap.add_argument("--candidates", type=int, default=IDENTITY.ann_candidates, help="graph neighbours re-ranked exactly")
    ap.add_argument("--hnsw-m", type=int, default=IDENTITY.ann_m, help="HNSW graph degree")
    ap.add_argument("--ef-construction", type=int, default=200, help="HNSW build breadth")
    args = ap.parse_args()
    base = base_embeddings()
    cohort = real_like_identities(base, 1000, seed=99)
    snorm = AdaptiveSNorm(cohort, None, top_n=200)
    results = [r for n in args.sizes for r in run(n, base, args.queries, snorm, args.ef, args.ann_dim, args.candidates,
                                          args.hnsw_m, args.ef_construction)]
    print(json.dumps(results))


if __name__ == "__main__":
    main()

"""`egomem eval trigger DIR`: Jaccard and span_match@N P/R/F1 (paper §5.2) on stream folders."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ...memory.sessions import jaccard, load_stream, prf, sessions_from_labels, span_match, stream_dirs

TOLERANCES = (0, 5, 10)


def evaluate_trigger(root: str | Path, segmenter, *, progress=None, rttm_max_gap_s: float = 3.0) -> dict[str, Any]:
    dirs = stream_dirs(root)
    jac, counts = [], {n: [0, 0, 0] for n in TOLERANCES}
    steps, seconds, skipped = 0, 0.0, 0
    for d in progress(dirs) if progress else dirs:
        stream = load_stream(d, rttm_max_gap_s=rttm_max_gap_s)
        if stream.labels is None:
            skipped += 1
            continue
        t0 = time.perf_counter()
        pred = segmenter.label(stream)
        seconds += time.perf_counter() - t0
        steps += stream.n_steps
        jac.append(jaccard(pred, stream.labels))
        p_s, g_s = sessions_from_labels(pred), sessions_from_labels(stream.labels)
        for n in TOLERANCES:
            m, a, b = span_match(p_s, g_s, n)
            counts[n][0] += m
            counts[n][1] += a
            counts[n][2] += b
    if not jac:
        raise ValueError(f"{root}: no stream with labels.csv or an RTTM file")
    result: dict[str, Any] = {"jaccard": float(np.mean(jac)), "streams": len(jac), "skipped": skipped,
                              "steps": steps, "sessions": counts[0][2]}
    for n in TOLERANCES:
        r = prf(*counts[n])
        result[f"span_match@{n}"] = r
    result["seconds_per_8192_steps"] = seconds / max(1, steps) * 8192
    result["segmenter"] = segmenter.name
    return result

"""Embedding evaluation directories (DIR/<identity>/<files>, listed by `identity_dirs`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def embed_files(files: dict[str, list[Path]], observe, *, empty: str, progress=None
                ) -> tuple[dict[Path, "np.ndarray"], dict[str, int], float]:
    """Run `observe(path)` (an observation with `.embedding`, or None) over every file.

    Corrupt files (MediaError) and files with nothing to embed (None) are counted, never fatal.
    Returns path -> embedding, {"corrupt": n, empty: n}, and milliseconds per file.
    """
    import logging
    import time

    from ...retrieval.media import MediaError

    flat = [f for fs in files.values() for f in fs]
    out: dict[Path, np.ndarray] = {}
    counts = {"corrupt": 0, empty: 0}
    t0 = time.perf_counter()
    for path in progress(flat) if progress else flat:
        try:
            obs = observe(path)
        except MediaError as err:
            logging.getLogger(__name__).warning("%s: %s", path, err)
            counts["corrupt"] += 1
            continue
        if obs is None:
            counts[empty] += 1
        else:
            out[path] = obs.embedding
    return out, counts, (time.perf_counter() - t0) * 1e3 / max(1, len(flat))

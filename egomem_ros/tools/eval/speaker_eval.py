"""`egomem eval speaker DIR`: speaker identification pass@1 and verification EER, with and without
adaptive s-norm, on any DIR/<speaker>/<audio files>."""
from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ...retrieval.snorm import AdaptiveSNorm, l2_normalise
from ...retrieval.voice import VoiceEngine
from ...identity_dirs import AUDIO_EXT, identity_files
from .datasets import embed_files
from .metrics import eer

Progress = Callable[[Iterable], Iterable]


def embed_speakers(engine: VoiceEngine, files: dict[str, list[Path]], progress: Progress | None = None
                   ) -> tuple[dict[str, list[np.ndarray]], dict[str, int], float]:
    by_path, counts, ms = embed_files(files, engine.observe_file, empty="no_voice", progress=progress)
    return {s: [by_path[f] for f in fs if f in by_path] for s, fs in files.items()}, counts, ms


def select(files: dict[str, list[Path]], only: str | None) -> dict[str, list[Path]]:
    if not only:
        return files
    picked = {k: v for k, v in files.items() if fnmatch.fnmatch(k, only)}
    if not picked:
        raise FileNotFoundError(f"no identity matches {only!r}")
    return picked


def evaluate_speakers(root: str | Path, engine: VoiceEngine, *, enroll: int = 3, top_n: int = 200,
                      only: str | None = None, cohort_dir: str | Path | None = None,
                      progress: Progress | None = None) -> dict[str, Any]:
    files = select(identity_files(root, AUDIO_EXT), only)
    emb, counts, ms = embed_speakers(engine, files, progress)
    speakers = [s for s, e in emb.items() if len(e) > enroll]
    if len(speakers) < 2:
        raise ValueError(f"need at least two speakers with more than {enroll} usable utterances")
    enrol = {s: l2_normalise(np.stack(emb[s][:enroll])) for s in speakers}
    keys = l2_normalise(np.stack([enrol[s].mean(axis=0) for s in speakers]))  # one centroid key per speaker
    queries = [(s, q) for s in speakers for q in emb[s][enroll:]]

    if cohort_dir:
        cfiles = identity_files(cohort_dir, AUDIO_EXT)
        cemb, _, _ = embed_speakers(engine, cfiles, progress)
        rows = [(s, e) for s, es in cemb.items() for e in es]
    else:  # leave-one-out: the other speakers' enrolment utterances; the target's rows are excluded
        rows = [(s, e) for s in speakers for e in enrol[s]]
    snorm = AdaptiveSNorm(np.stack([e for _, e in rows]), [s for s, _ in rows], top_n=top_n)

    raw = np.stack([keys @ l2_normalise(q) for _, q in queries])
    norm = np.stack([snorm.normalise(q, keys, speakers) for _, q in queries])
    truth = np.array([speakers.index(s) for s, _ in queries])
    genuine_mask = np.zeros_like(raw, dtype=bool)
    genuine_mask[np.arange(len(truth)), truth] = True
    eer_raw, thr_raw = eer(raw[genuine_mask], raw[~genuine_mask])
    eer_norm, thr_norm = eer(norm[genuine_mask], norm[~genuine_mask])
    return {
        "pass_at_1": float(np.mean(raw.argmax(axis=1) == truth)),
        "pass_at_1_snorm": float(np.mean(norm.argmax(axis=1) == truth)),
        "eer": eer_raw,
        "eer_snorm": eer_norm,
        "threshold_cosine_at_eer": thr_raw,
        "threshold_snorm_at_eer": thr_norm,
        "speakers": len(speakers),
        "utterances": sum(len(fs) for fs in files.values()),
        "queries": len(queries),
        "trials": int(raw.size),
        "enroll_per_speaker": enroll,
        "cohort": "dir" if cohort_dir else "leave-one-out",
        "cohort_size": len(rows),
        "no_voice": counts["no_voice"],
        "corrupt": counts["corrupt"],
        "ms_per_utterance": ms,
        "model": engine.model,
    }

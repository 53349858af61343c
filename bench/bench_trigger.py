"""Episodic-trigger speed on 2 cores: seconds per 8192 steps (10.9 min of audio), side by side.

Run: .venv/bin/python bench/bench_trigger.py STREAMS_DIR --checkpoint tagger.pt [--repeats 5] [--baseline]
The test streams are concatenated into one stream of at least 8192 steps. The tagger is timed as a whole
(`label`) and by part: features of both channels, the model, and decoding. `--baseline` adds the
silero-vad + resemblyzer baseline as the reference (slow: one run).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from egomem_ros.memory.sessions import Stream, load_stream, stream_dirs
from egomem_ros.memory.tagger import TaggerSegmenter, decode
from egomem_ros.memory.step_features import stream_features
from egomem_ros.memory.trigger import HOP

STEPS = 8192


def long_stream(root: Path) -> Stream:
    listen, speak, n = [], [], 0
    dirs = stream_dirs(root)
    while n < STEPS * HOP:
        for d in dirs:
            s = load_stream(d)
            listen.append(s.listen)
            speak.append(s.speak if s.speak is not None else np.zeros_like(s.listen))
            n += len(s.listen)
    listen_all, speak_all = np.concatenate(listen)[:STEPS * HOP], np.concatenate(speak)[:STEPS * HOP]
    return Stream(root, listen_all, speak_all, None)


def timed(fn, repeats: int) -> tuple[float, object]:
    out, times = None, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("streams", type=Path)
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "trigger_speed.json")
    args = ap.parse_args()
    stream = long_stream(args.streams)
    seg = TaggerSegmenter.load(args.checkpoint)
    seg.label(stream)  # warm-up: mel filters, kernels
    n = stream.n_steps
    result: dict = {"steps": n, "threads": torch.get_num_threads()}
    result["tagger_total_s"], _ = timed(lambda: seg.label(stream), args.repeats)
    result["features_s"], feats = timed(lambda: stream_features(stream.listen, stream.speak, n), args.repeats)
    result["model_s"], (probs, voice) = timed(lambda: seg.infer(feats), args.repeats)
    result["decode_s"], _ = timed(lambda: decode(probs, voice, feats, seg.decode_cfg), args.repeats)
    if args.baseline:
        from egomem_ros.config import EgomemConfig
        from egomem_ros.memory.trigger import BaselineSegmenter
        from egomem_ros.retrieval.factory import make_voice_engine

        base = BaselineSegmenter(voice_engine=make_voice_engine(EgomemConfig().identity))
        result["baseline_total_s"], _ = timed(lambda: base.label(stream), 1)
        result["baseline_over_tagger"] = result["baseline_total_s"] / result["tagger_total_s"]
    for k, v in result.items():
        print(f"{k:<22} {v:.4f}" if isinstance(v, float) else f"{k:<22} {v}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

"""Consolidating a 10-minute stream on 2 cores (LLM latency excluded: the offline extractor runs).

Run: .venv/bin/python bench/bench_consolidation.py [--minutes 10] [--asr] [--tagger tagger.pt]
Variants, side by side in one run: VAD-only baseline segmentation (the reference), + speaker-change
splits (resemblyzer); with `--asr`, + Whisper (the default: bundled tiny.en, one pass per session) and
+ pocketsphinx (user turns in `--asr-workers` processes) hearing the sessions instead of an ASR node's
transcripts; with `--tagger`, the same with the trained tagger segmenting the stream.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from egomem_ros.config import EgomemConfig
from egomem_ros.memory.buffer import StreamBuffer, TranscriptSegment
from egomem_ros.memory.consolidate import Consolidator
from egomem_ros.memory.spool import SessionSpool
from egomem_ros.memory.disclosure import offline_extractor
from egomem_ros.memory.attribution import SessionOwner
from egomem_ros.memory.manager import MemoryManager
from egomem_ros.tools.datagen.synth import StreamSpec, make_stream
from egomem_ros.memory.update_agent import RuleUpdateAgent
from egomem_ros.store import SqliteStore


def ten_minutes(minutes: float, tmp: Path):
    listen, speak, metas, offset, seed = [], [], [], 0.0, 100
    while offset < minutes * 60:
        lst, spk, _, meta = make_stream(StreamSpec(sessions=6, seed=seed, split="test"), tmp)
        for m in meta:
            metas.append({**m, "start_s": m["start_s"] + offset, "end_s": m["end_s"] + offset})
        listen.append(lst)
        speak.append(spk)
        offset += len(lst) / 16000
        seed += 1
    return np.concatenate(listen), np.concatenate(speak), metas


def run(listen, speak, metas, tmp: Path, *, speaker_change: bool, asr: str, transcripts: bool,
        tagger: Path | None = None, asr_workers: int = 2) -> dict:
    from egomem_ros.memory.tagger import TaggerSegmenter
    from egomem_ros.memory.trigger import BaselineSegmenter

    voice = None
    if speaker_change and tagger is None:
        from egomem_ros.retrieval.factory import make_voice_engine

        voice = make_voice_engine(EgomemConfig().identity)
    store = SqliteStore(tmp / f"m{time.time_ns()}.db")
    buf = StreamBuffer(len(listen) / 16000 + 60)
    for i in range(0, len(listen), 8000):
        buf.add_listen(i / 16000, listen[i:i + 8000], 16000)
        buf.add_speak(i / 16000, speak[i:i + 8000], 16000)
    if transcripts:
        for m in metas:
            text = " ".join(t["text"] for t in m["turns"] if t["speaker"] == "user")
            buf.add_transcript(TranscriptSegment(m["start_s"], m["end_s"], text))
    asr_engine = None
    if asr:
        from egomem_ros.memory.asr import make_asr

        asr_engine = make_asr(asr, workers=asr_workers)
    segmenter = TaggerSegmenter.load(tagger) if tagger else BaselineSegmenter(voice_engine=voice)
    mgr = MemoryManager(store, buf, segmenter,
                        Consolidator(store, offline_extractor(), RuleUpdateAgent(), SessionOwner(None)),
                        SessionSpool(tmp / f"spool{time.time_ns()}"), asr_engine)
    t0 = time.perf_counter()
    report = mgr.consolidate(len(listen) / 16000 + 5.0)
    seconds = time.perf_counter() - t0   # with the ASR workers' start-up: the first consolidation pays it
    mgr.close()
    return {"seconds": seconds, "sessions_found": report.sessions_found, "true_sessions": len(metas),
            "written": sum(o.status == "written" for o in report.outcomes), "users": len(store.list_users())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--asr", action="store_true", help="also transcribe every session with Whisper and pocketsphinx")
    ap.add_argument("--tagger", type=Path, help="a tagger checkpoint: also segment with it")
    ap.add_argument("--asr-workers", type=int, default=EgomemConfig().memory.asr_workers,
                    help="pocketsphinx processes (the config default; 1: in this process)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        listen, speak, metas = ten_minutes(args.minutes, tmp)
        print(f"stream: {len(listen) / 16000 / 60:.1f} min, {len(metas)} sessions")
        backends = ("whisper", "pocketsphinx") if args.asr else ()
        variants = [("vad-only (reference)", dict(speaker_change=False, asr="", transcripts=True)),
                    ("+ speaker change", dict(speaker_change=True, asr="", transcripts=True))]
        variants += [(f"+ speaker change + {b}", dict(speaker_change=True, asr=b, transcripts=False)) for b in backends]
        if args.tagger:
            variants.append(("tagger", dict(speaker_change=True, asr="", transcripts=True, tagger=args.tagger)))
            variants += [(f"tagger + {b}", dict(speaker_change=True, asr=b, transcripts=False, tagger=args.tagger))
                         for b in backends]
        results, ref = {}, None
        for name, kw in variants:
            r = run(listen, speak, metas, tmp, **kw, asr_workers=args.asr_workers)
            ref = ref or r["seconds"]
            r["ratio_to_reference"] = r["seconds"] / ref
            results[name] = r
            print(f"{name:<34} {r['seconds']:6.1f} s  x{r['ratio_to_reference']:.2f}  sessions {r['sessions_found']}"
                  f"/{r['true_sessions']}  written {r['written']}")
        print(json.dumps(results))


if __name__ == "__main__":
    main()

"""Identity poll latency: one 640x480 frame with a face + 2 s of speech, 1000 enrolled users.

Run: .venv/bin/python bench/bench_identity_poll.py [--polls 30]
Reports median/p95 per stage, and the parallel (face | voice) poll against the sequential one
measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, real_like_identities, summary  # noqa: E402

from egomem_ros.config import EgomemConfig  # noqa: E402
from egomem_ros.retrieval.enrollment import enroll_person  # noqa: E402
from egomem_ros.retrieval.factory import make_face_engine, make_voice_engine  # noqa: E402
from egomem_ros.retrieval.media import load_audio, load_image  # noqa: E402
from egomem_ros.retrieval.poller import IdentityPoller  # noqa: E402
from egomem_ros.memchunk import ApproxTokenCounter  # noqa: E402
from egomem_ros.store import SqliteStore  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--polls", type=int, default=30)
    ap.add_argument("--users", type=int, default=1000)
    args = ap.parse_args()
    cfg = EgomemConfig()
    face, voice = make_face_engine(cfg.identity), make_voice_engine(cfg.identity)
    print(f"face engine: {type(face).__name__}")
    store = SqliteStore(":memory:")
    target = enroll_person(store, "Tony", faces=[SHARED / "faces/Tony_Blair/1.jpg"],
                           voices=[SHARED / "speech/librispeech_1688/1.wav"], face_engine=face, voice_engine=voice).user
    # the other users: real-like keys around real embeddings of other people
    fbase = np.stack([face.observe(load_image(p)).embedding for p in sorted((SHARED / "faces").glob("*/1.jpg"))])
    vbase = np.stack([voice.observe_file(p).embedding for p in sorted((SHARED / "speech").glob("librispeech_*/2.wav"))])
    fn = np.linalg.norm(fbase, axis=1).mean()
    fkeys = real_like_identities(fbase, args.users - 1, seed=1) * fn
    vkeys = real_like_identities(vbase, args.users - 1, seed=2)
    with store.transaction():
        for i in range(args.users - 1):
            uid = store.create_user(f"user{i}").id
            store.add_key(uid, "face", face.model, fkeys[i])
            store.add_key(uid, "voice", voice.model, vkeys[i])
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[100:350, 200:450] = load_image(SHARED / "faces/Tony_Blair/3.jpg")
    pcm = load_audio(SHARED / "speech/librispeech_1688/3.wav")[16000:48000]
    results = {}
    for parallel in (False, True):
        poller = IdentityPoller(store, face, voice, cfg.identity, ApproxTokenCounter(), parallel=parallel)
        stages: dict[str, list[float]] = {}
        total, hits = [], 0
        for i in range(args.polls + 2):
            t = 10.0 * i
            poller.add_frame(t + 1.9, frame)
            poller.add_audio(t, pcm, 16000)
            t0 = time.perf_counter()
            res = poller.poll(t + 2.0)
            dt = (time.perf_counter() - t0) * 1e3
            if i < 2:
                continue  # warm-up
            total.append(dt)
            hits += res.event.observed.user_id == target.id
            for k, v in res.event.timings_ms.items():
                stages.setdefault(k, []).append(v)
        poller.close()
        name = "parallel" if parallel else "sequential"
        results[name] = {"poll": summary(total), "stages": {k: summary(v) for k, v in stages.items()},
                         "correct": hits / args.polls}
        print(f"{name:<10} poll median {results[name]['poll']['median_ms']:6.1f} ms  p95 "
              f"{results[name]['poll']['p95_ms']:6.1f} ms  correct {hits}/{args.polls}")
        for k, v in results[name]["stages"].items():
            print(f"    {k:<12} median {v['median_ms']:6.1f} ms  p95 {v['p95_ms']:6.1f} ms")
    ratio = results["parallel"]["poll"]["median_ms"] / results["sequential"]["poll"]["median_ms"]
    print(f"parallel / sequential median: x{ratio:.2f}   ({args.users} enrolled users)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()

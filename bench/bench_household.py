"""A household day on real faces and voices, replayed with the shipped config and with variants, side by side.

Run: .venv/bin/python bench/bench_household.py [--seeds 0 1 2] [--minutes 10] [--variants shipped largest-face]
     [--workdir DIR] [--json]
Each seed is one day (`egomem eval household` writes the same day): six people from ../shared/data (LFW
faces, LibriSpeech voices), thirteen visits, a TV, the robot's voice in some sessions. Variants:
- shipped: config/egomem.yaml as it is;
- largest-face: `identity.face.multi_face_policy: largest` (the face that is biggest, not the one talking).
The speed target: a 10-minute day replays in at most 2 minutes on 2 cores (speed ≥ 5x real time).
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import SHARED

from egomem_ros.config import config_from_mapping
from egomem_ros.tools.eval.household_eval import METRICS, run_household

VARIANTS = {
    "shipped": {},
    "largest-face": {"identity": {"face": {"multi_face_policy": "largest"}}},
}
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--variants", nargs="+", default=["shipped", "largest-face"], choices=sorted(VARIANTS))
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="egomem-household-"))
    rows = []
    for variant in args.variants:
        cfg = config_from_mapping(VARIANTS[variant])
        for seed in args.seeds:
            r = run_household(SHARED / "faces", SHARED / "speech", workdir / variant, cfg, seed=seed, minutes=args.minutes)
            rows.append({"variant": variant, **r})
    if args.json:
        print(json.dumps(rows, indent=2, default=float))
        return
    print(f"household days of {args.minutes:g} min, seeds {args.seeds}, data {SHARED}\n")
    print("| variant | seed | " + " | ".join(c for c, _ in METRICS) + " |")
    print("|---|---|" + "---|" * len(METRICS))
    for r in rows:
        print(f"| {r['variant']} | {r['seed']} | " + " | ".join(f(r) for _, f in METRICS) + " |")


if __name__ == "__main__":
    main()

"""Fine-tuning proof on CPU: a tiny random moshi LM learns to answer from its Level-1 MemChunk.

    python bench/bench_finetune_proof.py [--steps 700] [--espeak] [--out result.json]

Prints held-out fact accuracy with the chunk, with it blanked, and with another user's chunk swapped in.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from egomem_ros.tools.finetune.proof import ProofConfig, run_proof


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=ProofConfig.steps)
    ap.add_argument("--train-dialogs", type=int, default=ProofConfig.train_dialogs)
    ap.add_argument("--espeak", action="store_true", help="espeak-ng speech instead of word tones")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    cfg = ProofConfig(steps=args.steps, train_dialogs=args.train_dialogs, espeak=args.espeak, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        result = run_proof(Path(tmp), cfg)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()

"""Privacy between the people of a household: usefulness, violations and forgetting failures.

Run: .venv/bin/python bench/bench_privacy.py [--sets dev heldout unseen blind] [--seeds 0 1 2 3 4 5 6 7] [--json]
Each seed is one household of 4 (egomem_ros/tools/eval/privacy_eval.py says how it is built): everyone
tells the robot one thing, shared, private, hidden from one relative, or public; everyone else asks about
it through the shipped Level-2; one person asks the robot to forget their topic and is asked again. `dev`
holds the phrasings the cue patterns were written from; `heldout` other phrasings and topics, written with
them; `unseen` phrasings written after the patterns (its first run is bench/measured/privacy_unseen_first_run.txt,
and the patterns were then widened to the kinds of phrasing it missed); `blind` phrasings written by someone
who never saw the patterns (bench/data/privacy_phrases_blind.json), never tuned on; `blind2` the same from
another helper, with 20 ordinary sentences about secrets, telling and forgetting that must raise no cue;
`blind3` a third, written after the cue classifier (memory/cue_intent.py) and run once, with 24 such
sentences (its misses were then read); `blind4` a fourth, written while the classifier was retrained on a
second author's examples and run once after it (bench/measured/privacy_blind4_first_run.txt). It also
counts the sentences of natural conversations that raise a cue: the dev conversations
(bench/data/conversations/conv01-06, on which the classifier's threshold was chosen) and the held-out
ones (conv07-09), apart.
Targets (issue #39): 0 violations and 0 forgetting failures on both; usefulness on allowed questions no
worse than Level-2 without privacy.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from egomem_ros.config import config_from_mapping
from egomem_ros.tools.eval.privacy_eval import PHRASES, conversation_false_cues, run_privacy

# phrasings written by helpers who had not seen the cue patterns (run as they are; docs/results.md)
for _path in sorted((Path(__file__).parent / "data").glob("privacy_phrases_*.json")):
    PHRASES[_path.stem.removeprefix("privacy_phrases_")] = json.loads(_path.read_text(encoding="utf-8"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["dev", "heldout", "unseen", "blind", "blind2", "blind3", "blind4"],
                    choices=sorted(PHRASES))
    ap.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="egomem-privacy-"))
    cfg = config_from_mapping({})
    rows = [run_privacy(workdir, cfg, name, args.seeds) for name in args.sets]
    talk = Path(__file__).parent / "data" / "conversations"
    conversations = {name: conversation_false_cues(sorted(talk.glob(pattern)))
                     for name, pattern in (("dev", "conv0[1-6].json"), ("heldout", "heldout/conv*.json"))}
    if args.json:
        print(json.dumps({"sets": rows, "conversation sentences that raise a cue": conversations}, indent=1))
        return
    print(f"{'set':8} {'households':>10} {'usefulness':>11} {'without privacy':>16} {'violations':>11} "
          f"{'forget failures':>16}")
    for r in rows:
        print(f"{r['set']:8} {r['households']:>10} {r['usefulness']:>11.3f} {r['usefulness without privacy']:>16.3f} "
              f"{r['violations']:>5}/{r['forbidden questions']:<5} {r['forgetting failures']:>9}/{r['forgotten topics']}")
        if r["ordinary sentences"]:
            print(f"   ordinary sentences that raise a cue: {r['false cues']}/{r['ordinary sentences']}")
        for miss in r["misses"]:
            print(f"   {miss}")
    for name, (sentences, fired) in conversations.items():
        print(f"{name} conversations: {len(fired)} of {sentences} sentences raise a cue")
        for line in fired:
            print(f"   {line}")


if __name__ == "__main__":
    main()

"""What the memory keeps of long natural conversations: two people over twelve sessions each.

Run: .venv/bin/python bench/bench_conversation_memory.py [--modes text turns separate together]
     [--sets dev heldout] [--only conv01 ...] [--workdir DIR] [--json] [--misses]
Data: bench/data/conversations/*.json (dev: the extractor was tuned on these) and
bench/data/conversations/heldout/*.json (never used for any choice; reported apart).
Modes:
- text: the memory process alone on each person's words per session (no audio; seconds);
- turns: the same, but every turn a session of its speaker, as when both are in view: what cutting the
  talk turn by turn costs, with no cut misplaced and no turn on the wrong person;
- separate: a bag of household visits, each person alone per session, replayed with `egomem replay`;
- together: both people in view, turns in the real order in their own voices (the cut at each
  change of voice, and the newcomer's introduction, decide whose words are whose).
Faces and voices come from ../shared/data (LFW, LibriSpeech); words go on the transcript topic.
Reported per set: answer recall, items per 100 user sentences, answers on the wrong person, answers
absent from the other person's memory, memorable items kept, profiles named, Level-1 topics of the
last three sessions; in text mode the seconds spent consolidating (the transcripts are given: no ASR),
in the replay modes the replay's seconds per 10 minutes of speech (identity polls included).
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import SHARED

from egomem_ros.config import EgomemConfig
from egomem_ros.tools.datagen.conversations import load_conversations
from egomem_ros.tools.eval.conversation_eval import run_replay, run_text

DATA = Path(__file__).resolve().parent / "data" / "conversations"
SETS = {"dev": DATA, "heldout": DATA / "heldout"}


def totals(rows: list[dict]) -> dict:
    s = lambda k: sum(r[k] for r in rows)  # noqa: E731
    out = {"conversations": len(rows), "questions": s("questions"), "answer_recall": s("answered") / max(1, s("questions")),
           "answer_recall_with_named": s("answered_with_named") / max(1, s("questions")),
           "items_per_100_sentences": 100 * s("items") / max(1, s("user_sentences")),
           "answers_on_wrong_person": s("answers_on_wrong_person"),
           "absent_from_other": 1 - s("answers_in_other_memory") / max(1, s("questions")),
           "memorable_kept": s("memorable_kept") / max(1, s("memorable")),
           "profiles_named": f"{s('profiles_named')}/{2 * len(rows)}",
           "l1_topics_named": f"{s('l1_topics_named')}/{s('l1_topics_total')}"}
    if rows and all("replay_s" in r for r in rows):
        out["replay_s_per_10_min_speech"] = 10 * s("replay_s") / max(1e-9, s("speech_min_estimate"))
    if rows and all("consolidation_s" in r for r in rows):
        out["consolidation_s"] = float(s("consolidation_s"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = ["text", "turns", "separate", "together"]
    ap.add_argument("--modes", nargs="+", default=modes, choices=modes)
    ap.add_argument("--sets", nargs="+", default=["dev", "heldout"], choices=sorted(SETS))
    ap.add_argument("--only", nargs="*", default=None, help="conversation ids")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--misses", action="store_true", help="print the questions whose answer was not kept")
    args = ap.parse_args()
    from egomem_ros.memory.disclosure import offline_extractor
    from egomem_ros.memory.update_agent import RuleUpdateAgent
    from egomem_ros.store import SqliteStore

    cfg = EgomemConfig()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="egomem-conversations-"))
    results: dict = {}
    chosen = {name: [c for c in load_conversations(SETS[name]) if not args.only or c.id in args.only] for name in args.sets}
    if not any(chosen.values()):
        ap.error(f"--only {' '.join(args.only or [])}: no such conversation in {', '.join(args.sets)}")
    for name, convs in chosen.items():
        if not convs:
            continue
        for mode in args.modes:
            rows = []
            for conv in convs:
                if mode in ("text", "turns"):
                    with SqliteStore(workdir / f"{conv.id}-{mode}-{name}.db") as store:
                        rows.append(run_text(conv, store, offline_extractor(cfg.memory.max_items_per_100_sentences),
                                             RuleUpdateAgent(), per_turn=mode == "turns"))
                else:
                    rows.append(run_replay(conv, workdir / name, cfg, SHARED / "faces", SHARED / "speech", mode))
            if not args.misses:   # the held-out questions stay unread unless asked for
                rows = [{k: v for k, v in r.items() if k != "misses"} for r in rows]
            results[f"{name}/{mode}"] = {"total": totals(rows), "conversations": rows}
    if args.json:
        print(json.dumps(results, indent=1, default=float))
        return
    keys = list(dict.fromkeys(k for r in results.values() for k in r["total"]))
    print("| set / mode | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
    for name, r in results.items():
        cells = [r["total"].get(k, "") for k in keys]
        print(f"| {name} | " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in cells) + " |")
    if args.misses:
        for name, r in results.items():
            for row in r["conversations"]:
                for m in row["misses"]:
                    print(f"{name} {row['id']}: {m['question']} -> {m['answer']}")


if __name__ == "__main__":
    main()

"""Write docs/results.md from measurements stored under bench/measured/.

    .venv/bin/python scripts/gen_results.py run            # run the quick measurements (~10 min, 2 cores), then render
    .venv/bin/python scripts/gen_results.py run face text  # run some of them
    .venv/bin/python scripts/gen_results.py render         # render from what is stored
    .venv/bin/python scripts/gen_results.py --check        # exit 1 if docs/results.md is not what render writes
    .venv/bin/python scripts/gen_results.py list

A run stores bench/measured/NAME.json: the command, the date, the machine and the command's own `--json`
output. Measurements that need hours, a GPU or generated streams (`recorded` below) are stored the same
way by hand from their command's output and rendered with their own date and machine; the page marks them.
The "What did not work" section is bench/measured/what_did_not_work.md, verbatim.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STORE = REPO / "bench" / "measured"
OUT = REPO / "docs" / "results.md"
DATA = Path(os.environ.get("EGOMEM_DATA", REPO.parent / "shared" / "data"))
TOPICS = ("Identity", "Level-2 retrieval", "Memory", "Dialog", "Fleet")
Rows = list[tuple[str, ...]]   # (metric, result) or (metric, result, the row's own command)


@dataclass(frozen=True)
class Measurement:
    name: str
    topic: str
    command: str                      # {data}, {work}, {py} and {egomem} are filled in
    rows: Callable[[Any], Rows] = field(repr=False)
    quick: bool = True                # part of a plain `run`


def _f(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}"


def face_rows(r: dict) -> Rows:
    return [(f"face verification, {r['identities']} LFW identities x {r['images'] // r['identities']} ({r['pairs']} pairs)",
             f"accuracy {_f(r['accuracy'], 4)} ± {_f(r['accuracy_std'], 4)}, {r['no_face']} without a face, "
             f"{r['ms_per_image']:.0f} ms/image ({r['model']})")]


def speaker_rows(label: str) -> Callable[[dict], Rows]:
    def rows(r: dict) -> Rows:
        return [(f"speaker identification, {label} ({r['speakers']} speakers, {r['queries']} queries)",
                 f"pass@1 {_f(r['pass_at_1'])} raw / {_f(r['pass_at_1_snorm'])} s-norm; EER {r['eer']:.1%} / "
                 f"{r['eer_snorm']:.1%} ({r['model']})")]
    return rows


def text_rows(r: dict) -> Rows:
    out: Rows = []
    by_bench: dict[str, list[dict]] = {}
    for q in r["quality"]:
        by_bench.setdefault(q["benchmark"], []).append(q)
    for bench, qs in by_bench.items():
        cells = ", ".join(f"{q['backend']} {_f(q['pass_at_5'])} ({_f(q['pass_at_1'])})" for q in qs)
        out.append((f"Level-2 pass@5 (pass@1), {bench} ({qs[0]['queries']} queries)", cells))
    by_size: dict[int, list[dict]] = {}
    for lat in r["latency"]:
        by_size.setdefault(lat["docs"], []).append(lat)
    for docs, ls in by_size.items():
        out.append((f"Level-2 query latency at {docs} documents, ms median / p95",
                    ", ".join(f"{x['backend']} {x['ms_median']:.2f} / {x['ms_p95']:.2f}" for x in ls)))
    return out


def generated_text_rows(r: dict) -> Rows:
    return [(f"Level-2 pass@5 (pass@1), generated benchmark ({r['queries']} queries, {r['documents']} facts)",
             f"{r['backend']} {_f(r['pass_at_5'])} ({_f(r['pass_at_1'])}), {r['ms_per_query_median']:.2f} ms median")]


def extract_rows(r: dict) -> Rows:
    kinds = ", ".join(f"{k} {_f(v['precision'], 2)}/{_f(v['recall'], 2)}" for k, v in r.items()
                      if isinstance(v, dict) and k != "overall" and v.get("precision") is not None)
    o = r["overall"]
    return [("offline extractor, hand-written template dialogs: precision / recall",
             f"overall {_f(o['precision'])} / {_f(o['recall'])}; {kinds}")]


def conversation_rows(r: dict) -> Rows:
    rows = []
    for key, v in r.items():
        t = v["total"]
        name, mode = key.split("/")
        label = {"dev": "dev (tuned on)",
                 "heldout": "held out (another author's; the item budget, and that it is the person's over the hour, "
                            "were set after held-out runs)"}.get(name, name)
        time = (f"; {t['consolidation_s']:.1f} s consolidating" if "consolidation_s" in t else
                f"; replay {t['replay_s_per_10_min_speech']:.0f} s per 10 min of speech"
                if "replay_s_per_10_min_speech" in t else "")
        rows.append((f"conversation memory, {label}, {mode} ({t['conversations']} conversations, {t['questions']} questions): "
                     "answer recall (with what they said about named people); items per 100 user sentences; answers on "
                     "the wrong person; answers absent from the other's memory; memorable kept; profiles named; "
                     "Level-1 topics of the last 3 sessions",
                     f"{_f(t['answer_recall'])} ({_f(t['answer_recall_with_named'])}); {t['items_per_100_sentences']:.1f}; "
                     f"{t['answers_on_wrong_person']}; {_f(t['absent_from_other'])}; {_f(t['memorable_kept'])}; "
                     f"{t['profiles_named']}; {t['l1_topics_named']}{time}"))
    return rows


def household_rows(rs: list[dict]) -> Rows:
    seeds = "/".join(str(r["seed"]) for r in rs)
    col = lambda f: " / ".join(f(r) for r in rs)  # noqa: E731
    return [
        (f"household day, real faces and voices (seeds {seeds}): people with one profile",
         col(lambda r: f"{r['people_with_one_profile']}/{r['people']}")),
        ("household day: facts on the wrong person; stray profiles",
         col(lambda r: f"{r['facts_on_wrong_person']}; {r['stray_profiles']}")),
        ("household day: fact recall; relations",
         col(lambda r: f"{_f(r['fact_recall'])}; {r['relations_right']}/{r['relations']}")),
        ("household day: returns recognised; polls to known (max)",
         col(lambda r: f"{r['returns_recognised']}/{r['returns']}; {r['polls_to_known_max']}")),
        ("household day: s from session end to profile (max); replay s of the 10-min bag",
         col(lambda r: f"{r['s_session_end_to_profile_max']:.1f}; {r['replay_s']:.1f}")),
    ]


def privacy_rows(r: dict) -> Rows:
    label = {"dev": "dev (the cue patterns were written from it)", "heldout": "held out (written with the patterns)",
             "unseen": "unseen (written after the patterns; its first run, 18/20 violations and 8/32 forgetting "
                       "failures, is bench/measured/privacy_unseen_first_run.txt; the patterns were widened after it)",
             "blind": "blind (another author's phrasings, bench/data/privacy_phrases_blind.json; its misses were seen "
                      "before the cue classifier was written)",
             "blind2": "blind2 (a third author's phrasings, bench/data/privacy_phrases_blind2.json; seen as blind)",
             "blind3": "blind3 (a fourth author's phrasings, bench/data/privacy_phrases_blind3.json; run once on the "
                       "first cue classifier: 5/20 violations, 24/32 forgetting failures; its misses were then read)",
             "blind4": "blind4 (a fifth author's phrasings, bench/data/privacy_phrases_blind4.json; written before the "
                       "classifier was retrained and run once after it, bench/measured/privacy_blind4_first_run.txt)"}
    rows = [(f"privacy, {label.get(s['set'], s['set'])} ({s['households']} households): usefulness on allowed "
             "questions (the same memory without privacy cues); violations / forbidden questions; forgetting failures / "
             "checks after a forget (each asker, and the memory's files)",
             f"{_f(s['usefulness'])} ({_f(s['usefulness without privacy'])}); {s['violations']}/{s['forbidden questions']}; "
             f"{s['forgetting failures']}/{s['forgotten topics']}"
             + (f"; ordinary sentences raising a cue {s['false cues']}/{s['ordinary sentences']}" if s.get("ordinary sentences")
                else "")) for s in r["sets"]]
    for name, (sentences, fired) in r.get("conversation sentences that raise a cue", {}).items():
        what = "dev (the classifier's threshold was chosen on it)" if name == "dev" else name
        rows.append((f"privacy: sentences of natural conversations ({what}) that raise a cue (some are real: "
                     "\"don't tell Mum\")", f"{len(fired)}/{sentences}"))
    return rows


def recorded_rows(r: dict) -> Rows:
    return [tuple(row) for row in r["rows"]]


EG, PY = "{egomem}", "{py}"
MEASUREMENTS = [
    Measurement("face", "Identity", f"{EG} eval face {{data}}/faces --json", face_rows),
    Measurement("speaker_librispeech", "Identity", f"{EG} eval speaker {{data}}/speech --only 'librispeech_*' --json",
                speaker_rows("LibriSpeech")),
    Measurement("speaker_fsdd", "Identity", f"{EG} eval speaker {{data}}/speech --only 'fsdd_*' --json",
                speaker_rows("FSDD spoken digits, 8 kHz")),
    Measurement("identity_poll", "Identity", f"{PY} bench/bench_identity_poll.py", recorded_rows, quick=False),
    Measurement("key_match", "Identity", f"{PY} bench/bench_match.py --sizes 100000 1000000 --queries 2000",
                recorded_rows, quick=False),
    Measurement("text", "Level-2 retrieval", f"{PY} bench/bench_text_retrieval.py --quality "
                "bench/data/text_retrieval_outside.json bench/data/text_retrieval_outside2.json "
                "bench/data/text_retrieval_outside3.json bench/data/text_retrieval_handwritten.json", text_rows),
    Measurement("text_generated", "Level-2 retrieval", f"{EG} make-bench text --out {{work}}/text.json && "
                f"{EG} eval text {{work}}/text.json --json", generated_text_rows),
    Measurement("household", "Memory", f"{EG} eval household --faces {{data}}/faces --voices {{data}}/speech "
                "--workdir {work}/household --seed 0 --seed 1 --seed 2 --json", household_rows),
    Measurement("privacy", "Memory", f"{PY} bench/bench_privacy.py --json", privacy_rows),
    Measurement("privacy_latency", "Memory", f"{PY} bench/bench_privacy_latency.py --sizes 100000 --backends none lexical",
                recorded_rows, quick=False),
    Measurement("extract", "Memory", f"{EG} eval extract bench/data/extraction_handwritten.json --json", extract_rows),
    Measurement("conversation_text", "Memory", f"{PY} bench/bench_conversation_memory.py --modes text turns --json",
                conversation_rows),
    Measurement("conversation_replay", "Memory", f"{PY} bench/bench_conversation_memory.py --modes separate --json",
                conversation_rows, quick=False),
    Measurement("conversation_together", "Memory", f"{PY} bench/bench_conversation_memory.py --modes together --json",
                conversation_rows, quick=False),
    Measurement("asr", "Memory", f"{PY} bench/bench_asr.py --json", recorded_rows, quick=False),
    Measurement("consolidation", "Memory", f"{PY} bench/bench_consolidation.py --asr --tagger "
                "egomem_ros/data/trigger_tagger.pt", recorded_rows, quick=False),
    Measurement("trigger", "Memory", f"{EG} eval trigger streams/test --segmenter tagger --json", recorded_rows, quick=False),
    Measurement("dialog_cpu", "Dialog", f"{PY} bench/bench_dialog.py --attention joint,split --blocks 40",
                recorded_rows, quick=False),
    Measurement("dialog_h200", "Dialog", f"{PY} bench/bench_dialog.py --sizes 7b --device cuda --dtype bf16 --rounds 2 "
                "--switch-repeats 15 --check-graph", recorded_rows, quick=False),
    Measurement("finetune_proof", "Dialog", f"{PY} bench/bench_finetune_proof.py", recorded_rows, quick=False),
    Measurement("fleet", "Fleet", f"{PY} bench/bench_fleet.py", recorded_rows, quick=False),
    Measurement("fleet_keys", "Fleet", f"{PY} bench/bench_fleet_keys.py --queries 200", recorded_rows, quick=False),
]
BY_NAME = {m.name: m for m in MEASUREMENTS}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
    except (OSError, IndexError, ValueError):
        mem_kb = 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}, {cores} cores, {mem_kb / 2**20:.0f} GiB, no GPU"


def _json_tail(stdout: str) -> Any:
    """The command's JSON: the last JSON value that runs to the end of the output (benches print a table
    first)."""
    lines = stdout.rstrip().splitlines(keepends=True)
    for i in range(len(lines) - 1, -1, -1):
        if lines[i][:1] in "{[":
            try:
                return json.loads("".join(lines[i:]))
            except json.JSONDecodeError:
                continue
    raise ValueError("the command printed no JSON")


def run(m: Measurement, work: Path) -> dict:
    if not m.quick:
        raise SystemExit(f"{m.name} is recorded, not run by this script (hours, a GPU or generated streams): "
                         f"run `{m.command}` and store its output in {STORE / (m.name + '.json')}")
    if not DATA.is_dir() and "{data}" in m.command:
        raise SystemExit(f"test data not found at {DATA} (set EGOMEM_DATA)")
    bin_dir = Path(sys.executable).parent
    command = m.command.format(data=DATA, work=work, py=shlex.quote(sys.executable),
                               egomem=shlex.quote(str(bin_dir / "egomem")))
    print(f"[{m.name}] {command}", flush=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(["bash", "-c", command], cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{m.name} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return {"name": m.name, "command": m.command.format(data="DATA", work="WORK", py="python", egomem="egomem"),
            "date": dt.date.today().isoformat(), "machine": machine(), "result": _json_tail(done.stdout)}


def render() -> str:
    stored = {p.stem: json.loads(p.read_text()) for p in sorted(STORE.glob("*.json"))}
    lines = ["# Results", "",
             "Written by `scripts/gen_results.py` from bench/measured/*.json; do not edit by hand. Each row says",
             "which command measured it, when and on what machine. DATA is `../shared/data` (24 LFW identities x 10",
             "faces, LibriSpeech and FSDD speakers). Rows marked *recorded* come from runs this script does not",
             "repeat (hours of work, a GPU, or generated streams); rerun their command to update them.", ""]
    for topic in TOPICS:
        ms = [m for m in MEASUREMENTS if m.topic == topic and m.name in stored]
        if not ms:
            continue
        lines += [f"## {topic}", "", "| metric | result | command | measured |", "|---|---|---|---|"]
        for m in ms:
            s = stored[m.name]
            when = f"{s['date']}, {s['machine']}" + ("; *recorded*" if "rows" in s else "")
            shown = None
            for metric, value, *own in m.rows(s.get("result", s)):
                command = own[0] if own else s["command"]
                cell = "same" if command == shown else f"`{command}`"
                lines.append(f"| {metric} | {value} | {cell} | {when} |")
                shown = command
        lines.append("")
    notes = STORE / "what_did_not_work.md"
    if notes.is_file():
        lines += ["## What did not work", "", notes.read_text(encoding="utf-8").strip(), ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", nargs="?", choices=["run", "render", "list"], default="render")
    ap.add_argument("names", nargs="*", help="measurements to run (default: every quick one)")
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/results.md is not current")
    args = ap.parse_args()
    if args.check:
        if OUT.read_text(encoding="utf-8") != render():
            print("docs/results.md is stale: run scripts/gen_results.py render", file=sys.stderr)
            return 1
        return 0
    if args.action == "list":
        for m in MEASUREMENTS:
            print(f"{m.name:<22} {m.topic:<18} {'run' if m.quick else 'recorded'}  {m.command}")
        return 0
    if args.action == "run":
        unknown = [n for n in args.names if n not in BY_NAME]
        if unknown:
            print(f"unknown measurement(s): {', '.join(unknown)} (see: gen_results.py list)", file=sys.stderr)
            return 2
        STORE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="egomem-results-") as work:
            for m in [BY_NAME[n] for n in args.names] or [m for m in MEASUREMENTS if m.quick]:
                record = run(m, Path(work))
                (STORE / f"{m.name}.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

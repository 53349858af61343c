"""`egomem eval ...` and `egomem make-bench ...`: the paper's metrics on any directory or file of the
documented layout."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import track

from .common import console, err_console, fail

eval_app = typer.Typer(no_args_is_help=True, help="Evaluate a component with the paper's metrics.")
make_bench_app = typer.Typer(no_args_is_help=True, help="Generate synthetic benchmark files.")

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]


def report(result: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(result, indent=2, default=float))
        return
    console.rule(title)
    for key, value in result.items():
        if isinstance(value, list):
            console.print(f"{key}: {len(value)} item(s)")
        else:
            console.print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")


def progress(label: str, quiet: bool):
    def wrap(items):
        return items if quiet else track(items, description=label, console=err_console)
    return wrap


@eval_app.command("text")
def eval_text(file: Annotated[Path, typer.Argument(help="Benchmark JSON (users, edges, queries).")],
              as_json: JsonOption = False,
              backend: Annotated[str, typer.Option(help="Rerank backend: minilm (the default), lexical, bge, none.")] = "minilm",
              bge_model: Annotated[str, typer.Option(help="Model name or path for --backend bge.")] = "BAAI/bge-small-en-v1.5",
              k: Annotated[int, typer.Option(help="Top-k cut-off.")] = 5,
              hops: Annotated[int, typer.Option(help="Social-graph hop limit.")] = 1) -> None:
    """Level-2 text retrieval: pass@k and latency."""
    from pydantic import ValidationError

    from ..config import format_validation_error
    from ..retrieval.rerank import make_reranker
    from ..retrieval.text_bench import evaluate_text_bench, load_text_bench

    if not file.is_file():
        fail(f"benchmark file not found: {file}")
    try:
        bench = load_text_bench(file)
    except ValidationError as err:
        fail(f"{file}: not a text retrieval benchmark: {format_validation_error(err, 'benchmark')}")
    except ValueError as err:
        fail(f"{file}: not a text retrieval benchmark: {err}")
    try:
        reranker = make_reranker(backend, bge_model)
    except (ValueError, RuntimeError, OSError) as err:
        fail(f"cannot load rerank backend {backend!r}: {err}")
    result = evaluate_text_bench(bench, reranker, k=k, hop_limit=hops, progress=progress("queries", as_json))
    report(result, as_json, f"text retrieval ({file.name}, {result['backend']})")


@make_bench_app.command("text")
def make_bench_text(out: Annotated[Path, typer.Option("--out", "-o", help="Output JSON file.")],
                    users: Annotated[int, typer.Option("--users", help="Main users (each with 3-5 connections).")] = 40,
                    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
                    queries_per_user: Annotated[int, typer.Option(help="Queries per main user.")] = 5) -> None:
    """Synthetic Level-2 benchmark sized like the paper's (≈500 tuples, ≈200 queries at 40 users)."""
    from ..retrieval.text_bench import generate_text_bench, write_bench

    if users < 1:
        fail("--users must be at least 1")
    if not out.parent.is_dir():
        fail(f"output directory {out.parent} does not exist")
    data = generate_text_bench(users, seed=seed, queries_per_user=queries_per_user)
    write_bench(data, out)
    n_facts = sum(len(u["facts"]) for u in data["users"])
    console.print(f"wrote {out}: {len(data['users'])} users, {len(data['edges'])} edges, "
                  f"{n_facts} facts, {len(data['queries'])} queries")


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
    app.add_typer(make_bench_app, name="make-bench")


@eval_app.command("face")
def eval_face(directory: Annotated[Path, typer.Argument(help="DIR/<identity>/<images>.")],
              as_json: JsonOption = False,
              backend: Annotated[str, typer.Option(help="Face backend.")] = "dlib",
              upsample: Annotated[int, typer.Option(min=0, max=3, help="dlib HOG upsampling (0-3).")] = 0,
              seed: Annotated[int, typer.Option(help="Seed for the different-identity pairs and folds.")] = 0) -> None:
    """Face verification accuracy, LFW protocol (10-fold cross-validated threshold)."""
    from ..eval.face_eval import evaluate_faces
    from ..retrieval.face import FaceEngine, make_face_backend

    if not directory.is_dir():
        fail(f"not a directory: {directory}")
    try:
        engine = FaceEngine(make_face_backend(backend, upsample=upsample))
        result = evaluate_faces(directory, engine, seed=seed, progress=progress("faces", as_json))
    except (FileNotFoundError, ValueError, ImportError) as err:
        fail(str(err))
    report(result, as_json, f"face verification ({directory})")


@eval_app.command("speaker")
def eval_speaker(directory: Annotated[Path, typer.Argument(help="DIR/<speaker>/<audio files>.")],
                 as_json: JsonOption = False,
                 enroll: Annotated[int, typer.Option(help="Utterances enrolled per speaker.")] = 3,
                 cohort: Annotated[Optional[Path], typer.Option(
                     help="Imposter cohort DIR/<speaker>/<audio> (default: leave-one-out).")] = None,
                 only: Annotated[Optional[str], typer.Option(
                     help="Only speakers matching this glob, e.g. 'librispeech_*'.")] = None,
                 top_n: Annotated[int, typer.Option(help="Cohort top-N for adaptive s-norm.")] = 200,
                 backend: Annotated[str, typer.Option(help="Voice backend.")] = "resemblyzer",
                 vad: Annotated[bool, typer.Option(help="silero-vad before embedding.")] = True,
                 min_voiced: Annotated[float, typer.Option(help="Minimum voiced seconds per utterance.")] = 0.1) -> None:
    """Speaker pass@1 and EER, raw cosine vs adaptive s-norm."""
    from ..eval.speaker_eval import evaluate_speakers
    from ..retrieval.voice import VoiceEngine, make_voice_backend

    if not directory.is_dir():
        fail(f"not a directory: {directory}")
    if cohort is not None and not cohort.is_dir():
        fail(f"cohort is not a directory: {cohort}")
    if enroll < 1:
        fail("--enroll must be at least 1")
    try:
        engine = VoiceEngine(make_voice_backend(backend), use_vad=vad, min_voiced_s=min_voiced)
        result = evaluate_speakers(directory, engine, enroll=enroll, top_n=top_n, only=only, cohort_dir=cohort,
                                   progress=progress("utterances", as_json))
    except (FileNotFoundError, ValueError, ImportError) as err:
        fail(str(err))
    report(result, as_json, f"speaker recognition ({directory}{' ' + only if only else ''})")


@eval_app.command("household")
def eval_household(faces: Annotated[Path, typer.Option(help="Faces: DIR/<identity>/<images>.")],
                   voices: Annotated[Path, typer.Option(help="Voices: DIR/<speaker>/<recordings>.")],
                   workdir: Annotated[Path, typer.Option(help="Where each day's bag, output bag and memory go.")],
                   seed: Annotated[list[int], typer.Option(help="Seed of a day (repeatable: one day per seed).")] = [0],  # noqa: B006
                   minutes: Annotated[float, typer.Option(help="Length of a day.")] = 10.0,
                   config: Annotated[Optional[Path], typer.Option(
                       "--config", "-c", help="egomem YAML config (default: the shipped one).")] = None,
                   as_json: JsonOption = False) -> None:
    """A household day from real faces and voices, replayed and scored: profiles per person, facts on the
    wrong person, fact recall, relations, and how soon returning people are recognised."""
    from ..eval.household_eval import run_household
    from .common import get_config

    for d, what in ((faces, "--faces"), (voices, "--voices")):
        if not d.is_dir():
            fail(f"{what} {d}: not a directory")
    if minutes < 3:
        fail("--minutes must be at least 3 (a day holds 13 visits)")
    cfg = get_config(config)
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in seed:
        try:
            rows.append(run_household(faces, voices, workdir, cfg, seed=s, minutes=minutes,
                                      progress=None if as_json else
                                      (lambda it, total, s=s: track(it, total=total, description=f"day {s}",
                                                               console=err_console))))
        except (FileNotFoundError, ValueError) as err:
            fail(str(err))
    if as_json:
        print(json.dumps(rows, indent=2, default=float))
        return
    household_table(rows)


def household_table(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from ..eval.household_eval import METRICS

    table = Table(title="household day")
    table.add_column("metric")
    for r in rows:
        table.add_column(f"seed {r['seed']}")
    for title, cell in METRICS:
        table.add_row(title, *(cell(r) for r in rows))
    console.print(table)
    for r in rows:
        for w in r["wrong"]:
            console.print(f"[red]seed {r['seed']}: wrong person[/] {w}")
        if r["not_recognised"]:
            console.print(f"[yellow]seed {r['seed']}: not recognised on return[/] {', '.join(r['not_recognised'])}")

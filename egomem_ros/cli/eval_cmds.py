"""`egomem eval ...` and `egomem make-bench ...`: the paper's metrics on any directory or file of the
documented layout."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import track

from .common import console, fail

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
        return items if quiet else track(items, description=label, console=console.__class__(stderr=True))
    return wrap


@eval_app.command("text")
def eval_text(file: Annotated[Path, typer.Argument(help="Benchmark JSON (users, edges, queries).")],
              as_json: JsonOption = False,
              backend: Annotated[str, typer.Option(help="Rerank backend: lexical, minilm, bge, none.")] = "lexical",
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

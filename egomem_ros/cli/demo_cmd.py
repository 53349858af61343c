"""`egomem demo`: the paper's Emily/Sarah story, run on a temporary store."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import console, fail


def demo(workdir: Annotated[Optional[Path], typer.Option(
        help="Keep the demo's files here (default: a temp dir).")] = None) -> None:
    """Run the Emily/Sarah scene end to end and print what the memory does."""
    from ..demo import run_demo

    if workdir is not None:
        try:
            workdir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            fail(f"cannot use --workdir {workdir}: {err.strerror or err}")
        run_demo(workdir, console)
        return
    console.print("(the demo works in a temporary directory, removed at the end: `egomem demo --workdir DIR` "
                  "keeps the bags, the memory and the graph it prints)")
    with tempfile.TemporaryDirectory(prefix="egomem-demo-") as tmp:
        run_demo(Path(tmp), console)
    console.print("(the demo's files were in a temporary directory, now removed: "
                  "`egomem demo --workdir DIR` keeps the bags, the memory and the graph)")


def register(app: typer.Typer) -> None:
    app.command()(demo)

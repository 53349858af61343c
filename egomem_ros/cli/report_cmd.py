"""`egomem report`: the replay report of a recording and its memory, as one HTML file."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import console, fail


def report(bag: Annotated[Path, typer.Option(
        "--bag", help="Output bag of `egomem replay`, or `ros2 bag record` of the nodes' topics.")],
           db: Annotated[str, typer.Option("--db", help="The memory the run wrote (file or postgresql:// URL).")],
           out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")]) -> None:
    """Identity timeline, sessions and what they wrote, MemChunks and the social graph, in one HTML file."""
    from ..memory.locations import register_report
    from ..report import write_report

    if not out.parent.is_dir():
        fail(f"directory of --out does not exist: {out.parent}")
    try:
        path = write_report(bag, db, out)
        register_report(db, path)   # `forget` deletes the reports that name the person
    except FileNotFoundError as err:
        fail(str(err))
    except Exception as err:  # noqa: BLE001 - rosbags and sqlite raise many types for files that are not theirs
        fail(f"cannot read {bag} / {db}: {err}")
    console.print(f"report: {path}")


def register(app: typer.Typer) -> None:
    app.command()(report)

"""`egomem replay BAG --out OUT_BAG`: the pipeline over a recorded ROS 2 bag, without ROS."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import track

from ..store.models import is_postgres_url

from .common import ConfigOption, console, err_console, fail, get_config


def replay(bag: Annotated[Path, typer.Argument(help="ROS 2 bag (directory or .mcap/.db3).")],
           out: Annotated[Path, typer.Option("--out", "-o", help="Output bag (mcap) to create.")],
           topics: Annotated[Optional[list[str]], typer.Option("--topics", help="Only these input topics (repeatable).")] = None,
           db: Annotated[Optional[str], typer.Option(
               "--db", help="An existing memory (file or postgresql:// URL) to replay against (default: a new OUT.db).")] = None,
           dialog_text: Annotated[str, typer.Option(
               help="Topic with the dialog model's text (for <retr>).")] = "/egomem/dialog/text",
           speak: Annotated[str, typer.Option(
               "--speak-topic", help="Audio topic with the robot's own voice (the speak channel).")] = "/egomem/dialog/audio_out",
           report: Annotated[Optional[Path], typer.Option("--report", help="Also write the replay report (HTML) here.")] = None,
           config: ConfigOption = None, quiet: Annotated[bool, typer.Option(help="Only the summary.")] = False) -> None:
    """Run identity -> memory (-> Level-2 for <retr> text) over a bag and write an output bag."""
    from ..replay import ReplayError, replay as run

    cfg = get_config(config)
    if report is not None and not report.parent.is_dir():
        fail(f"directory of --report does not exist: {report.parent}")
    if db is not None and not is_postgres_url(db) and not Path(db).exists():
        # a mistyped --db must not become a new, empty memory
        fail(f"memory database {db} does not exist (leave out --db and the replay starts a new memory in "
             f"{out.with_suffix('.db')})")

    def say(kind: str, text: str) -> None:
        if not quiet:
            console.print(f"[bold]{kind}[/] {text}", markup=True, highlight=False)

    try:
        s = run(bag, out, cfg, db=db, topics=topics, dialog_text_topic=dialog_text, speak_topic=speak,
                progress=lambda it, total: track(it, total=total, description="replay", console=err_console),
                on_event=say)
    except ReplayError as err:
        fail(str(err))
    console.rule("replay summary")
    console.print(f"messages read: {s.messages}   polls: {s.polls}   identity switches: {s.switches}")
    console.print(f"poll outcomes: {dict(s.identities)}")
    console.print(f"sessions written: {s.sessions_written}   new users: {s.users_created}   memory events: {s.events}"
                  f"   <retr> queries: {s.l2_queries}")
    for what, n in s.rejected.items():
        console.print(f"[yellow]rejected[/] {n} x {what}")
    for t in s.skipped_topics:
        console.print(f"[yellow]skipped[/] {t}")
    for jump in s.clock_jumps:
        console.print(f"[yellow]clock jump[/] {jump}: the timers ran once, not once per period", highlight=False)
    for note in s.stamp_notes:
        console.print(f"[yellow]stamps[/] {note}", highlight=False)
    for why in s.sessions_set_aside:
        err_console.print(f"[yellow]session set aside[/] (it cannot be written; the file is kept as .bad with a "
                          f".reason next to it in the spool): {why}", markup=True, highlight=False)
    if s.truncated:
        console.print(f"[red]bag truncated[/]: {s.truncated}")
    console.print(f"output bag: {s.out}")
    if s.sessions_waiting:
        err_console.print(f"[yellow]{s.sessions_waiting} session(s) could not be written yet[/] (see the warnings "
                          "above; an LLM that failed?): they wait in the spool, and the next run with this "
                          "--db writes them")
    if report is not None:
        from ..memory.locations import register_report
        from ..report import write_report

        try:
            memory = db or Path(s.out).with_suffix(".db")
            path = write_report(Path(s.out), memory, report)
            register_report(memory, path)   # `forget` deletes the reports that name the person
            console.print(f"report: {path}")
        except (OSError, FileNotFoundError) as err:
            fail(f"cannot write the report {report}: {err}")
    if s.sessions_waiting:
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    app.command()(replay)

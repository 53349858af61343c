"""Shared CLI plumbing: config and store opening with errors a user can act on, progress bars and the
`--json`-or-table report of the evaluation commands."""
from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import typer
from rich.console import Console
from rich.progress import track

from ..config import ConfigError, EgomemConfig, load_config, resolve_db
from ..store import SqlStore, StoreError
from ..store import open_store as open_memory

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

DbOption = Annotated[Optional[str], typer.Option(
    "--db", help="Memory: a SQLite file or a postgresql:// URL (default: store.url, else store.db_path, else the XDG data dir).")]
ConfigOption = Annotated[Optional[Path], typer.Option(
    "--config", "-c", help="egomem YAML config (ROS parameter layout or plain).")]


def fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def get_config(config: Path | None) -> EgomemConfig:
    try:
        return load_config(config)
    except ConfigError as err:
        fail(str(err))


@contextmanager
def open_store(db: str | None, config: Path | None, *, create: bool = False) -> Iterator[SqlStore]:
    """The memory database; only `create=True` (enroll) makes a new SQLite file: a mistyped --db is an
    error, not a new empty memory."""
    cfg = get_config(config)
    path = resolve_db(cfg, db)
    if isinstance(path, Path):
        if create and db is None and not cfg.store.db_path:  # only the default location is created for the user
            path.parent.mkdir(parents=True, exist_ok=True)
        if not create and not path.exists():
            fail(f"memory database {path} does not exist (`egomem enroll` or `egomem replay` creates one)")
    try:
        store = open_memory(path)
    except StoreError as err:
        fail(str(err))
    try:
        yield store
    except (StoreError, sqlite3.Error, OSError) as err:
        fail(f"memory database {store.path}: {err}")
    finally:
        try:
            store.close()
        except sqlite3.Error:
            pass


def fmt_ts(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def is_interactive() -> bool:
    return sys.stdin.isatty()


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

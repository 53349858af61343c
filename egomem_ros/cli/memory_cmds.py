"""`egomem users | show | forget | graph`: inspect and erase long-term memory."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..memchunk import make_token_counter, render_user_profile
from ..store.graph import export_graph, social_graph
from .common import ConfigOption, DbOption, console, fail, fmt_ts, get_config, is_interactive, open_store


def users(db: DbOption = None, config: ConfigOption = None,
          placeholders: Annotated[bool, typer.Option(help="Include people only mentioned, never seen.")] = True) -> None:
    """List known users."""
    with open_store(db, config) as store:
        table = Table(title=f"Users in {store.path}")
        for col in ("id", "name", "kind", "facts", "face keys", "voice keys", "relations", "last seen"):
            table.add_column(col)
        for u in store.list_users(include_placeholders=placeholders):
            table.add_row(u.id, u.name or "-", "placeholder" if u.placeholder else "seen",
                          str(len(store.facts(u.id))), str(len(store.user_keys(u.id, "face"))),
                          str(len(store.user_keys(u.id, "voice"))),
                          str(sum(r.src == u.id for r in store.relations(u.id))), fmt_ts(u.last_seen))
        console.print(table)


def show(user: Annotated[str, typer.Argument(help="User id or exact name.")],
         db: DbOption = None, config: ConfigOption = None,
         history: Annotated[bool, typer.Option(help="Also list superseded/invalidated items.")] = True) -> None:
    """Show one user's profile: facts (with history), relations, episodes and the Level-1 MemChunk."""
    cfg = get_config(config)
    with open_store(db, config) as store:
        u = store.find_user(user)
        names = {x.id: x.display_name for x in store.list_users()}
        console.print(f"[bold]{u.name or '(no name)'}[/]  id={u.id}  "
                      f"{'placeholder  ' if u.placeholder else ''}created={fmt_ts(u.created_at)}  "
                      f"last_seen={fmt_ts(u.last_seen)}")
        facts = Table(title="Memory items")
        for col in ("id", "kind", "text", "valid from", "status"):
            facts.add_column(col)
        for f in store.facts(u.id, include_invalid=history):
            status = "valid" if f.valid else (f"superseded by {f.superseded_by}" if f.superseded_by
                                              else f"invalid since {fmt_ts(f.invalid_at)}")
            facts.add_row(f.id, f.kind, f.text, fmt_ts(f.valid_from), status)
        console.print(facts)
        rels = Table(title="Relations")
        rels.add_column("edge")
        for r in store.relations(u.id):
            rels.add_row(f"{names.get(r.dst, r.dst)} is {names.get(r.src, r.src)}'s {r.relation}")
        console.print(rels)
        eps = Table(title="Episodes")
        for col in ("id", "start", "end", "summary"):
            eps.add_column(col)
        for e in store.episodes(u.id):
            eps.add_row(e.id, fmt_ts(e.start), fmt_ts(e.end), e.summary)
        console.print(eps)
        counter = make_token_counter(cfg.memchunk.tokenizer, cfg.memchunk.tokenizer_path)
        packed = render_user_profile(store, u.id, cfg.memchunk.l1_max_tokens, counter)
        console.rule(f"Level-1 MemChunk ({packed.token_count} tokens, {counter.name})")
        console.print(packed.text, markup=False, highlight=False)


def forget(user: Annotated[str, typer.Argument(help="User id or exact name.")],
           db: DbOption = None, config: ConfigOption = None,
           yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False) -> None:
    """Erase a user everywhere: biometric keys, facts, episodes, edges and audit text."""
    with open_store(db, config) as store:
        u = store.find_user(user)
        if not yes:
            if not is_interactive():
                fail("refusing to forget without confirmation on a non-interactive terminal; pass --yes")
            if not typer.confirm(f"Erase {u.display_name} ({u.id}) and all their memory?"):
                fail("aborted, nothing erased", code=1)
        from ..config import resolve_db
        from ..memory.consolidate import SessionSpool
        from ..memory.manager import forget_person, spool_dir

        cfg = get_config(config)
        erased = forget_person(store, SessionSpool(spool_dir(cfg, resolve_db(cfg, db))), u.id)
        console.print(f"forgot {u.display_name} ({u.id})"
                      + (f", and {erased} of their sessions waiting to be written" if erased else ""))


def compact(db: DbOption = None, config: ConfigOption = None) -> None:
    """Rewrite the database so nothing erased stays in its files (forget does it itself; run this when forget
    said another process was reading)."""
    with open_store(db, config) as store:
        if not store.compact():
            fail(f"another process is reading {store.path}: stop it (or wait) and run compact again", code=1)
        console.print(f"compacted {store.path}: nothing erased remains in it or its write-ahead log")


def graph(out: Annotated[Path, typer.Option("--out", "-o", help="Output file.")],
          fmt: Annotated[str, typer.Option("--format", "-f", help="json (node-link) or graphml.")] = "json",
          db: DbOption = None, config: ConfigOption = None) -> None:
    """Export the social graph."""
    if fmt not in ("json", "graphml"):
        fail(f"--format must be json or graphml, not {fmt!r}")
    if not out.parent.is_dir():
        fail(f"output directory {out.parent} does not exist")
    if out.is_dir():
        fail(f"--out {out} is a directory: give the file to write, e.g. {out / 'graph.json'}")
    with open_store(db, config) as store:
        g = social_graph(store)
        export_graph(g, out, fmt)  # type: ignore[arg-type]
        console.print(f"wrote {g.number_of_nodes()} users and {g.number_of_edges()} relations to {out}")


def register(app: typer.Typer) -> None:
    for fn in (users, show, forget, compact, graph):
        app.command()(fn)

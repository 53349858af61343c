"""`egomem users | show | recall | forget | set-visibility | compact | graph`: inspect, restrict and erase
long-term memory."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..memchunk import make_token_counter, render_user_profile
from ..store.graph import export_graph, social_graph
from .common import ConfigOption, DbOption, console, fail, fmt_ts, get_config, is_interactive, open_store


def users(db: DbOption = None, config: ConfigOption = None,
          placeholders: Annotated[bool, typer.Option(help="Include people only mentioned, never seen.")] = True) -> None:
    """List known users."""
    with open_store(db, config) as store:
        table = Table(title=f"Users in {store.path}")
        for col in ("id", "name", "kind", "facts", "face keys", "voice keys", "relations"):
            table.add_column(col, overflow="fold")
        table.add_column("last seen", no_wrap=True, min_width=19)   # a date cut at 80 columns says nothing
        for u in store.list_users(include_placeholders=placeholders):
            table.add_row(u.id, escape(u.name or "-"), "placeholder" if u.placeholder else "seen",
                          str(len(store.facts(u.id))), str(len(store.user_keys(u.id, "face"))),
                          str(len(store.user_keys(u.id, "voice"))),
                          str(sum(r.src == u.id for r in store.relations(u.id))), fmt_ts(u.last_seen))
        console.print(table)


JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


def profile_json(store, user_id: str, history: bool, level1) -> dict:
    """A user's memory as `egomem show --json` prints it: every item with its episode and time."""
    u = store.get_user(user_id)
    names = {x.id: x.display_name for x in store.list_users()}
    episodes = store.episodes(u.id)
    own = {e.id: e for e in episodes}
    items = []
    for f in store.facts(u.id, include_invalid=history):
        items.append({"id": f.id, "kind": f.kind, "text": f.text, "valid_from": f.valid_from,
                      "episode": f.source_episode, "episode_start": own[f.source_episode].start
                      if f.source_episode in own else None,
                      "said_by": "self" if f.source_episode in own or f.source_episode is None else "another person",
                      "valid": f.valid, "invalid_at": f.invalid_at, "superseded_by": f.superseded_by,
                      "visibility": f.visibility.level, "hidden_from": sorted(names.get(x, x) for x in f.visibility.hidden_from),
                      "visibility_text": f.visibility.describe(names)})
    return {"id": u.id, "name": u.name, "placeholder": u.placeholder, "created_at": u.created_at,
            "last_seen": u.last_seen, "items": items,
            "relations": [{"src": names.get(r.src, r.src), "dst": names.get(r.dst, r.dst), "relation": r.relation,
                           "episode": r.source_episode} for r in store.relations(u.id)],
            "episodes": [{"id": e.id, "start": e.start, "end": e.end, "summary": e.summary,
                          "visibility_text": e.visibility.describe(names)} for e in episodes],
            "level1": {"text": level1.text, "tokens": level1.token_count}}


def show(user: Annotated[str, typer.Argument(help="User id or exact name.")],
         db: DbOption = None, config: ConfigOption = None,
         history: Annotated[bool, typer.Option(help="Also list superseded/invalidated items.")] = True,
         as_json: JsonOption = False) -> None:
    """Show one user's profile: items with their episode and time (and history), relations, episodes and
    the Level-1 MemChunk the dialog model gets."""
    cfg = get_config(config)
    with open_store(db, config) as store:
        u = store.find_user(user)
        counter = make_token_counter(cfg.memchunk.tokenizer, cfg.memchunk.tokenizer_path)
        packed = render_user_profile(store, u.id, cfg.memchunk.l1_max_tokens, counter)
        p = profile_json(store, u.id, history, packed)
        if as_json:
            print(json.dumps(p, indent=1))
            return
        console.print(f"[bold]{escape(u.name or '(no name)')}[/]  id={u.id}  "
                      f"{'placeholder  ' if u.placeholder else ''}created={fmt_ts(u.created_at)}  "
                      f"last_seen={fmt_ts(u.last_seen)}")
        facts = Table(title="Memory items")
        for col in ("id", "kind", "text", "episode, when", "status"):
            facts.add_column(col, ratio=3 if col == "text" else None)
        for f in p["items"]:
            status = "valid" if f["valid"] else (f"superseded by {f['superseded_by']}" if f["superseded_by"]
                                                 else f"invalid since {fmt_ts(f['invalid_at'])}")
            episode = f["episode"] or "-"
            if f["said_by"] != "self":
                episode += " (said by another person)"
            # what people said is text, not markup: "[forgotten] is their colleague" must print as it is
            when = fmt_ts(f["episode_start"] or f["valid_from"])
            if f["visibility_text"] != "shared":   # who may be told it, when not the default
                status += f"; {f['visibility_text']}"
            facts.add_row(f["id"], f["kind"], escape(f["text"]), f"{episode}, {when}", escape(status))
        console.print(facts)
        rels = Table(title="Relations")
        rels.add_column("edge")
        for r in p["relations"]:
            rels.add_row(escape(f"{r['dst']} is {r['src']}'s {r['relation']}"))
        console.print(rels)
        eps = Table(title="Episodes")
        for col in ("id", "start", "end", "summary"):
            eps.add_column(col)
        for e in p["episodes"]:
            shown = "" if e["visibility_text"] == "shared" else f" ({e['visibility_text']})"
            eps.add_row(e["id"], fmt_ts(e["start"]), fmt_ts(e["end"]), escape((e["summary"] or "") + shown))
        console.print(eps)
        console.rule(f"Level-1 MemChunk ({packed.token_count} tokens, {counter.name})")
        console.print(packed.text, markup=False, highlight=False)


def recall(user: Annotated[str, typer.Argument(help="User id or exact name: who asks.")],
           keywords: Annotated[Optional[list[str]], typer.Argument(help="Keywords of the <retr> query.")] = None,
           relation: Annotated[Optional[list[str]], typer.Option("--relation", "-r",
                                                                 help="Relation words (repeatable).")] = None,
           db: DbOption = None, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """The Level-2 MemChunk that `<retr>` with these relation words and keywords gives this user."""
    from ..retrieval.factory import make_level2

    keywords = [k for k in keywords or [] if k.strip()]
    relation = [r for r in relation or [] if r.strip()]
    if not keywords and not relation:
        fail("give keywords, --relation words, or both")
    cfg = get_config(config)
    with open_store(db, config) as store:
        u = store.find_user(user)
        result = make_level2(store, cfg).retrieve(u.id, relation or [], keywords or [])
        if as_json:
            print(json.dumps({"user": u.id, "name": u.name, "relation": relation or [], "keywords": keywords or [],
                              "text": result.chunk.text, "tokens": result.chunk.token_count, "message": result.message,
                              "withheld": result.withheld,
                              "items": [{"person": d.doc.name, "user_id": d.doc.user_id, "item_id": d.doc.item_id,
                                         "relation": list(d.doc.relation_path), "text": d.doc.text,
                                         "score": d.score} for d in result.docs]}, indent=1))
            return
        console.rule(f"Level-2 MemChunk for {escape(u.display_name)}")
        # the counts on their own lines: a rule is cut at the terminal's width, and the withheld count matters
        console.print(f"{result.chunk.token_count} tokens; {result.message}", markup=False, highlight=False)
        if result.withheld:
            console.print(f"{result.withheld} item(s) they may not be told, withheld", highlight=False)
        console.print(result.chunk.text, markup=False, highlight=False)


def forget(user: Annotated[str, typer.Argument(help="User id or exact name.")],
           db: DbOption = None, config: ConfigOption = None,
           about: Annotated[Optional[str], typer.Option(
               "--about", help="Erase only what this person told the robot about this topic, not the person.")] = None,
           yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False) -> None:
    """Erase a user everywhere: biometric keys, facts, episodes, edges and audit text. With --about, only
    what they said about a topic: those items and their history, and those sentences of their sessions."""
    with open_store(db, config) as store:
        u = store.find_user(user)
        if about is not None:
            _forget_about(store, u, about, yes)
            return
        if not yes:
            if not is_interactive():
                fail("refusing to forget without confirmation on a non-interactive terminal; pass --yes")
            if not typer.confirm(f"Erase {u.display_name} ({u.id}) and all their memory?"):
                fail("aborted, nothing erased", code=1)
        from ..config import resolve_db
        from ..memory.spool import SessionSpool
        from ..memory.locations import spool_dir
        from ..memory.manager import forget_person

        cfg = get_config(config)
        gone = forget_person(store, SessionSpool(spool_dir(cfg, resolve_db(cfg, db))), u.id)
        console.print(f"forgot {u.display_name} ({u.id})"
                      + (f", and {gone.sessions} of their sessions waiting to be written" if gone.sessions else ""))
        for report in gone.reports:
            console.print(f"deleted the report {report}: it named them (egomem report writes it again)")


def _forget_about(store, u, about: str, yes: bool) -> None:
    from ..memory.privacy import topic_matcher

    try:
        matches = topic_matcher(about)
    except ValueError as err:
        fail(str(err))
    if not yes:
        if not is_interactive():
            fail("refusing to forget without confirmation on a non-interactive terminal; pass --yes")
        if not typer.confirm(f"Erase what {u.display_name} ({u.id}) said about {about!r}?"):
            fail("aborted, nothing erased", code=1)
    erased = store.forget_about(u.id, matches)
    if not erased.items and not erased.episodes:
        console.print(f"nothing {escape(u.display_name)} said is about {escape(about)!r} (an item is about it when it "
                      "has one of its words): nothing erased")
        return
    console.print(f"forgot what {escape(u.display_name)} said about {escape(about)!r}: {erased.items} item(s), "
                  f"sentences of {erased.episodes} session(s)")


def set_visibility(user: Annotated[str, typer.Argument(help="User id or exact name: whose item it is.")],
                   item: Annotated[str, typer.Argument(help="Item or episode id (egomem show lists them).")],
                   visibility: Annotated[str, typer.Argument(help="private, shared or public.")],
                   hide_from: Annotated[Optional[list[str]], typer.Option(
                       "--hide-from", help="A person (id or exact name) never to be told it (repeatable).")] = None,
                   db: DbOption = None, config: ConfigOption = None) -> None:
    """Say who may be told one item: private (only its owner), shared (people related to the owner) or
    public, optionally never certain people. The audit log keeps each change."""
    from ..store.visibility import LEVELS, Visibility

    if visibility not in LEVELS:
        fail(f"visibility must be one of {', '.join(LEVELS)}, not {visibility!r}")
    with open_store(db, config) as store:
        u = store.find_user(user)
        owned = {f.id for f in store.facts(u.id, include_invalid=True)} | {e.id for e in store.episodes(u.id)}
        if item not in owned:
            fail(f"{u.display_name} has no item or episode {item!r} (egomem show {u.id} lists them)")
        hidden = frozenset(store.find_user(h).id for h in hide_from or [])
        vis = Visibility(visibility, hidden)
        store.set_visibility(item, vis)
        console.print(f"{item}: {escape(vis.describe({x.id: x.display_name for x in store.list_users()}))}")


def keygen(out: Annotated[Path, typer.Argument(help="The key file to write (it must not exist).")]) -> None:
    """Write a new random key for sealing face and voice templates at rest (AES-256-GCM), readable by you
    alone. Point EGOMEM_KEY_FILE at it for the nodes and the CLI, then run `egomem rekey` once."""
    from ..store.sealing import write_key_file

    if not out.parent.is_dir():
        fail(f"directory {out.parent} does not exist")
    try:
        write_key_file(out)
    except FileExistsError:
        fail(f"{out} exists: a key file is never overwritten (its templates would be lost)")
    console.print(f"wrote a new key to {out} (mode 0600); keep a copy: templates sealed with it need it")


def rekey(new_key_file: Annotated[Optional[Path], typer.Option(
              "--new-key-file", help="Seal every template with this key (the current one comes from EGOMEM_KEY_FILE "
                                     "or EGOMEM_KEY).")] = None,
          clear: Annotated[bool, typer.Option("--clear", help="Store the templates in clear again.")] = False,
          db: DbOption = None, config: ConfigOption = None) -> None:
    """Seal the templates with a new key, or seal those stored in clear, in one transaction; then compact,
    so no old bytes stay in the files. Afterwards set EGOMEM_KEY_FILE to the new key."""
    from ..store.sealing import parse_key

    if clear == (new_key_file is not None):
        fail("give --new-key-file PATH or --clear")
    new = None
    if new_key_file is not None:
        if not new_key_file.is_file():
            fail(f"key file {new_key_file} does not exist (egomem keygen writes one)")
        new = parse_key(new_key_file.read_bytes(), str(new_key_file))
    with open_store(db, config) as store:
        count = store.reseal_templates(new)
        console.print(f"{count} templates {'sealed with ' + str(new_key_file) if new else 'stored in clear'} in {store.path}"
                      + ("; now set EGOMEM_KEY_FILE to it" if new else ""))


def compact(db: DbOption = None, config: ConfigOption = None) -> None:
    """Rewrite the database so nothing erased stays in its files (forget does it itself; run this when forget
    said another process was reading)."""
    with open_store(db, config) as store:
        if not store.compact():
            fail(f"another process is reading {store.path}: stop it (or wait) and run compact again", code=1)
        if str(store.path).startswith("postgres"):   # the server's pg_wal is its own (docs/fleet.md)
            console.print(f"compacted {store.path}: the tables are rewritten without what was erased; the server's "
                          "write-ahead log (pg_wal) and its backups keep old pages until the server recycles them")
        else:
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
    for fn in (users, show, recall, forget, compact, graph):
        app.command()(fn)
    app.command("set-visibility")(set_visibility)
    app.command()(keygen)
    app.command()(rekey)

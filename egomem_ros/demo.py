"""The out-of-the-box demo. At this stage it exercises the memory store and its views on a
temporary database: users, facts with history, relations with inverses, the Level-1 MemChunk and the
social graph. Recognition and extraction join it as they land."""
from __future__ import annotations

from pathlib import Path

from rich.console import Console

from .memchunk import ApproxTokenCounter, render_user_profile
from .store import SqliteStore
from .store.graph import export_graph, social_graph


def run_demo(workdir: Path, console: Console) -> None:
    db = workdir / "memory.db"
    console.rule("egomem demo: memory store")
    with SqliteStore(db) as store:
        emily = store.create_user("Emily")
        john = store.create_user("John")
        console.print(f"enrolled users: Emily ({emily.id}), John ({john.id})")
        job = store.add_fact(emily.id, "fact", "works as a nurse")
        store.add_fact(emily.id, "preference", "likes jazz")
        store.add_fact(john.id, "event", "played a tennis game two days ago")
        edges = store.add_relation(emily.id, john.id, "coworker")
        console.print("relations: " + "; ".join(f"{r.dst} is {r.src}'s {r.relation}" for r in edges))
        new_job = store.supersede_fact(job.id, "works as a head nurse")
        console.print(f"update: {job.id} superseded by {new_job.id} (history kept)")
        chunk = render_user_profile(store, emily.id, 512, ApproxTokenCounter())
        console.rule(f"Level-1 MemChunk for Emily ({chunk.token_count} tokens)")
        console.print(chunk.text, markup=False, highlight=False)
        out = export_graph(social_graph(store), workdir / "social_graph.json", "json")
        console.print(f"social graph written to {out}")

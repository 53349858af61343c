"""The social graph as a networkx view over the store, with breadth-limited neighbourhoods and export."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import networkx as nx

from .models import MemoryRepository


def social_graph(store: MemoryRepository) -> nx.MultiDiGraph:
    """Nodes are user ids (name, placeholder); an edge u->v with key=relation reads "v is u's relation"."""
    graph = nx.MultiDiGraph()
    for user in store.list_users():
        graph.add_node(user.id, name=user.name or "", placeholder=user.placeholder)
    for rel in store.relations():
        graph.add_edge(rel.src, rel.dst, key=rel.relation, relation=rel.relation, since=rel.since)
    return graph


def neighbourhood(graph: nx.MultiDiGraph, user_id: str, hops: int = 1) -> dict[str, list[list[str]]]:
    """Users within `hops` of `user_id` following edge direction, each with its shortest relation path.

    The path is a list of relation names from the user outwards: ["mother", "colleague"] reads
    "A's mother's colleague". The user themself is never included.
    """
    if user_id not in graph:
        return {}
    paths: dict[str, list[list[str]]] = {}
    frontier: list[tuple[str, list[str]]] = [(user_id, [])]
    seen = {user_id}
    for _ in range(hops):
        nxt: list[tuple[str, list[str]]] = []
        for node, path in frontier:
            for _, dst, rel in graph.out_edges(node, keys=True):
                if dst in seen and dst not in paths:
                    continue
                if dst == user_id:
                    continue
                if dst in paths and len(paths[dst][0]) < len(path) + 1:
                    continue
                paths.setdefault(dst, []).append(path + [rel])
                nxt.append((dst, path + [rel]))
        seen.update(d for d, _ in nxt)
        frontier = nxt
    return paths


def export_graph(graph: nx.MultiDiGraph, out: str | Path, fmt: Literal["json", "graphml"]) -> Path:
    out = Path(out)
    if fmt == "json":
        data = nx.node_link_data(graph, edges="links")
        out.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    elif fmt == "graphml":
        nx.write_graphml(graph, out)
    else:
        raise ValueError(f"unknown graph format {fmt!r} (json or graphml)")
    return out

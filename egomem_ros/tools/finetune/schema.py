"""The transcript file `egomem make-data transcripts` writes and `make-data streams` reads (JSON).

    {"backend": "templates", "note": "...",
     "profiles": [{"id": "p3", "name": "Anna", "facts": ["lives in Lyon"], "preferences": ["likes jazz"],
                   "history": ["talked about a trip to Rome"]}],
     "graphs":   [{"main": "p3", "edges": [{"dst": "p7", "relation": "mother"}]}],
     "dialogs":  [{"id": "d12", "level": 2, "user": "p3", "turns": [
                   {"user": "Does my mother like exercise?", "robot": "Yes, Carol goes swimming.",
                    "relation_query": ["mother"], "keyword_query": ["exercise"],
                    "answer_span": [9, 27]}]}]}

An edge reads "dst is main's relation". `answer_span` marks the characters of the robot's answer that
only the MemChunk can supply (the fact); evaluation checks those. Either query list may be empty.
"""
from __future__ import annotations

import logging
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Profile(_Strict):
    id: str
    name: str
    facts: list[str] = Field(default_factory=list)
    preferences: list[str] = Field(default_factory=list)
    history: list[str] = Field(default_factory=list)


class Edge(_Strict):
    dst: str
    relation: str


class Graph(_Strict):
    main: str
    edges: list[Edge] = Field(default_factory=list)


class Turn(_Strict):
    user: str = ""
    robot: str = ""
    relation_query: list[str] = Field(default_factory=list)
    keyword_query: list[str] = Field(default_factory=list)
    answer_span: tuple[int, int] | None = None

    @property
    def has_query(self) -> bool:
        return bool(self.relation_query or self.keyword_query)

    @property
    def complete(self) -> bool:
        return bool(self.user.strip() and self.robot.strip())


class Dialog(_Strict):
    id: str
    level: int = Field(ge=1, le=2)
    user: str
    turns: list[Turn]


class Transcripts(_Strict):
    backend: str = "templates"
    note: str = ""
    profiles: list[Profile] = Field(default_factory=list)
    graphs: list[Graph] = Field(default_factory=list)
    dialogs: list[Dialog] = Field(default_factory=list)

    def profile(self, user_id: str) -> Profile:
        for p in self.profiles:
            if p.id == user_id:
                return p
        raise KeyError(user_id)


def clean_transcripts(data: Transcripts) -> Transcripts:
    """Drop what a stream cannot be built from, with a log line each: turns missing the user's or the
    robot's words, dialogs left without turns, dialogs of unknown users, graph edges to unknown users,
    answer spans outside the robot's text."""
    known = {p.id for p in data.profiles}
    dialogs: list[Dialog] = []
    for d in data.dialogs:
        if d.user not in known:
            log.warning("dialog %s: unknown user %r, skipped", d.id, d.user)
            continue
        turns = []
        for i, t in enumerate(d.turns):
            if not t.complete:
                log.warning("dialog %s turn %d: missing %s words, turn dropped", d.id, i,
                            "the user's" if not t.user.strip() else "the robot's")
                continue
            if t.answer_span and not (0 <= t.answer_span[0] < t.answer_span[1] <= len(t.robot)):
                log.warning("dialog %s turn %d: answer_span %s outside the robot's text, cleared", d.id, i,
                            t.answer_span)
                t = t.model_copy(update={"answer_span": None})
            turns.append(t)
        if not turns:
            log.warning("dialog %s has no complete turn, skipped", d.id)
            continue
        dialogs.append(d.model_copy(update={"turns": turns}))
    graphs = []
    for g in data.graphs:
        edges = [e for e in g.edges if e.dst in known and e.dst != g.main]
        if len(edges) < len(g.edges):
            log.warning("graph of %s: %d edge(s) to unknown users dropped", g.main, len(g.edges) - len(edges))
        if g.main in known:
            graphs.append(Graph(main=g.main, edges=edges))
    return data.model_copy(update={"dialogs": dialogs, "graphs": graphs})


def load_transcripts(path: str | Path) -> Transcripts:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"transcript file not found: {path}")
    try:
        data = Transcripts.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as err:
        raise ValueError(f"{path} is not a valid transcript file: {err}") from None
    return clean_transcripts(data)


def save_transcripts(data: Transcripts, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(data.model_dump_json(indent=1), encoding="utf-8")
    tmp.replace(path)
    return path

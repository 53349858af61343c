"""What a replay report shows, read from what a robot leaves behind: a bag with egomem's output topics
(`egomem replay`'s output bag, or `ros2 bag record` of the nodes) and the memory database.

Topics are found by message type, not by name, so a recording of nodes in any namespace works.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..store.models import is_postgres_url

IDENTITY, MEMCHUNK, EVENT = "egomem_msgs/msg/Identity", "egomem_msgs/msg/MemChunk", "egomem_msgs/msg/MemoryEvent"
STATUS = {0: "nobody", 1: "known", 2: "unknown"}
OPS = {0: "ADD", 1: "UPDATE", 2: "INVALIDATE", 3: "DELETE"}


@dataclass(frozen=True)
class Poll:
    t: float
    status: str          # known | unknown | nobody
    user_id: str         # user id, a stranger's temporary id, or ""
    name: str
    confidence: float


@dataclass(frozen=True)
class Chunk:
    t: float
    level: int
    user_id: str
    text: str


@dataclass(frozen=True)
class Write:
    t: float
    op: str
    user_id: str
    kind: str
    text: str
    episode_id: str


@dataclass(frozen=True)
class SessionSpan:
    id: str
    user_id: str
    name: str
    start: float
    end: float
    transcript: str
    summary: str


@dataclass
class ReportData:
    polls: list[Poll] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    sessions: list[SessionSpan] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)        # user id -> display name (the db's, else the polls')
    relations: list[tuple[str, str, str]] = field(default_factory=list)  # (src, relation, dst): dst is src's relation
    placeholders: set[str] = field(default_factory=set)
    input_messages: int = 0
    bag: str = ""
    db: str = ""

    @property
    def counts(self) -> dict[str, object]:
        """The counts `egomem replay` prints, from the recording."""
        sessions = {w.episode_id for w in self.writes if w.kind == "summary"}
        return {"messages read": self.input_messages, "polls": len(self.polls),
                "identity switches": sum(c.level == 1 for c in self.chunks),
                "poll outcomes": dict(Counter(p.status for p in self.polls)),
                "sessions written": len(sessions) or len(self.sessions),
                "new users": sum(w.op == "ADD" and w.kind == "user" and w.user_id not in self.placeholders
                                 and not w.text.endswith("(placeholder)") for w in self.writes),
                "memory events": len(self.writes), "<retr> queries": sum(c.level == 2 for c in self.chunks)}

    def name(self, user_id: str) -> str:
        if not user_id:
            return "nobody"
        if user_id.startswith("tmp-"):
            return f"stranger {user_id}"
        return self.names.get(user_id) or user_id


def _stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def read_bag(bag: Path, data: ReportData) -> None:
    from rosbags.highlevel import AnyReader

    from ..ros.graph import OUTPUT_TOPICS
    from ..ros_types import typestore

    with AnyReader([Path(bag)], default_typestore=typestore()) as reader:
        ours = {IDENTITY, MEMCHUNK, EVENT}
        outputs = {topic for topic, _ in OUTPUT_TOPICS.values()}
        data.input_messages = sum(c.msgcount for c in reader.connections
                                  if c.msgtype not in ours and c.topic not in outputs)
        conns = [c for c in reader.connections if c.msgtype in ours]
        for conn, _, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            if conn.msgtype == IDENTITY:
                p = Poll(_stamp(msg), STATUS.get(int(msg.status), str(msg.status)), msg.user_id, msg.name,
                         float(msg.confidence))
                data.polls.append(p)
                if p.name and p.user_id:
                    data.names.setdefault(p.user_id, p.name)
            elif conn.msgtype == MEMCHUNK:
                data.chunks.append(Chunk(_stamp(msg), int(msg.level), msg.user_id, msg.text))
            else:
                data.writes.append(Write(_stamp(msg), OPS.get(int(msg.op), str(msg.op)), msg.user_id, msg.item_kind,
                                         msg.text, msg.episode_id))
    for items in (data.polls, data.chunks, data.writes):
        items.sort(key=lambda x: x.t)


def read_store(db: str | Path, data: ReportData) -> None:
    from ..store import open_store

    with open_store(db) as store:
        users = store.list_users()
        data.names.update({u.id: u.display_name for u in users})
        data.placeholders = {u.id for u in users if u.placeholder}
        for u in users:
            for e in store.episodes(u.id):
                data.sessions.append(SessionSpan(e.id, u.id, u.display_name, e.start, e.end, e.transcript, e.summary))
        data.relations = [(r.src, r.relation, r.dst) for r in store.relations()]
    data.sessions.sort(key=lambda s: s.start)


def load_report_data(bag: Path, db: str | Path) -> ReportData:
    """Raises FileNotFoundError for a missing bag or database file (`db` may be a postgresql:// URL)."""
    bag = Path(bag)
    if not is_postgres_url(db):
        db = Path(db)
    for path, what in ((bag, "bag"), (db, "memory database")):
        if isinstance(path, Path) and not path.exists():
            raise FileNotFoundError(f"{what} not found: {path}")
    data = ReportData(bag=str(bag), db=str(db))
    read_bag(bag, data)
    read_store(db, data)
    return data

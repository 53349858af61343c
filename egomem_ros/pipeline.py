"""egomem's core, built once and driven by every transport: the ROS nodes, `egomem replay` and the demo.

Two halves, whose contract is the Identity message between them:
- `IdentityCore` (the retrieval process): buffers camera and microphone, and every poll says who is there.
- `MemoryCore` (memory management): buffers what is heard and said, reads each poll's Identity message,
  writes sessions when they end, and answers `<retr>` queries.
Each step returns what is to be published or written, as `(output key, message fields)` pairs keyed like
`ros.graph.OUTPUT_TOPICS`; the transport only moves them. `Pipeline` holds both halves in one process
(replay, the demo); the identity and memory nodes each hold one half. ROS-free.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from . import msg_fields as F
from .config import EgomemConfig
from .memchunk import MemChunk
from .memory.buffer import IdentityObservation, TranscriptSegment
from .memory.consolidate import MemoryEventRecord
from .memory.manager import ConsolidationReport, Forgotten, SessionOutcome, build_memory_manager, forget_person
from .msg_conversions import stamp_to_sec
from .retrieval.enrollment import EnrollReport, enroll_person
from .retrieval.factory import make_level2, make_poller
from .retrieval.level2 import Level2Result
from .retrieval.retr_protocol import spoken_text
from .retrieval.poller import IdentityEvent
from .store import open_store
from .store.models import MemoryRepository

Message = tuple[str, dict[str, Any]]   # (OUTPUT_TOPICS key, message fields)
STATUS_OF = {v: k for k, v in F.IDENTITY_STATUS.items()}


@dataclass
class PollStep:
    """One identity poll: the event, the new Level-1 MemChunk on a switch of the current user, and the
    messages to publish (identity, candidate matches, markers, the Level-1 chunk; the debug image if asked)."""
    event: IdentityEvent
    chunk: MemChunk | None
    messages: list[Message] = field(default_factory=list)

    @property
    def identity(self) -> dict[str, Any]:
        return next(fields for key, fields in self.messages if key == "identity")


@dataclass
class ConsolidationStep:
    """One consolidation: the manager's report, and a MemoryEvent for every write."""
    report: ConsolidationReport
    messages: list[Message] = field(default_factory=list)

    @property
    def written(self) -> list[SessionOutcome]:
        return [o for o in self.report.outcomes if o.status == "written"]


class IdentityCore:
    """The identity half. `polls=False` builds it for keys and galleries only (the memory node): the face
    model then stays in this process, since no poll needs a worker."""

    def __init__(self, store: MemoryRepository, cfg: EgomemConfig, *, polls: bool = True) -> None:
        self.poller = make_poller(store, cfg, face_worker_process=None if polls else False)
        self.last_frame: np.ndarray | None = None
        self.current_user = ""   # the known person of the last poll: who a `<retr>` is answered for

    def add_frame(self, t: float, rgb: np.ndarray) -> None:
        self.poller.add_frame(t, rgb)
        self.last_frame = rgb

    def add_audio(self, t: float, pcm: np.ndarray, rate: int) -> None:
        self.poller.add_audio(t, pcm, rate)

    def poll(self, t: float, *, debug_image: bool = True, frame_id: str = "camera") -> PollStep:
        res = self.poller.poll(t)
        ev = res.event
        out: list[Message] = [("identity", F.identity_fields(ev, frame_id))]
        out += [("matches", m) for m in F.candidate_matches(ev, self.current_user)]
        out.append(("markers", {"markers": [F.name_marker(ev, "base_link")]}))
        if debug_image and self.last_frame is not None:
            out.append(("debug", F.image_fields(F.draw_debug(self.last_frame, ev), t, frame_id)))
        if res.chunk is not None:
            out.append(("l1", F.memchunk_fields(res.chunk, t)))
        self.current_user = ev.user_id if ev.status == "known" else ""
        return PollStep(ev, res.chunk, out)

    def reload(self) -> None:
        """Re-read the keys and users: someone was enrolled or merged (here or by another process)."""
        self.poller.reload()

    def forget(self, user_id: str) -> None:
        """Drop an erased person's keys from the galleries and from the current user."""
        self.poller.forget(user_id)
        if self.current_user == user_id:
            self.current_user = ""

    def enrolled_users(self) -> int:
        return len(self.poller.face_gallery.users() | self.poller.voice_gallery.users())

    def close(self) -> None:
        self.poller.close()


def observation_of_identity(msg: Any) -> IdentityObservation:
    """What memory management keeps of an Identity message (a ROS message, or its fields as a mapping):
    the one input it has from the identity half, on every transport."""
    m = _attributes(msg) if isinstance(msg, Mapping) else msg
    status = STATUS_OF.get(int(m.status), "unknown")
    face = np.asarray(m.face_embedding, np.float32) if len(m.face_embedding) else None
    voice = np.asarray(m.voice_embedding, np.float32) if len(m.voice_embedding) else None
    return IdentityObservation(stamp_to_sec(m.header.stamp), m.user_id if status == "known" else "", face, voice,
                               track=m.user_id if status != "nobody" else "", face_seen=bool(m.face_present),
                               voiced=bool(m.voice_present))


def _attributes(fields: Mapping) -> SimpleNamespace:
    return SimpleNamespace(**{k: _attributes(v) if isinstance(v, Mapping) else v for k, v in fields.items()})


class MemoryCore:
    """The memory half: buffers, consolidation, Level-2 and the memory services (enrol, forget, merge), over
    the identity half's keys (`keys`). Safe to call from several threads: writes of sessions and erasures
    never run at once."""

    def __init__(self, store: MemoryRepository, cfg: EgomemConfig, keys: IdentityCore, db_path: str | Path) -> None:
        self.store, self.keys = store, keys
        self.manager = build_memory_manager(store, cfg, poller=keys.poller, db_path=db_path)
        self.level2 = make_level2(store, cfg)
        self._writing = threading.Lock()   # a consolidation and a forget never interleave

    @property
    def buffer(self):
        return self.manager.buffer

    def apply_live(self, cfg: EgomemConfig) -> None:
        """Take the session timing of `cfg` (the parameters a running node may change)."""
        self.manager.max_gap_s = cfg.memory.max_gap_s
        self.manager.session_end_s = cfg.memory.session_end_s

    def add_listen(self, t: float, pcm: np.ndarray, rate: int) -> None:
        self.manager.buffer.add_listen(t, pcm, rate)

    def add_speak(self, t: float, pcm: np.ndarray, rate: int) -> None:
        """The robot's own voice: the speak channel of the segmenter."""
        self.manager.buffer.add_speak(t, pcm, rate)

    def add_transcript(self, t: float, text: str, speaker: str = "user") -> None:
        """A turn as the ASR node publishes it, stamped when it ended: its header stamp where it has one,
        else when it arrived."""
        if text.strip():
            self.manager.buffer.add_transcript(TranscriptSegment(t, t, text, speaker=speaker))  # stamped at its end

    def add_robot_text(self, t: float, text: str) -> None:
        """What the dialog model said (its text monologue): a robot turn, without its `<retr>` queries."""
        self.add_transcript(t, spoken_text(text), speaker="robot")

    def read_identity(self, msg: Any) -> bool:
        """Buffer one poll's Identity message; True when it ends a session: consolidate now."""
        return self.manager.add_poll(observation_of_identity(msg))

    def consolidate(self, t: float, *, final: bool = False) -> ConsolidationStep:
        """Write the sessions that ended by `t`; `final` writes everything buffered (end of a bag, shutdown)."""
        with self._writing:
            report = self.manager.flush(t) if final else self.manager.consolidate(t)
        return ConsolidationStep(report, [("events", F.memory_event_fields(rec, t))
                                          for o in report.outcomes for rec in o.events])

    def retrieve(self, t: float, user_id: str, relation_query: Sequence[str], keyword_query: Sequence[str],
                 k: int | None = None) -> tuple[Level2Result, list[Message]]:
        """The Level-2 answer to a `<retr>` of `user_id` ("" for someone not recognised). Raises KeyError
        for an id the memory does not hold."""
        if user_id:
            self.store.get_user(user_id)
        res = self.level2.retrieve(user_id, list(relation_query), list(keyword_query), k)
        return res, [("l2", F.memchunk_fields(res.chunk, t))]

    def enroll(self, t: float, name: str | None, faces: Sequence[np.ndarray],
               voices: Sequence[tuple[np.ndarray, int]]) -> tuple[EnrollReport, list[Message]]:
        """Enrol a person from face images and voice clips; the galleries take the new keys at once.
        Raises EnrollmentError, MediaError or StoreError."""
        poller = self.keys.poller
        rep = enroll_person(self.store, name or None, faces=faces, voices=voices,
                            face_engine=poller.face, voice_engine=poller.voice)
        self.keys.reload()
        return rep, [_event("ADD", rep.user.id, "user", rep.user.name or "", t)]

    def forget(self, t: float, user_id: str) -> tuple[Forgotten, list[Message]]:
        """Erase a person (store, spool, reports, galleries). Raises KeyError or StoreError."""
        with self._writing:   # no session of theirs is being written meanwhile
            gone = forget_person(self.store, self.manager.spool, user_id)
        self.keys.forget(user_id)
        return gone, [_event("DELETE", user_id, "user", "", t)]

    def merge(self, t: float, keep_id: str, merge_id: str) -> list[Message]:
        """Merge `merge_id` into `keep_id` (one person known twice). Raises KeyError or StoreError."""
        with self._writing:
            self.store.merge_users(keep_id, merge_id)
        self.keys.reload()
        return [_event("UPDATE", keep_id, "user", f"{merge_id} merged in", t, item_id=merge_id)]

    def waiting_sessions(self) -> int:
        """Sessions in the spool: an LLM or a store that failed; a later run writes them."""
        return len(list(self.manager.spool.folder.glob("*.json")))

    def close(self) -> None:
        self.manager.close()


def _event(op: str, user_id: str, kind: str, text: str, t: float, item_id: str = "") -> Message:
    """A MemoryEvent of a service's write (no episode: nothing was heard)."""
    return "events", F.memory_event_fields(MemoryEventRecord(op, user_id, kind, item_id or user_id, text, ""), t)


class Pipeline:
    """Both halves in one process, on one store whose writes are stamped by `clock` (bag time in replay)."""

    def __init__(self, cfg: EgomemConfig, db: str | Path, clock: Callable[[], float]) -> None:
        self.store = open_store(db, clock=clock)
        try:
            self.identity = IdentityCore(self.store, cfg)
            self.memory = MemoryCore(self.store, cfg, self.identity, db)
        except BaseException:
            self.close()
            raise

    def poll(self, t: float, *, debug_image: bool = True) -> tuple[PollStep, ConsolidationStep | None]:
        """One poll, and the consolidation of the session it ends, as the two nodes do on a robot."""
        step = self.identity.poll(t, debug_image=debug_image)
        ended = self.memory.read_identity(step.identity)
        return step, self.memory.consolidate(t) if ended else None

    def close(self) -> None:
        for part in ("memory", "identity", "store"):
            obj = getattr(self, part, None)
            if obj is not None:
                _quietly(obj.close)
            setattr(self, part, None)


def _quietly(close: Callable[[], None]) -> None:
    """Closing after a failure must not hide the failure (a malformed database fails to close, too)."""
    import logging

    try:
        close()
    except Exception as err:  # noqa: BLE001
        logging.getLogger(__name__).warning("while closing: %s", err)

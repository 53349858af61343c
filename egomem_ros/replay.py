"""`egomem replay BAG --out OUT_BAG`: the egomem pipeline over a ROS 2 bag, without ROS.

Reads any ROS 2 bag (mcap or sqlite3) with rosbags, runs identity (poll every `poll_period_s` of bag
time) → memory management (when a session ends, at the latest every `consolidation_period_s` of bag
time, and once at the end) → Level-2
retrieval for `<retr>` queries found on a dialog text topic (external dialog mode), and writes an mcap
bag with the input topics plus egomem's outputs, ready for Foxglove or rviz.
"""
from __future__ import annotations

import logging
import shutil
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import msg_fields as F
from .config import EgomemConfig
from .memory.buffer import TranscriptSegment, observation_of
from .msg_conversions import audio_info_of, audio_msg_to_pcm, compressed_to_rgb, image_to_rgb
from .retrieval.media import MediaError
from .ros.graph import OUTPUT_TOPICS
from .errors import EgomemError

log = logging.getLogger(__name__)

OUT = OUTPUT_TOPICS   # the nodes' own topic names and types
IMAGE_TYPES = {"sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"}
AUDIO_TYPES = {"audio_common_msgs/msg/AudioDataStamped", "audio_common_msgs/msg/AudioData", "egomem_msgs/msg/AudioFrame"}
TEXT_TYPES = {"hri_msgs/msg/LiveSpeech", "std_msgs/msg/String"}
SPEAK_TOPIC = "/egomem/dialog/audio_out"  # the dialog node's voice output


class ReplayError(EgomemError, RuntimeError):
    pass


@dataclass
class ReplaySummary:
    messages: int = 0
    polls: int = 0
    switches: int = 0
    identities: Counter = field(default_factory=Counter)
    sessions_written: int = 0
    sessions_waiting: int = 0       # spooled for a retry (an LLM that failed): written by a later run
    users_created: int = 0
    events: int = 0
    l2_queries: int = 0
    rejected: Counter = field(default_factory=Counter)
    skipped_topics: list[str] = field(default_factory=list)
    truncated: str = ""
    out: str = ""


@dataclass
class ReplayTopics:
    images: list[str]
    audio: list[str]
    audio_info: list[str]
    transcripts: list[str]
    dialog_text: list[str]
    speak: list[str] = field(default_factory=list)   # the robot's own voice: the speak channel


def pick_topics(connections, wanted: Sequence[str] | None, dialog_text_topic: str,
                speak_topic: str = SPEAK_TOPIC) -> ReplayTopics:
    by_topic = {c.topic: c.msgtype for c in connections}
    if wanted:
        missing = [t for t in wanted if t not in by_topic]
        if missing:
            raise ReplayError(f"topics not in the bag: {', '.join(missing)} (the bag has: {', '.join(sorted(by_topic))})")
        by_topic = {t: by_topic[t] for t in wanted}
    topics = ReplayTopics(
        images=[t for t, m in by_topic.items() if m in IMAGE_TYPES],
        audio=[t for t, m in by_topic.items() if m in AUDIO_TYPES and t != speak_topic],
        audio_info=[t for t, m in by_topic.items() if m == "audio_common_msgs/msg/AudioInfo"],
        transcripts=[t for t, m in by_topic.items() if m in TEXT_TYPES and t != dialog_text_topic],
        dialog_text=[t for t, m in by_topic.items() if m in TEXT_TYPES and t == dialog_text_topic],
        speak=[t for t, m in by_topic.items() if m in AUDIO_TYPES and t == speak_topic])
    if not topics.images and not topics.audio:
        raise ReplayError("the bag has no camera (sensor_msgs Image/CompressedImage) or audio "
                          "(audio_common_msgs / egomem_msgs AudioFrame) topic: nothing to identify")
    return topics


def replay(bag: Path, out: Path, cfg: EgomemConfig, *, db: str | Path | None = None, topics: Sequence[str] | None = None,
           dialog_text_topic: str = "/egomem/dialog/text", speak_topic: str = SPEAK_TOPIC, progress: Callable | None = None,
           on_event: Callable[[str, str], None] | None = None) -> ReplaySummary:
    from rosbags.rosbag2 import StoragePlugin, Writer

    from .memory.manager import build_memory_manager
    from .retrieval.factory import make_level2, make_poller
    from .retrieval.retr_protocol import RetrStreamParser
    from .ros_types import make, typestore
    from .store import StoreError, is_postgres_url, open_store

    bag, out = Path(bag), Path(out)
    if not bag.exists():
        raise ReplayError(f"bag not found: {bag}")
    if out.exists():
        raise ReplayError(f"output exists: {out} (remove it or choose another --out)")
    say = on_event or (lambda kind, text: None)
    ts = typestore()
    summary = ReplaySummary(out=str(out))
    db_path = db or out.with_suffix(".db")
    now = [0.0]  # bag time: what the store stamps its writes with
    created = not is_postgres_url(str(db_path)) and not Path(db_path).exists()
    try:
        with ExitStack() as stack:
            reader = _open_bag(bag, ts, out, summary, stack)  # before the store: an unreadable bag creates nothing
            stack.callback(reader.close)
            chosen = pick_topics(reader.connections, topics, dialog_text_topic, speak_topic)
            wanted = set(chosen.images + chosen.audio + chosen.audio_info + chosen.transcripts + chosen.dialog_text
                         + chosen.speak)
            conns = []
            for c in reader.connections:
                if c.topic not in wanted:
                    continue
                if c.msgtype not in ts.fielddefs and c.msgtype not in reader.typestore.fielddefs:
                    summary.skipped_topics.append(f"{c.topic} (unknown type {c.msgtype})")
                    continue
                conns.append(c)
            try:
                store = open_store(db_path, clock=lambda: now[0])
            except StoreError as err:
                raise ReplayError(str(err)) from None
            stack.callback(_quietly, store.close)
            poller = make_poller(store, cfg)
            stack.callback(_quietly, poller.close)
            manager = build_memory_manager(store, cfg, poller=poller, db_path=db_path)
            stack.callback(_quietly, manager.close)
            level2 = make_level2(store, cfg)
            parser = RetrStreamParser()
            audio_info: tuple[int, int, str] | None = None
            last_frame: np.ndarray | None = None
            last_person, current_user = "", ""
            next_poll: float | None = None
            next_consolidation = 0.0
            writer = Writer(out, version=8, storage_plugin=StoragePlugin.MCAP)
            writer.open()
            wconn = {c.topic: writer.add_connection(c.topic, c.msgtype, typestore=reader.typestore) for c in conns}
            oconn = {k: writer.add_connection(t, m, typestore=ts) for k, (t, m) in OUT.items()}

            def emit(key: str, fields: dict, t: float) -> None:
                topic, msgtype = OUT[key]
                writer.write(oconn[key], int(t * 1e9), ts.serialize_cdr(make(msgtype, fields), msgtype))

            total = sum(c.msgcount for c in conns)
            messages = _bag_messages(reader.messages(connections=conns))
            iterator = progress(messages, total) if progress else messages
            t = 0.0
            failure: Exception | None = None
            try:
                for conn, stamp_ns, raw in iterator:
                    summary.messages += 1
                    if stamp_ns < 0:  # a sqlite3 bag can hold them; no output bag can (mcap times are unsigned)
                        summary.rejected[f"{conn.topic}: negative timestamp"] += 1
                        continue
                    t = stamp_ns * 1e-9
                    # the nodes' timers, in bag time: each runs at its due time, before later messages arrive
                    if next_poll is None:
                        next_poll, next_consolidation = t + cfg.identity.poll_period_s, t + cfg.memory.consolidation_period_s
                    while min(next_poll, next_consolidation) <= t:
                        if next_poll <= next_consolidation:
                            now[0] = next_poll
                            last_person, current_user, ended = _poll(poller, next_poll, manager, summary, emit,
                                                                     last_frame, last_person, say)
                            if ended:  # write a session as soon as it ends
                                _consolidate(manager, next_poll, summary, emit, say)
                            next_poll += cfg.identity.poll_period_s
                        else:
                            now[0] = next_consolidation
                            _consolidate(manager, next_consolidation, summary, emit, say)
                            next_consolidation += cfg.memory.consolidation_period_s
                    now[0] = t
                    writer.write(wconn[conn.topic], stamp_ns, raw)
                    try:
                        msg = reader.deserialize(raw, conn.msgtype)
                    except Exception as err:  # noqa: BLE001
                        summary.rejected[f"{conn.topic}: undecodable"] += 1
                        log.warning("%s: cannot decode a message: %s", conn.topic, err)
                        continue
                    try:
                        if conn.topic in chosen.images:
                            rgb = compressed_to_rgb(msg) if conn.msgtype.endswith("CompressedImage") else image_to_rgb(msg)
                            poller.add_frame(t, rgb)
                            last_frame = rgb
                        elif conn.topic in chosen.audio_info:
                            audio_info = audio_info_of(msg)
                        elif conn.topic in chosen.audio:
                            pcm, rate = audio_msg_to_pcm(msg, audio_info)
                            poller.add_audio(t, pcm, rate)
                            manager.buffer.add_listen(t, pcm, rate)
                        elif conn.topic in chosen.speak:
                            manager.buffer.add_speak(t, *audio_msg_to_pcm(msg, audio_info))
                        elif conn.topic in chosen.transcripts:
                            text = msg.final if hasattr(msg, "final") else msg.data
                            if text.strip():
                                manager.buffer.add_transcript(TranscriptSegment(t, t, text))  # stamped at its end
                        elif conn.topic in chosen.dialog_text:
                            for q in parser.feed(msg.final if hasattr(msg, "final") else msg.data):
                                res = level2.retrieve(current_user, q.relation_query, q.keyword_query)
                                summary.l2_queries += 1
                                emit("l2", F.memchunk_fields(res.chunk, t), t)
                                say("l2", f"<retr> {list(q.relation_query)} / {list(q.keyword_query)} -> {res.message}\n"
                                          f"{res.chunk.text}")
                    except MediaError as err:
                        summary.rejected[f"{conn.topic}: {str(err).split(':')[0]}"] += 1
                        log.warning("%s: %s", conn.topic, err)
            except BagStopped as err:  # a truncated or corrupt bag: keep what was read
                summary.truncated = f"stopped after {summary.messages} messages: {err.__cause__ or err}"
                log.error("bag %s: %s", bag, summary.truncated)
            except (StoreError, sqlite3.Error, OSError) as err:  # the memory or the disk, not the bag
                failure = err
            if failure is None:
                try:
                    _consolidate(manager, t, summary, emit, say, final=True)
                    summary.sessions_waiting = len(list(manager.spool.folder.glob("*.json")))
                except (StoreError, sqlite3.Error, OSError) as err:
                    failure = err
            try:
                writer.close()     # the output so far is a complete bag, whatever stopped the replay
            except OSError as err:
                failure = failure or err
            if failure is not None:
                raise ReplayError(f"replay stopped after {summary.messages} messages at t={t:.1f} s: the memory database "
                                  f"{db_path} or the disk failed: {failure}. The bag is fine; what was replayed until "
                                  f"then is in {out}") from None
    except BaseException:
        if created and not summary.polls:  # failed before anything was remembered: leave no empty memory
            _remove_memory(db_path)
        raise
    return summary


class BagStopped(RuntimeError):
    """The bag could not be read on (a truncated file, a corrupt chunk); the cause is chained."""


def _bag_messages(messages: Iterator) -> Iterator:
    """The reader's messages, with its failures told apart from the pipeline's own."""
    try:
        yield from messages
    except Exception as err:  # noqa: BLE001 - rosbags raises several types for corrupt bags
        raise BagStopped(str(err)) from err


def _open_bag(bag: Path, ts, out: Path, summary: ReplaySummary, stack: ExitStack):
    """An AnyReader on the bag; a truncated mcap is replayed from a recovered copy (said in `summary`)."""
    from rosbags.highlevel import AnyReader

    from .bag_recover import mcap_file, recover_mcap

    try:
        reader = AnyReader([bag], default_typestore=ts)
        reader.open()
        return reader
    except Exception as err:  # noqa: BLE001 - rosbags raises several types for unreadable bags
        error = err
    cut = "magic" in str(error).lower() or "truncat" in str(error).lower()
    src = mcap_file(bag) if cut else None
    if src is not None:
        copy = out.parent / f".{out.name}.recovered"
        shutil.rmtree(copy, ignore_errors=True)
        stack.callback(shutil.rmtree, copy, True)
        count = recover_mcap(src, copy)
        if count:
            summary.truncated = (f"the bag is cut short (a recorder killed before closing it): the {count} messages "
                                 "of its complete chunks were replayed, the rest is lost")
            log.warning("bag %s: %s", bag, summary.truncated)
            reader = AnyReader([copy], default_typestore=ts)
            reader.open()
            return reader
    hint = (" — the file looks truncated (a recorder killed before closing the bag) and no complete chunk of it "
            "could be recovered") if cut else ""
    raise ReplayError(f"cannot open bag {bag}: {error}{hint}") from None


def _remove_memory(db_path: Path) -> None:
    for p in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        p.unlink(missing_ok=True)
    try:
        Path(f"{db_path}.sessions").rmdir()  # only when empty: a waiting session is never deleted here
    except OSError:
        pass


def _quietly(close: Callable[[], None]) -> None:
    """Closing after a failure must not hide the failure (a malformed database fails to close, too)."""
    try:
        close()
    except Exception as err:  # noqa: BLE001
        log.warning("while closing: %s", err)


def _poll(poller, t, manager, summary, emit, frame, last_person, say):
    res = poller.poll(t)
    ev = res.event
    summary.polls += 1
    summary.identities[ev.status] += 1
    emit("identity", F.identity_fields(ev, "camera"), t)
    for m in F.candidate_matches(ev, last_person):
        emit("matches", m, t)
    emit("markers", {"markers": [F.name_marker(ev, "base_link")]}, t)
    if frame is not None:
        emit("debug", F.image_fields(F.draw_debug(frame, ev), t, "camera"), t)
    ended = manager.add_poll(observation_of(ev))
    if res.chunk is not None:
        summary.switches += 1
        emit("l1", F.memchunk_fields(res.chunk, t), t)
        say("identity", f"t={t:.1f}s {ev.status} {ev.name or ev.user_id or ''} (confidence {ev.confidence:.2f})")
        if res.chunk.text:
            say("l1", res.chunk.text)
    person = ev.user_id if ev.status == "known" else ""
    return person, person, ended


def _consolidate(manager, t, summary, emit, say, final: bool = False) -> None:
    report = manager.flush(t) if final else manager.consolidate(t)
    for o in report.outcomes:
        if o.status == "written":
            summary.sessions_written += 1
            summary.users_created += int(o.new_user)
            for rec in o.events:
                summary.events += 1
                emit("events", F.memory_event_fields(rec, t), t)
            name = manager.store.get_user(o.user_id).display_name
            writes = "; ".join(f"{r.op} {r.item_kind}: {r.text}" for r in o.events if r.item_kind not in ("key", "summary"))
            say("memory", f"session {o.session_id} ({o.extraction.source} extractor): "
                          f"{'new user enrolled' if o.new_user else 'known user'} {name} ({o.user_id})"
                          + (f"; {writes}" if writes else "; nothing new to remember")
                          + f"\n  heard: \"{o.heard}\""
                          + (f"\n  summary: {o.extraction.summary}" if o.extraction.summary else ""))

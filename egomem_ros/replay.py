"""`egomem replay BAG --out OUT_BAG`: the egomem pipeline over a ROS 2 bag, without ROS.

Reads any ROS 2 bag (mcap or sqlite3) with rosbags, runs identity (poll every `poll_period_s` of bag
time) → memory management (when a session ends, at the latest every `consolidation_period_s` of bag
time, and once at the end) → Level-2
retrieval for `<retr>` queries found on a dialog text topic (external dialog mode), and writes an mcap
bag with the input topics plus egomem's outputs, ready for Foxglove or rviz.
"""
from __future__ import annotations

import logging
import math
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from .bag_recover import BagError, open_bag
from .config import EgomemConfig
from .msg_conversions import audio_info_of, audio_msg_to_pcm, compressed_to_rgb, image_to_rgb, stamp_to_sec
from .retrieval.media import MediaError
from .ros.graph import OUTPUT_TOPICS
from .errors import EgomemError

log = logging.getLogger(__name__)

OUT = OUTPUT_TOPICS   # the nodes' own topic names and types
IMAGE_TYPES = {"sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"}
AUDIO_TYPES = {"audio_common_msgs/msg/AudioDataStamped", "audio_common_msgs/msg/AudioData", "egomem_msgs/msg/AudioFrame"}
TEXT_TYPES = {"hri_msgs/msg/LiveSpeech", "std_msgs/msg/String"}
SPEAK_TOPIC = "/egomem/dialog/audio_out"  # the dialog node's voice output
STAMP_TRUST_S = 30.0   # a header stamp this far from the bag's clock is on another clock
JUMP_PERIODS = 5   # a gap of more poll periods than this is a jump of the clock, not a quiet moment


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
    sessions_set_aside: list[str] = field(default_factory=list)   # refused for what they hold: id and reason
    users_created: int = 0
    events: int = 0
    l2_queries: int = 0
    rejected: Counter = field(default_factory=Counter)
    skipped_topics: list[str] = field(default_factory=list)
    clock_jumps: list[str] = field(default_factory=list)   # gaps in bag time, run through without a poll storm
    stamp_notes: list[str] = field(default_factory=list)   # topics whose header stamps are on another clock
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
    from .pipeline import Pipeline
    from .ros_types import typestore
    from .store import StoreError, is_postgres_url
    from .store.models import shown_db, without_secrets

    bag, out = Path(bag), Path(out)
    if not bag.exists():
        raise ReplayError(f"bag not found: {bag}")
    if out.exists():
        raise ReplayError(f"output exists: {out} (remove it or choose another --out)")
    if db is None and out.with_suffix(".db").exists():   # the new memory of a replay: never an old one by chance
        raise ReplayError(f"memory exists: {out.with_suffix('.db')} (remove it, choose another --out, or replay into it "
                          f"on purpose with --db {out.with_suffix('.db')})")
    ts = typestore()
    summary = ReplaySummary(out=str(out))
    db_path = db or out.with_suffix(".db")
    now = [0.0]  # bag time: what the store stamps its writes with
    created = not is_postgres_url(str(db_path)) and not Path(db_path).exists()
    try:
        with ExitStack() as stack:
            try:   # before the store: an unreadable bag creates nothing
                reader, summary.truncated = open_bag(bag, ts, out.parent / f".{out.name}.recovered", stack)
            except BagError as err:
                raise ReplayError(str(err)) from None
            stack.callback(reader.close)
            chosen = pick_topics(reader.connections, topics, dialog_text_topic, speak_topic)
            conns = _replayable(reader, chosen, ts, summary)
            try:
                pipe = Pipeline(cfg, db_path, clock=lambda: now[0])
            except StoreError as err:
                raise ReplayError(str(err)) from None
            stack.callback(pipe.close)
            run = _Run(pipe, cfg, chosen, _OutputBag(out, reader, conns, ts), summary, on_event, now)
            messages = _bag_messages(reader.messages(connections=conns))
            total = sum(c.msgcount for c in conns)
            failure = run.play(progress(messages, total) if progress else messages, reader, bag)
            if failure is not None:
                why = without_secrets(str(failure), str(db_path))
                raise ReplayError(f"replay stopped after {summary.messages} messages at t={run.t:.1f} s: the memory "
                                  f"database {shown_db(db_path)} or the disk failed: {why}. The bag is fine; what was "
                                  f"replayed until then is in {out}") from None
    except BaseException:
        if created and not summary.polls:  # failed before anything was remembered: leave no empty memory
            _remove_memory(db_path)
        raise
    return summary


def header_time(msg) -> float:
    """A message's header stamp in seconds; 0.0 without a header or for an unstamped one."""
    header = getattr(msg, "header", None)
    return stamp_to_sec(header.stamp) if header is not None else 0.0


def _replayable(reader, chosen: ReplayTopics, ts, summary: ReplaySummary) -> list:
    """The connections of the chosen topics whose message types can be decoded."""
    wanted = set(chosen.images + chosen.audio + chosen.audio_info + chosen.transcripts + chosen.dialog_text + chosen.speak)
    conns = []
    for c in reader.connections:
        if c.topic not in wanted:
            continue
        if c.msgtype not in ts.fielddefs and c.msgtype not in reader.typestore.fielddefs:
            summary.skipped_topics.append(f"{c.topic} (unknown type {c.msgtype})")
            continue
        conns.append(c)
    return conns


class _OutputBag:
    """The mcap output: the replayed input topics as recorded, and egomem's outputs under the nodes' names."""

    def __init__(self, out: Path, reader, conns: list, ts) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.ts = ts
        self.writer = Writer(out, version=8, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.inputs = {c.topic: self.writer.add_connection(c.topic, c.msgtype, typestore=reader.typestore) for c in conns}
        self.outputs = {k: self.writer.add_connection(t, m, typestore=ts) for k, (t, m) in OUT.items()}

    def copy(self, topic: str, stamp_ns: int, raw: bytes) -> None:
        self.writer.write(self.inputs[topic], stamp_ns, raw)

    def emit(self, messages: list, t: float) -> None:
        from .ros_types import make

        for key, fields in messages:
            msgtype = OUT[key][1]
            self.writer.write(self.outputs[key], int(t * 1e9), self.ts.serialize_cdr(make(msgtype, fields), msgtype))

    def close(self) -> None:
        self.writer.close()


class _Run:
    """One replay: bag messages into the pipeline, with the nodes' timers run in bag time."""

    def __init__(self, pipe, cfg: EgomemConfig, chosen: ReplayTopics, output: _OutputBag, summary: ReplaySummary,
                 on_event: Callable[[str, str], None] | None, now: list[float]) -> None:
        from .retrieval.retr_protocol import RetrStreamParser

        self.pipe, self.cfg, self.chosen, self.output, self.summary, self.now = pipe, cfg, chosen, output, summary, now
        self.say = on_event or (lambda kind, text: None)
        self.parser = RetrStreamParser()
        self.audio_info: tuple[int, int, str] | None = None
        self.next_poll: float | None = None
        self.next_consolidation = 0.0
        self.t = 0.0
        self.untrusted: set[str] = set()   # topics whose header stamps are on another clock

    def play(self, messages: Iterator, reader, bag: Path) -> Exception | None:
        """Every message, then the final consolidation; returns the store's or the disk's failure, if any.
        The output is a complete bag whatever stopped the replay."""
        from .store import StoreError

        failure: Exception | None = None
        try:
            for conn, stamp_ns, raw in messages:
                self.summary.messages += 1
                if stamp_ns < 0:  # a sqlite3 bag can hold them; no output bag can (mcap times are unsigned)
                    self.summary.rejected[f"{conn.topic}: negative timestamp"] += 1
                    continue
                self.t = stamp_ns * 1e-9
                self._timers(self.t)
                self.now[0] = self.t
                self.output.copy(conn.topic, stamp_ns, raw)
                try:
                    msg = reader.deserialize(raw, conn.msgtype)
                except Exception as err:  # noqa: BLE001
                    self.summary.rejected[f"{conn.topic}: undecodable"] += 1
                    log.warning("%s: cannot decode a message: %s", conn.topic, err)
                    continue
                try:
                    self._message(conn.topic, conn.msgtype, msg)
                except MediaError as err:
                    self.summary.rejected[f"{conn.topic}: {str(err).split(':')[0]}"] += 1
                    log.warning("%s: %s", conn.topic, err)
        except BagStopped as err:  # a truncated or corrupt bag: keep what was read
            self.summary.truncated = f"stopped after {self.summary.messages} messages: {err.__cause__ or err}"
            log.error("bag %s: %s", bag, self.summary.truncated)
        except (StoreError, sqlite3.Error, OSError) as err:  # the memory or the disk, not the bag
            failure = err
        if failure is None:
            try:
                self._consolidate(self.t, final=True)
                self.summary.sessions_waiting = self.pipe.memory.waiting_sessions()
            except (StoreError, sqlite3.Error, OSError) as err:
                failure = err
        try:
            self.output.close()
        except OSError as err:
            failure = failure or err
        return failure

    def _timers(self, t: float) -> None:
        """The nodes' timers, in bag time: each runs at its due time, before later messages arrive. Over a
        jump of the clock (a gap in the recording, an NTP step) they run as a node's timers would: once
        when due and once just before the next message, not once per period of the gap (an hour is not
        1800 polls)."""
        cfg = self.cfg
        if self.next_poll is None:
            self.next_poll, self.next_consolidation = t + cfg.identity.poll_period_s, t + cfg.memory.consolidation_period_s
        gap_start = min(self.next_poll, self.next_consolidation)
        if t - gap_start > JUMP_PERIODS * cfg.identity.poll_period_s:
            self.summary.clock_jumps.append(f"{t - gap_start:.1f} s without messages at t={gap_start:.1f} s")
            log.warning("bag time jumps by %.1f s at t=%.1f s: the timers run once, not once per period",
                        t - gap_start, gap_start)
            if self.next_poll <= self.next_consolidation:
                self.now[0] = self.next_poll
                self._poll(self.next_poll)
            else:
                self.now[0] = self.next_consolidation
                self._consolidate(self.next_consolidation)
            self.next_poll = self._last_due(self.next_poll, cfg.identity.poll_period_s, t)
            self.next_consolidation = self._last_due(self.next_consolidation, cfg.memory.consolidation_period_s, t)
        while min(self.next_poll, self.next_consolidation) <= t:
            if self.next_poll <= self.next_consolidation:
                self.now[0] = self.next_poll
                self._poll(self.next_poll)
                self.next_poll += cfg.identity.poll_period_s
            else:
                self.now[0] = self.next_consolidation
                self._consolidate(self.next_consolidation)
                self.next_consolidation += cfg.memory.consolidation_period_s

    @staticmethod
    def _last_due(due: float, period: float, t: float) -> float:
        """The last due time of a timer at `due` + k * `period` that is not after `t` (`due` if none)."""
        return due + max(0, math.floor((t - due) / period)) * period

    def _message(self, topic: str, msgtype: str, msg) -> None:
        chosen, pipe, t = self.chosen, self.pipe, self.t
        # camera and microphone data are placed by their header stamps, as the nodes place them (a bag
        # recorded on a robot logs when a message arrived, which bunches the chunks a busy machine was late
        # with); the timers run on the bag's clock. Stamps from another clock (a device clock, sim time)
        # are no use against it: that topic is placed by the bag's clock, and the summary says so.
        stamp = header_time(msg) or t
        if abs(stamp - t) > STAMP_TRUST_S:
            if topic not in self.untrusted:
                self.untrusted.add(topic)
                self.summary.stamp_notes.append(f"{topic}: header stamps {stamp - t:+.0f} s off the bag's clock; "
                                                "placed by the bag's clock")
            stamp = t
        if topic in chosen.images:
            pipe.identity.add_frame(stamp, compressed_to_rgb(msg) if msgtype.endswith("CompressedImage") else image_to_rgb(msg))
        elif topic in chosen.audio_info:
            self.audio_info = audio_info_of(msg)
        elif topic in chosen.audio:
            pcm, rate = audio_msg_to_pcm(msg, self.audio_info)
            pipe.identity.add_audio(stamp, pcm, rate)
            pipe.memory.add_listen(stamp, pcm, rate)
        elif topic in chosen.speak:
            pipe.memory.add_speak(stamp, *audio_msg_to_pcm(msg, self.audio_info))
        elif topic in chosen.transcripts:   # LiveSpeech at its header stamp, a String when it arrived
            pipe.memory.add_transcript(stamp, msg.final if hasattr(msg, "final") else msg.data)
        elif topic in chosen.dialog_text:   # as the memory node (a robot turn) and the dialog node (its queries)
            text = msg.final if hasattr(msg, "final") else msg.data
            pipe.memory.add_robot_text(t, text)
            for q in self.parser.feed(text):
                res, messages = pipe.memory.retrieve(t, pipe.identity.current_user, q.relation_query, q.keyword_query)
                self.summary.l2_queries += 1
                self.output.emit(messages, t)
                withheld = f"; {res.withheld} item(s) this user may not be told, withheld" if res.withheld else ""
                self.say("l2", f"<retr> {list(q.relation_query)} / {list(q.keyword_query)} -> {res.message}{withheld}\n"
                               f"{res.chunk.text}")

    def _poll(self, t: float) -> None:
        step, consolidation = self.pipe.poll(t)
        ev = step.event
        self.summary.polls += 1
        self.summary.identities[ev.status] += 1
        self.output.emit(step.messages, t)
        if step.chunk is not None:
            self.summary.switches += 1
            self.say("identity", f"t={t:.1f}s {ev.status} {ev.name or ev.user_id or ''} (confidence {ev.confidence:.2f})")
            if step.chunk.text:
                self.say("l1", step.chunk.text)
        if consolidation is not None:  # a session is written as soon as it ends
            self._written(consolidation, t)

    def _consolidate(self, t: float, final: bool = False) -> None:
        self._written(self.pipe.memory.consolidate(t, final=final), t)

    def _written(self, step, t: float) -> None:
        self.output.emit(step.messages, t)
        self.summary.sessions_set_aside += [f"{o.session_id}: {o.reason}" for o in step.report.outcomes
                                            if o.status == "rejected"]
        for o in step.written:
            self.summary.sessions_written += 1
            self.summary.users_created += int(o.new_user)
            self.summary.events += len(o.events)
            name = self.pipe.store.get_user(o.user_id).display_name
            writes = "; ".join(f"{r.op} {r.item_kind}: {r.text}" for r in o.events if r.item_kind not in ("key", "summary"))
            self.say("memory", f"session {o.session_id} ({o.extraction.source} extractor): "
                               f"{'new user enrolled' if o.new_user else 'known user'} {name} ({o.user_id})"
                               + (f"; {writes}" if writes else "; nothing new to remember")
                               + f"\n  heard: \"{o.heard}\""
                               + (f"\n  summary: {o.extraction.summary}" if o.extraction.summary else ""))


class BagStopped(RuntimeError):
    """The bag could not be read on (a truncated file, a corrupt chunk); the cause is chained."""


def _bag_messages(messages: Iterator) -> Iterator:
    """The reader's messages, with its failures told apart from the pipeline's own."""
    try:
        yield from messages
    except Exception as err:  # noqa: BLE001 - rosbags raises several types for corrupt bags
        raise BagStopped(str(err)) from err


def _remove_memory(db_path: Path) -> None:
    for p in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        p.unlink(missing_ok=True)
    try:
        Path(f"{db_path}.sessions").rmdir()  # only when empty: a waiting session is never deleted here
    except OSError:
        pass

"""The memory-management process as one ROS-free object: buffer in, consolidated memory out.

Every `consolidation_period_s` (or on demand) `consolidate(now)` takes the buffered stream since the
last processed session, labels it with the episodic trigger, and for each finished session gathers its
transcript (external ASR first, else the configured ASR on the listen channel), the robot's text and
the identity observations' embeddings, spools it, and hands it to the `Consolidator`.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import EgomemConfig
from ..store.models import MemoryRepository, StoreError
from .asr import transcribe_user_turns
from .attribution import SR, SessionOwner, speech_embeddings
from .buffer import IdentityObservation, StreamBuffer, TranscriptSegment
from .consolidate import Consolidator, SessionInput, SessionOutcome
from .spool import SessionSpool
from .extraction import Turn
from .identity_keys import IdentityKeys
from .locations import erase_reports, spool_dir
from .sessions import STEP_S, sessions_from_labels
from .speaker_change import TimedTurn, split_by_voice
from .trigger import Segmenter

log = logging.getLogger(__name__)
# A session an LLM failed on waits and is tried again; after MAX_TRIES attempts spread over at least
# GIVE_UP_AFTER_S it is set aside (an endpoint down for an hour sets nothing aside).
MAX_TRIES, GIVE_UP_AFTER_S = 5, 86_400.0
POLL_SLACK_S = 0.5


@dataclass
class ConsolidationReport:
    window_s: float = 0.0
    sessions_found: int = 0
    outcomes: list[SessionOutcome] = field(default_factory=list)
    waiting: int = 0          # sessions that may still be going on
    retried: int = 0          # spooled sessions from earlier runs processed now


class MemoryManager:
    def __init__(self, store: MemoryRepository, buffer: StreamBuffer, segmenter: Segmenter, consolidator: Consolidator,
                 spool: SessionSpool, asr=None, *, max_gap_s: float = 2.0, transcript_latency_s: float = 3.0,
                 session_end_s: float = 5.0, voice_engine=None, turn_change_cosine: float | None = None,
                 known_voices: Callable[[np.ndarray], dict[str, float]] | None = None, known_voice_margin: float = 0.0):
        self.store, self.buffer, self.segmenter = store, buffer, segmenter
        self.consolidator, self.spool, self.asr = consolidator, spool, asr
        self.max_gap_s = max_gap_s
        # An ASR node publishes a transcript when the utterance ends, a little after the speech itself.
        self.transcript_latency_s = transcript_latency_s
        self.session_end_s = session_end_s
        self.voice_engine = voice_engine   # embeds each session's speech: whose voice it is
        # a user turn whose voice is this far from the turns before it starts another speaker's part
        self.turn_change_cosine = (getattr(getattr(voice_engine, "backend", None), "turn_change_cosine", 0.0)
                                   if turn_change_cosine is None else turn_change_cosine)
        # each turn's similarity to the known people's voices, and how much nearer one must be to cut there
        self.known_voices, self.known_voice_margin = known_voices, known_voice_margin
        self.processed_until: float | None = None
        self._ended_at = -float("inf")     # the last session end that was consolidated

    def close(self) -> None:
        """Stop the ASR's worker processes, if it has any (the store belongs to the caller)."""
        close = getattr(self.asr, "close", None)
        if close is not None:
            close()

    def retry_spooled(self) -> list[SessionOutcome]:
        outcomes = []
        for s in self.spool.pending():
            outcomes += self._write(s)
        return outcomes

    def _write(self, s: SessionInput) -> list[SessionOutcome]:
        """Write one spooled session. One that the store refuses for what it holds (a 150-character name,
        an LLM answer that supersedes a fact twice or nests 200,000 levels deep) is moved aside with the
        reason, never retried in front of every later session; a store that fails itself stops the run."""
        try:
            parts = self.consolidator.process_all(s)
        except (StoreError, ValueError, TypeError, RecursionError) as err:
            if not self._store_works():
                raise
            reason = f"{type(err).__name__}: {str(err)[:300]}"
            log.error("session %s cannot be written (%s): moved aside in %s", s.session_id, reason, self.spool.folder)
            self.spool.reject(s.session_id, reason)
            return [SessionOutcome(s.session_id, "rejected", reason=reason)]
        if all(o.status != "retry" for o in parts):
            self.spool.done(s.session_id)
        elif _given_up(*self.spool.tried(s.session_id)):   # an LLM that fails on this session every time
            reason = (f"the LLM failed on it {MAX_TRIES} times over a day or more: "
                      + "; ".join(o.reason for o in parts if o.status == "retry"))
            log.error("session %s set aside: %s", s.session_id, reason)
            self.spool.reject(s.session_id, reason[:500])
            return [o if o.status != "retry" else SessionOutcome(o.session_id, "rejected", reason=reason) for o in parts]
        return parts

    def _store_works(self) -> bool:
        try:
            self.store.list_users(include_placeholders=False)
            return True
        except Exception:  # noqa: BLE001 - any failure of the store means it is the store, not the session
            return False

    def add_poll(self, obs: IdentityObservation) -> bool:
        """Buffer one identity poll; True when it ends a session (consolidate now, as every driver does)."""
        self.buffer.add_identity(obs)
        return self.session_ended(obs.stamp)

    def session_ended(self, now: float) -> bool:
        """A session has ended since the last consolidation and its transcripts are in: the voice went
        quiet for `session_end_s`, or the person in view changed (left, or someone else came). Cheap: it
        reads the identity polls only, so a driver may ask after every poll."""
        start = max(self.processed_until or -float("inf"), self._ended_at)
        obs = [o for o in self.buffer.observations(start) if o.stamp > start]
        wait = self.max_gap_s + self.transcript_latency_s
        end = None
        voiced = [o.stamp for o in obs if o.voiced]
        if voiced and now - voiced[-1] >= max(self.session_end_s, wait):
            end = voiced[-1]
        for a, b in zip(obs, obs[1:]):  # a change of the person in view, with voice before it
            if a.track and a.track != b.track and now - b.stamp >= wait and any(v <= b.stamp for v in voiced):
                end = max(end or b.stamp, b.stamp)
        if end is None:
            return False
        self._ended_at = end
        return True

    def consolidate(self, now: float) -> ConsolidationReport:
        report = ConsolidationReport()
        retried = self.retry_spooled()
        report.outcomes += retried
        report.retried = len(retried)
        t0 = self.processed_until if self.processed_until is not None else self.buffer.start
        if t0 is not None:
            # the window holds buffered audio only: after a jump of the clock (an NTP step, a gap in a bag)
            # it neither starts before the audio nor runs on over hours of nothing
            t0 = max(t0, self.buffer.start or t0)
            now = min(now, max(t0, self.buffer.end or t0) + self.max_gap_s + self.transcript_latency_s + 1.0)
            t0 = self.buffer.on_grid(t0, STEP_S)   # on the stream's own grid: the same recording, the same samples
        if t0 is None or now - t0 < STEP_S:
            log.info("consolidation: less than one 80 ms step buffered; nothing to do")
            return report
        stream, segments, observations = self.buffer.window(t0, now)
        report.window_s = now - t0
        ids = [(o.stamp - t0, o.track) for o in observations if o.track]
        labels = self.segmenter.label(stream, ids)
        sessions = sessions_from_labels(labels)
        report.sessions_found = len(sessions)
        # wait for a session's late transcripts as well as for its possible continuation
        horizon = stream.n_steps - int(round((self.max_gap_s + self.transcript_latency_s) / STEP_S))
        done_until, waiting = t0, False
        for sess in sessions:
            if sess.end >= horizon:  # may still be going on: the next consolidation takes it whole
                report.waiting += 1
                waiting = True
                break
            start, end = t0 + sess.start * STEP_S, t0 + (sess.end + 1) * STEP_S
            after = [t0 + later.start * STEP_S for later in sessions if later.start > sess.end]
            # a transcript comes a little after its speech; one stamped after the next session began is its
            until = min([end + self.transcript_latency_s, *after[:1]])
            for s in self._session_inputs(stream, t0, start, end, [g for g in segments if start <= g.end < until],
                                          observations):
                self.spool.put(s)
                report.outcomes += self._write(s)
            done_until = end
        if not waiting:
            done_until = max(done_until, now - self.max_gap_s - self.transcript_latency_s)
        self.processed_until = done_until
        self.buffer.drop_before(done_until)
        return report

    def flush(self, now: float) -> ConsolidationReport:
        """Write everything buffered, the session still going on included: the stream ends at `now`
        (end of a bag, node shutdown, a signal). Nothing is left waiting."""
        return self.consolidate(now + self.max_gap_s + self.transcript_latency_s + 1.0)

    def _session_inputs(self, stream, t0: float, start: float, end: float, segments: list[TranscriptSegment],
                        observations: list[IdentityObservation]) -> list[SessionInput]:
        """The session [start, end) as spoolable inputs: one per speaker when two people took turns in it."""
        a, b = _sample(start - t0), _sample(end - t0)
        listen, speak = stream.listen[a:b], None if stream.speak is None else stream.speak[a:b]
        timed = self._timed_turns(start, end, segments, listen, speak)
        cosine = self.turn_change_cosine if self.voice_engine is not None else 0.0
        parts = split_by_voice(timed, lambda t_a, t_b: self._voice(stream, t0, t_a, t_b), cosine,
                               self.known_voices, self.known_voice_margin)
        if len(parts) > 1:
            log.info("session %.1f-%.1f s: the speaker changes; %d parts, one speaker each", start, end, len(parts))
        bounds = [start] + [p[0].start for p in parts[1:]] + [end]
        return [self._session_input(stream, t0, bounds[k], bounds[k + 1], [t.turn for t in part], observations)
                for k, part in enumerate(parts or [[]])]

    def _timed_turns(self, start: float, end: float, segments: list[TranscriptSegment], listen, speak) -> list[TimedTurn]:
        """The session's turns (`segments`: its transcripts) in time order, each with the span of audio it
        was said in."""
        timed, prev = [], start
        for g in segments:
            if g.speaker == "robot":   # the dialog model's text goes out as the robot speaks: the turn starts there
                at = max(start, g.end)
                timed.append(TimedTurn(at, at, Turn(speaker="robot", text=g.text)))
            else:   # a transcript is stamped when its utterance ends: it began after the one before
                timed.append(TimedTurn(max(prev, start), max(g.end, prev), Turn(speaker="user", text=g.text)))
            prev = max(prev, g.end)
        if not self.buffer.external_asr and self.asr is not None:
            # no ASR node publishes transcripts: what the microphone heard, turn by turn, in time order
            timed += [TimedTurn(start + t_a, start + t_b, Turn(speaker="user", text=text))
                      for t_a, t_b, text in transcribe_user_turns(self.asr, listen, speak)]
            timed.sort(key=lambda t: t.start)
        return timed

    def _voice(self, stream, t0: float, start: float, end: float) -> np.ndarray | None:
        """The user's voice between `start` and `end` (the robot's own speaking time cut out)."""
        a, b = _sample(start - t0), _sample(end - t0)
        whole, _ = speech_embeddings(self.voice_engine, stream.listen[a:b],
                                     None if stream.speak is None else stream.speak[a:b], parts=False)
        return whole

    def _session_input(self, stream, t0: float, start: float, end: float, turns: list[Turn],
                       observations: list[IdentityObservation]) -> SessionInput:
        a, b = _sample(start - t0), _sample(end - t0)
        listen, speak = stream.listen[a:b], None if stream.speak is None else stream.speak[a:b]
        # a poll looks at the newest camera frame: the polls stamped inside the session saw who was there
        obs = [o for o in observations if start <= o.stamp <= end + POLL_SLACK_S]
        speech_voice, voice_parts = speech_embeddings(self.voice_engine, listen, speak)
        return SessionInput(
            session_id=session_id(start, end, turns), start=start, end=end, turns=turns,
            face_embeddings=[o.face for o in obs if o.face is not None],
            voice_embeddings=voice_parts or [o.voice for o in obs if o.voice is not None],
            observed_users=[o.user_id for o in obs if o.user_id], speech_voice=speech_voice,
            # no poll at all (no identity process): nobody can say no one was there
            face_seen=any(o.face_seen or o.face is not None for o in obs) or not observations)


def _given_up(tries: int, since_first_s: float) -> bool:
    return tries >= MAX_TRIES and since_first_s >= GIVE_UP_AFTER_S


def _sample(offset_s: float) -> int:
    """The sample at `offset_s` (rounded: 0.08 * 16000 must be sample 1280, not 1279)."""
    return int(round(offset_s * SR))


@dataclass
class Forgotten:
    sessions: int = 0                                  # waiting sessions of theirs deleted from the spool
    reports: list[Path] = field(default_factory=list)  # reports of this memory that named them, deleted


def forget_person(store: MemoryRepository, spool: SessionSpool, user_id: str) -> Forgotten:
    """Erase a person from the store, from the sessions waiting in the spool (which would enrol them
    again) and from the reports written of this memory (deleted: `egomem report` writes them again).
    Raises StoreError when bytes remain."""
    keys = [k.vector for modality in ("face", "voice") for k in store.user_keys(user_id, modality)]
    name = store.get_user(user_id).name
    erased = spool.erase(user_id, keys, name)
    store.forget_user(user_id)
    return Forgotten(erased, erase_reports(store.path, user_id, name))


def build_memory_manager(store: MemoryRepository, cfg: EgomemConfig, *, poller: IdentityKeys | None = None,
                         db_path: str | Path | None = None, segmenter=None, asr=None) -> MemoryManager:
    """Wire the configured extractor, update agent, segmenter and ASR around `store`."""
    from .asr import make_asr
    from .disclosure import offline_extractor
    from .extraction import LLMExtractor
    from .update_agent import LLMUpdateAgent, RuleUpdateAgent

    m = cfg.memory
    client = None
    if "llm" in (m.extractor, m.update_agent):
        from .llm import client_from_section

        client = client_from_section(m.llm)
    extractor = LLMExtractor(client) if m.extractor == "llm" else offline_extractor(m.max_items_per_100_sentences)
    agent = LLMUpdateAgent(client) if m.update_agent == "llm" else RuleUpdateAgent()
    if segmenter is None:
        if m.segmenter == "tagger":
            from .tagger import TaggerSegmenter

            from .trigger import BaselineSegmenter, FallbackSegmenter

            tagger = TaggerSegmenter.load(m.trigger_checkpoint or None,
                                          voice_split_contrast=m.trigger_voice_split_contrast
                                          if m.trigger_voice_split_contrast >= 0 else None)
            fallback = (BaselineSegmenter(voice_engine=poller.voice if poller else None)
                        if m.segmenter_fallback == "baseline" else None)
            segmenter = FallbackSegmenter(tagger, fallback)
        else:
            from .trigger import BaselineSegmenter

            segmenter = BaselineSegmenter(voice_engine=poller.voice if poller else None)
    face_model = poller.face.model if poller is not None and poller.face is not None else ""
    voice_model = poller.voice.model if poller is not None and poller.voice is not None else ""
    owner = SessionOwner(poller)
    consolidator = Consolidator(
        store, extractor, agent, owner, face_model=face_model, voice_model=voice_model,
        learn_new_users=cfg.identity.learn_new_users,
        on_keys_added=poller.add_key_to_gallery if poller else None,
        new_person_faces=owner.foreign_faces, new_person_voices=owner.foreign_voices,
        voice_confirms=owner.voice_confirms,
        refresh=poller.sync if poller else None)
    return MemoryManager(store, StreamBuffer(m.buffer_s), segmenter, consolidator, SessionSpool(spool_dir(cfg, db_path)),
                         asr if asr is not None else make_asr(m.asr, m.asr_model, m.asr_workers),
                         max_gap_s=m.max_gap_s, session_end_s=m.session_end_s,
                         voice_engine=poller.voice if poller else None,
                         known_voices=owner.voice_similarities, known_voice_margin=m.known_voice_margin)


def session_id(start: float, end: float, turns: list[Turn]) -> str:
    """Start time and a digest of what was said: the same session cut again (a retry, the same bag replayed)
    gets the same id and is written once; another conversation at the same offset (a second bag, a
    restart) gets its own."""
    digest = hashlib.sha1(json.dumps([round(end, 2), [(t.speaker, t.text) for t in turns]]).encode()).hexdigest()
    return f"s{int(round(start * 1000))}-{digest[:8]}"

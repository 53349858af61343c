"""The memory process's bounded buffer of the live stream.

Holds the listen channel (mic), the speak channel (robot audio), the robot's text monologue, transcripts
from an external ASR node, and identity observations with their embeddings. Audio is kept as 16 kHz
int16, so each channel costs 32 kB per second: the default 15 minutes (`capacity_s` 900) take about
29 MB per channel, 58 MB in all, plus at most `capacity_s`/`poll_period` identity observations
(~2 kB each with a 256-d voice and a 128-d face embedding).
"""
from __future__ import annotations

import collections
import logging
import math
import threading
from dataclasses import dataclass

import numpy as np

from ..retrieval.media import MediaError, clean_audio
from .sessions import Stream

SR = 16_000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TranscriptSegment:
    start: float
    end: float
    text: str
    speaker: str = "user"  # user | robot


@dataclass(frozen=True)
class IdentityObservation:
    """One identity poll as memory management sees it (the Identity message, or the poll itself in replay)."""
    stamp: float
    user_id: str                      # known user id, or "" when unknown / nobody
    face: np.ndarray | None = None    # embeddings: only for an unknown person memory may enrol
    voice: np.ndarray | None = None
    track: str = ""                   # stable identity: user id, a stranger's temporary id, "" for nobody
    face_seen: bool = False
    voiced: bool = False


class AudioTimeline:
    """Where each chunk of one microphone stream goes. A driver stamps its chunks with a jittery wall clock,
    but the samples themselves are continuous: a chunk whose stamp is within `tolerance_s` of the previous
    chunk's end goes right after it, and one whose stamp says that whole chunks were lost goes as many
    chunk lengths later (their gap stays silence). So the stream keeps one sample grid from its first
    sample (`origin`), and the same recording gives the same samples at the same grid positions however
    it was stamped. Any other stamp (a clock jump, a new driver) re-anchors the stream there."""

    def __init__(self, tolerance_s: float = 0.05) -> None:
        self.tolerance_s = tolerance_s
        self.origin: float | None = None
        self._end: float | None = None   # where the next continuous chunk starts
        self.lost_s = 0.0                 # audio lost on the way (whole chunks), for the diagnostics
        self.reanchored = 0               # stamps that fit no chunk grid (clock jumps, a restarted driver)

    def place(self, stamp: float, samples: int, rate: int = SR) -> float:
        length = samples / rate
        at = stamp
        if self._end is not None:
            gap = stamp - self._end
            lost = max(0, round(gap / length)) if length > 0 else 0
            if abs(gap - lost * length) <= self.tolerance_s:
                at = self._end + lost * length
                self.lost_s += lost * length
                if lost:
                    log.debug("audio: %.2f s lost before t=%.2f (whole chunks)", lost * length, at)
            else:
                log.warning("audio: a chunk stamped %.3f s off the stream's grid at t=%.2f: re-anchored", gap, stamp)
                self.origin = None   # re-anchored: a new grid from here
                self.reanchored += 1
        if self.origin is None:
            self.origin = at
        self._end = at + length
        return at

    def on_grid(self, t: float, step_s: float) -> float:
        """`t` moved back onto the stream's grid of `step_s` (the segmenter's steps), so that every window
        cut from the stream starts at the same sample of the recording, whatever the clock said."""
        if self.origin is None:
            return t
        return self.origin + math.floor((t - self.origin) / step_s + 1e-6) * step_s


class _AudioRing:
    def __init__(self, capacity_s: float):
        self.capacity = int(capacity_s * SR)
        self.chunks: collections.deque[tuple[float, np.ndarray]] = collections.deque()
        self.samples = 0
        self.timeline = AudioTimeline()

    def add(self, stamp: float, pcm16k: np.ndarray) -> None:
        stamp = self.timeline.place(stamp, len(pcm16k))
        self.chunks.append((stamp, (np.clip(pcm16k, -1, 1) * 32767).astype(np.int16)))
        self.samples += len(pcm16k)
        while self.samples > self.capacity and self.chunks:
            self.samples -= len(self.chunks.popleft()[1])

    def render(self, t0: float, t1: float) -> np.ndarray:
        n = max(0, int(round((t1 - t0) * SR)))
        out = np.zeros(n, np.float32)
        for stamp, pcm in self.chunks:
            a = int(round((stamp - t0) * SR))
            lo, hi = max(0, a), min(n, a + len(pcm))
            if hi > lo:
                out[lo:hi] = pcm[lo - a:hi - a].astype(np.float32) / 32767
        return out

    @property
    def start(self) -> float | None:
        return self.chunks[0][0] if self.chunks else None


class StreamBuffer:
    def __init__(self, capacity_s: float = 900.0):
        self.capacity_s = capacity_s
        self._listen, self._speak = _AudioRing(capacity_s), _AudioRing(capacity_s)
        self._transcripts: collections.deque[TranscriptSegment] = collections.deque(maxlen=20_000)
        self._identities: collections.deque[IdentityObservation] = collections.deque(maxlen=int(capacity_s * 4))
        self._lock = threading.Lock()
        self.external_asr = False  # an ASR node publishes the user's transcripts: no ASR of our own

    def add_listen(self, stamp: float, pcm: np.ndarray, sample_rate: int) -> None:
        """Raises MediaError for unusable audio (the caller logs and drops it); digital silence is kept."""
        x = clean_audio(pcm, sample_rate, SR, allow_silence=True)
        with self._lock:
            self._listen.add(stamp, x)

    def add_speak(self, stamp: float, pcm: np.ndarray, sample_rate: int) -> None:
        try:
            x = clean_audio(pcm, sample_rate, SR)
        except MediaError:  # the robot being silent is normal: all-zero speak audio is dropped quietly
            return
        with self._lock:
            self._speak.add(stamp, x)

    def add_transcript(self, segment: TranscriptSegment) -> None:
        if segment.text.strip():
            with self._lock:
                self._transcripts.append(segment)
                self.external_asr = self.external_asr or segment.speaker == "user"

    def add_identity(self, obs: IdentityObservation) -> None:
        with self._lock:
            self._identities.append(obs)

    @property
    def start(self) -> float | None:
        return self._listen.start

    @property
    def end(self) -> float | None:
        """Where the buffered microphone audio ends."""
        with self._lock:
            if not self._listen.chunks:
                return None
            stamp, pcm = self._listen.chunks[-1]
            return stamp + len(pcm) / SR

    def audio_stats(self) -> dict[str, float]:
        """What the microphone stream lost on the way, for the diagnostics."""
        with self._lock:
            line = self._listen.timeline
            return {"audio lost (s)": round(line.lost_s, 2), "audio re-anchored": line.reanchored}

    def on_grid(self, t: float, step_s: float) -> float:
        """`t` on the listen channel's sample grid (see `AudioTimeline.on_grid`)."""
        with self._lock:
            return self._listen.timeline.on_grid(t, step_s)

    def observations(self, since: float) -> list[IdentityObservation]:
        with self._lock:
            return [o for o in self._identities if o.stamp >= since]

    def window(self, t0: float, t1: float) -> tuple[Stream, list[TranscriptSegment], list[IdentityObservation]]:
        """Aligned audio (sample 0 = t0) with the transcripts and observations inside [t0, t1)."""
        with self._lock:
            listen = self._listen.render(t0, t1)
            speak = self._speak.render(t0, t1) if self._speak.chunks else None
            segs = [s for s in self._transcripts if s.end > t0 and s.start < t1]
            obs = [o for o in self._identities if t0 <= o.stamp < t1]
        return Stream(path=None, listen=listen, speak=speak, labels=None), segs, obs  # type: ignore[arg-type]

    def drop_before(self, t: float) -> None:
        with self._lock:
            for ring in (self._listen, self._speak):
                while ring.chunks and ring.chunks[0][0] + len(ring.chunks[0][1]) / SR <= t:
                    ring.samples -= len(ring.chunks.popleft()[1])
            while self._transcripts and self._transcripts[0].end <= t:
                self._transcripts.popleft()
            while self._identities and self._identities[0].stamp < t:
                self._identities.popleft()

    def memory_bytes(self) -> int:
        audio = sum(p.nbytes for ring in (self._listen, self._speak) for _, p in ring.chunks)
        ids = sum((o.face.nbytes if o.face is not None else 0) + (o.voice.nbytes if o.voice is not None else 0)
                  for o in self._identities)
        return audio + ids

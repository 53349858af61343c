"""Episodic trigger: label every 80 ms step 0/1/2/3 (paper §3.1.2).

Two segmenters share one interface, `label(stream) -> labels`:

- `BaselineSegmenter` (no training): silero-vad on both channels, voiced regions joined across gaps
  shorter than `max_gap_s`, split where the user's voice changes (resemblyzer embeddings of consecutive
  user turns) or where the identity process saw another user.
- `TaggerSegmenter`: the paper's sequence tagger, a small transformer with full (BERT-style) attention
  over per-step log-mel features of the listen and speak channels (this machine has no Mimi weights, so
  log-mel replaces Mimi codes). See `tagger.py`.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .sessions import STEP_S, Session, Stream, labels_from_sessions
from .speaker_change import voice_changes

log = logging.getLogger(__name__)
SR = 16_000
HOP = int(SR * STEP_S)  # 1280 samples per step


class Segmenter(Protocol):
    name: str

    def label(self, stream: Stream, identities: Sequence[tuple[float, str]] = ()) -> np.ndarray: ...


def step_vad(pcm: np.ndarray, vad_model, n_steps: int, threshold: float = 0.5) -> np.ndarray:
    """Per-step speech probability from silero-vad (max over its 32 ms windows inside the step).

    The stream is cut into up to 32 segments of at least ~8 s that silero processes as one batch
    (5.6x faster on 2 cores; 99% of windows agree with one long sequential pass, the rest sit at the
    first half-second of a segment, where the recurrent state starts afresh).
    """
    import torch

    window = 512
    n_windows = len(pcm) // window
    if n_windows == 0:
        return np.zeros(n_steps, dtype=np.float32)
    batch = int(max(1, min(32, n_windows // 250)))
    per = -(-n_windows // batch)
    x = np.zeros(batch * per * window, np.float32)
    x[:n_windows * window] = pcm[:n_windows * window]
    chunks = torch.from_numpy(x).reshape(batch, per, window)
    with torch.no_grad():
        vad_model.reset_states()
        probs = torch.stack([vad_model(chunks[:, j], SR)[:, 0] for j in range(per)], 1).reshape(-1)
    probs = probs.numpy()[:n_windows]
    t = (np.arange(n_windows) * window + window // 2) // HOP
    out = np.zeros(n_steps, dtype=np.float32)
    valid = t < n_steps
    np.maximum.at(out, t[valid], probs[valid])
    return out


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) inclusive runs of True."""
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


@dataclass
class BaselineSegmenter:
    voice_engine: object | None = None     # a VoiceEngine for speaker-change splits (None: no such splits)
    max_gap_s: float = 2.0
    min_session_s: float = 1.5
    min_turn_s: float = 0.8
    speaker_change_cosine: float = 0.60  # tuned on `make-streams --split train` (F1@5 0.66 there)
    identity_lag_s: float = 6.0          # how late the identity polls may see a new person (hysteresis)
    vad_threshold: float = 0.5
    name: str = "baseline"

    def __post_init__(self) -> None:
        from silero_vad import load_silero_vad

        self._vad = load_silero_vad()

    def label(self, stream: Stream, identities: Sequence[tuple[float, str]] = ()) -> np.ndarray:
        n = stream.n_steps
        listen = step_vad(stream.listen, self._vad, n) >= self.vad_threshold
        speak = (step_vad(stream.speak, self._vad, n) >= self.vad_threshold) if stream.speak is not None \
            else np.zeros(n, bool)
        voiced = listen | speak
        gap = int(round(self.max_gap_s / STEP_S))
        regions: list[tuple[int, int]] = []
        for a, b in true_runs(voiced):
            if regions and a - regions[-1][1] - 1 <= gap:
                regions[-1] = (regions[-1][0], b)
            else:
                regions.append((a, b))
        sessions: list[Session] = []
        for a, b in regions:
            turns = self._turns(stream, listen & ~speak, a, b)
            cuts = voice_changes(turns, self.speaker_change_cosine)
            lag = int(round(self.identity_lag_s / STEP_S))
            # an identity change that a voice change just before it explains is that cut, not another one
            cuts += [snap_to_turn(c, turns, lag) for c in identity_changes(identities, a, b)
                     if not any(c - lag <= v <= c for v in cuts)]
            bounds = [a] + sorted(set(c for c in cuts if a < c <= b)) + [b + 1]
            for s, e in zip(bounds, bounds[1:]):
                # end each part at its last voiced step
                inside = np.flatnonzero(voiced[s:e])
                if inside.size:
                    sessions.append(Session(s + int(inside[0]), s + int(inside[-1])))
        min_steps = int(round(self.min_session_s / STEP_S))
        return labels_from_sessions([s for s in sessions if s.steps >= min_steps], n)

    def _turns(self, stream: Stream, user_voiced: np.ndarray, a: int, b: int) -> list[tuple[int, int, np.ndarray | None]]:
        """The user's turns in [a, b] (steps, at least `min_turn_s`) with their voice embeddings."""
        out = []
        for s, e in true_runs(user_voiced[a:b + 1]):
            if (e - s + 1) * STEP_S < self.min_turn_s:
                continue
            emb = None
            if self.voice_engine is not None:
                try:
                    emb = self.voice_engine.backend.embed(stream.listen[(a + s) * HOP:(a + e + 1) * HOP])
                    emb = emb / (np.linalg.norm(emb) + 1e-9)
                except Exception as err:  # noqa: BLE001 - a bad turn must not stop segmentation
                    log.warning("speaker embedding failed on a turn: %s", err)
            out.append((a + s, a + e, emb))
        return out


def snap_to_turn(cut: int, turns: Sequence[tuple[int, int, np.ndarray | None]], lag: int) -> int:
    """Move an identity change to the turn where the voice changed. The identity polls see a new person
    a poll or two (`lag` steps) after they arrive; the turn boundary in that span whose two sides sound
    least alike is where one person stopped and the other began (the latest one when no voice says)."""
    best, best_sim = cut, None
    for (_, _, prev), (s, _, emb) in zip(turns, turns[1:]):
        if not cut - lag <= s <= cut:
            continue
        sim = float(prev @ emb) if prev is not None and emb is not None else 1.0
        if best_sim is None or sim <= best_sim:
            best, best_sim = s, sim
    return best


class FallbackSegmenter:
    """The tagger learnt that a dialog is the user and the robot taking turns: with no robot voice on the
    speak channel (a bag without it, a robot whose TTS is not recorded) it finds no session at all. Such a
    stream goes to `fallback` (the baseline, which needs no robot), and the first time this happens it is
    said once, with what to do."""

    def __init__(self, primary: Segmenter, fallback: Segmenter | None) -> None:
        self.primary, self.fallback = primary, fallback
        self.name = primary.name
        self._told = False

    def label(self, stream: Stream, identities: Sequence[tuple[float, str]] = ()) -> np.ndarray:
        if stream.speak is not None and np.any(np.abs(stream.speak) > 1e-3):
            return self.primary.label(stream, identities)
        if not self._told:
            self._told = True
            what = (f"segmenting with {self.fallback.name} instead (memory.segmenter_fallback)" if self.fallback
                    else "no session can be found (memory.segmenter_fallback: none)")
            log.warning("the %s segmenter needs the robot's voice on the speak channel and this stream has none: %s; "
                        "record the robot's TTS output, or set memory.segmenter: baseline", self.primary.name, what)
        if self.fallback is None:
            return np.zeros(stream.n_steps, np.int8)
        return self.fallback.label(stream, identities)


def identity_changes(identities: Sequence[tuple[float, str]], a: int, b: int) -> list[int]:
    """Steps in [a, b] where the identified user (stamp in seconds, user id) changes: every segmenter
    cuts there, whatever the voice says."""
    cuts, last = [], None
    for stamp, user in sorted(identities):
        step = int(stamp / STEP_S)
        if not user or step < a or step > b:
            continue
        if last is not None and user != last:
            cuts.append(step)
        last = user
    return cuts

"""The paper's episodic-trigger tagger: a small transformer with full (BERT-style) attention.

Input: per-step features of both channels (`step_features.py`: listen log-mel, low harmonics and log
energy over the stream's noise floor, listen pitch and voicing, speak log energy). Two outputs:

- 4-way per-step logits (0 none, 1 start, 2 inside, 3 end). A strided convolution brings `stride` steps
  to one token, so full attention over a whole 8192-step chunk stays cheap on a CPU; the tokens are
  spread back to steps and refined by a local convolution.
- a per-step voice embedding from a convolution over the listen features, trained with a supervised
  contrastive loss (same session = same voice). Mimi codes carry the speaker in the paper; log-mel means
  do not, so this head is what tells back-to-back users apart: the decoder cuts a voiced region where a
  user turn's mean embedding leaves the session's centroid (cosine below `voice_split_cosine`), or,
  relative to how alike each side's own turns sound, when the two sides differ by more than
  `voice_split_contrast`; both tuned on held-out training voices by `egomem train trigger`.

Training is in `tagger_train.py`. Scaling up on a GPU: raise `d_model`, `layers`, the crop (8192, the
paper's chunk) and the batch size; nothing else changes.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .sessions import NONE, START, Session, Stream, labels_from_sessions
from .step_features import (FEATURES, LISTEN_FEATURES, PITCH, VOICED_STRENGTH, VOICING, mel_matrix, robot_speaking,
                            stream_features, user_turns, user_voiced)
from .trigger import identity_changes, true_runs

log = logging.getLogger(__name__)
PACKAGED_CHECKPOINT = Path(__file__).resolve().parents[1] / "data" / "trigger_tagger.pt"


@dataclass
class TaggerConfig:
    d_model: int = 64
    layers: int = 2
    heads: int = 4
    stride: int = 8
    dropout: float = 0.1
    voice_dim: int = 32
    voice_channels: int = 96


class TriggerTagger(nn.Module):
    def __init__(self, cfg: TaggerConfig):
        super().__init__()
        self.cfg = cfg
        d, c = cfg.d_model, cfg.voice_channels
        self.norm_in = nn.LayerNorm(FEATURES)
        self.voice = nn.Sequential(nn.Conv1d(LISTEN_FEATURES, c, 5, padding=2), nn.GELU(),
                                   nn.Conv1d(c, c, 5, padding=4, dilation=2), nn.GELU(), nn.Conv1d(c, cfg.voice_dim, 1))
        self.inp = nn.Linear(FEATURES + cfg.voice_dim, d)
        self.local = nn.Conv1d(d, d, 5, padding=2)
        self.down = nn.Conv1d(d, d, cfg.stride, stride=cfg.stride)
        layer = nn.TransformerEncoderLayer(d, cfg.heads, 2 * d, cfg.dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.refine = nn.Conv1d(2 * d, d, 5, padding=2)
        self.head = nn.Linear(d, 4)

    @staticmethod
    def positions(n: int, d: int, device) -> torch.Tensor:
        pos = torch.arange(n, device=device)[:, None]
        div = torch.exp(torch.arange(0, d, 2, device=device) * (-math.log(10000.0) / d))
        pe = torch.zeros(n, d, device=device)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
        return pe

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, FEATURES) -> logits (B, T, 4) and unit voice embeddings (B, T, voice_dim)."""
        b, t, _ = feats.shape
        pad = (-t) % self.cfg.stride
        x = torch.nn.functional.pad(feats, (0, 0, 0, pad))
        v = self.voice(x[..., :LISTEN_FEATURES].transpose(1, 2)).transpose(1, 2)
        v = torch.nn.functional.normalize(v, dim=-1)
        h = torch.relu(self.local(self.inp(torch.cat([self.norm_in(x), v], -1)).transpose(1, 2)))  # (B, d, T')
        z = self.down(h).transpose(1, 2)                                                  # (B, T'/s, d)
        z = self.encoder(z + self.positions(z.shape[1], z.shape[2], z.device))           # full attention
        up = z.repeat_interleave(self.cfg.stride, dim=1).transpose(1, 2)                 # (B, d, T')
        y = torch.relu(self.refine(torch.cat([h, up], 1))).transpose(1, 2)
        return self.head(y)[:, :t], v[:, :t]


@dataclass
class DecodeConfig:
    voice_split_cosine: float = 0.5   # a user turn below this cosine to the session's voice starts a new one
    voice_lookahead_turns: int = 2    # the turn's voice is averaged with the turns after it (same region)
    voice_split_pitch: float = math.inf  # a jump in median log F0 this large also starts a new session (inf: off)
    voice_split_contrast: float = math.inf  # own-side minus cross-side turn cosine above this: a cut (inf: off)
    voice_self_cosine: float = 0.9    # a voice's turn-to-turn cosine, assumed while neither side has two turns
    voice_split_search: str = "sequential"  # or "binary": the contrast cut by binary segmentation of a region
    voice_min_side_turns: int = 2     # binary: the fewest user turns on either side of a cut
    min_session_steps: int = 12
    merge_gap_steps: int = 15         # in-dialog runs closer than this form one region; only the voice splits it
    min_run_steps: int = 6            # shorter in-dialog runs are blips, not joined to a region
    min_robot_steps: int = 6          # a dialog has the robot speak for this long (0: not required)
    min_turn_steps: int = 8           # shorter voiced runs (echo tails, coughs) are not turns
    turn_gap_steps: int = 3           # voiced runs this close are one turn
    snap_steps: int = 4               # a cut's start snaps to the most likely start step this close
    sure_start: float = 0.3           # a region or cut starts where the tagger does if this sure; else at the first word
    lead_steps: int = 15              # a user turn (or, at a cut, any voiced step) this close before a region starts it

    def __post_init__(self):
        if self.voice_split_search not in ("sequential", "binary"):
            raise ValueError(f"voice_split_search must be sequential or binary, not {self.voice_split_search!r}")


def voice_cuts(turns: list[tuple[int, int]], voice: np.ndarray, threshold: float, lookahead: int = 1,
               pitch: np.ndarray | None = None, pitch_jump: float = math.inf, contrast: float = math.inf,
               self_cosine: float = 0.9) -> list[int]:
    """Indices into `turns` where a new user's session begins: the turn's mean voice is further than
    `threshold` (cosine) from the centroid of the session so far, and so is the mean of it and the next
    `lookahead - 1` turns (one short turn that sounds off, a cough or a noise, is no new user); or their
    median log F0 (`pitch`, NaN where unvoiced) moves more than `pitch_jump` from the session's; or the
    turn, and it with the next ones, sound more than `contrast` less like the session than each side's
    turns sound like each other (`_PairSums.contrast`). A change noticed late moves back over the turns
    that sound more like the new voice than the old one."""
    if not turns:
        return []
    unit = _turn_units(turns, voice)
    pairs = _PairSums(unit) if math.isfinite(contrast) else None
    f0 = [_median(pitch[s:e + 1]) for s, e in turns] if pitch is not None else [math.nan] * len(turns)
    cuts, first = [], 0
    for k in range(1, len(unit)):
        old = _unit(unit[first:k].sum(0))
        new = _unit(unit[k:k + lookahead].sum(0))
        same_voice = max(float(unit[k] @ old), float(new @ old)) >= threshold
        if same_voice and pitch is not None:
            old_f0 = _median(f0[first:k])
            jumps = [abs(x - old_f0) for x in (f0[k], _median(f0[k:k + lookahead])) if not math.isnan(x - old_f0)]
            same_voice = min(jumps, default=0.0) <= pitch_jump
        if same_voice and math.isfinite(contrast):
            same_voice = min(pairs.contrast(first, k, min(k + n, len(unit)), self_cosine)
                             for n in {1, lookahead}) <= contrast
        if same_voice:
            continue
        while k - 1 > first and float(unit[k - 1] @ new) > float(unit[k - 1] @ _unit(unit[first:k - 1].sum(0))):
            k -= 1
        cuts.append(k)
        first = k
    return cuts


def binary_voice_cuts(turns: list[tuple[int, int]], voice: np.ndarray, contrast: float, min_side: int = 2,
                      self_cosine: float = 0.9) -> list[int]:
    """Indices into `turns` where a new user's session begins, by binary segmentation (as speaker-change
    detection does with BIC): the split of a region's turns whose two sides differ most
    (`_PairSums.contrast`, over every turn of each side, at least `min_side` a side) is a cut when that
    exceeds `contrast`, and each side is searched again. With all of both sides as evidence, rather than
    the few turns after a candidate, two close voices are told apart more surely."""
    if len(turns) < 2:
        return []
    pairs = _PairSums(_turn_units(turns, voice))
    cuts, spans, side = [], [(0, len(turns))], max(1, min_side)
    while spans:
        a, b = spans.pop()
        scored = [(pairs.contrast(a, k, b, self_cosine), k) for k in range(a + side, b - side + 1)]
        if scored:
            best, k = max(scored, key=lambda item: item[0])
            if best > contrast:
                cuts.append(k)
                spans += [(a, k), (k, b)]
    return sorted(cuts)


def _turn_units(turns: list[tuple[int, int]], voice: np.ndarray) -> np.ndarray:
    """Each turn's mean voice embedding, unit length."""
    return np.array([_unit(voice[s:e + 1].mean(0)) for s, e in turns])


class _PairSums:
    """Sums of turn-to-turn cosines over any two runs of turns in O(1), from the prefix sums of the
    turns' cosine matrix: decoding asks for them at every turn of every region."""

    def __init__(self, unit: np.ndarray):
        gram = (unit @ unit.T).astype(np.float64)
        self.sums = np.pad(gram.cumsum(0).cumsum(1), ((1, 0), (1, 0))).tolist()
        self.diag = np.concatenate([[0.0], np.cumsum(np.diag(gram))]).tolist()

    def block(self, a: int, b: int, c: int, d: int) -> float:
        """Sum of the cosines between turns [a, b) and turns [c, d)."""
        p = self.sums
        return p[b][d] - p[a][d] - p[b][c] + p[a][c]

    def contrast(self, first: int, k: int, end: int, self_cosine: float) -> float:
        """How much less alike turns [first, k) and [k, end) are than each side's own turns (mean pairwise
        cosines; `self_cosine` while neither side has two turns). Unfamiliar voices can sit close in the
        embedding everywhere; what tells two apart is that each is closer still to itself."""
        within = [(self.block(a, b, a, b) - self.diag[b] + self.diag[a]) / ((b - a) * (b - a - 1))
                  for a, b in ((first, k), (k, end)) if b - a > 1]
        cross = self.block(first, k, k, end) / ((k - first) * (end - k))
        return (sum(within) / len(within) if within else self_cosine) - cross


def _median(x) -> float:
    """Median of the finite values (NaN when none)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else math.nan


def _unit(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x) + 1e-9)


def decode(probs: np.ndarray, voice: np.ndarray, feats: np.ndarray, cfg: DecodeConfig,
           extra_cuts: Sequence[int] = ()) -> list[Session]:
    """Per-step probabilities -> sessions: the tagger's in-dialog runs joined into regions across short
    gaps, each cut where the user's voice changes (and at `extra_cuts`, e.g. identity changes). A
    session runs from its first word to its last; a session without the robot speaking is no dialog."""
    voiced, robot = user_voiced(feats), robot_speaking(feats)
    pitch = (np.where(feats[:, VOICING] >= VOICED_STRENGTH, feats[:, PITCH], np.nan)
             if math.isfinite(cfg.voice_split_pitch) else None)
    turns = user_turns(voiced, 0, len(voiced) - 1, min_steps=cfg.min_turn_steps, gap_steps=cfg.turn_gap_steps)
    sessions: list[Session] = []
    for a, b in _regions(probs.argmax(1) != NONE, turns, cfg):
        sessions += _split_region(a, b, probs, voice, pitch, voiced, robot, cfg, extra_cuts)
    return [s for s in sessions if s.steps >= cfg.min_session_steps
            and int(robot[s.start:s.end + 1].sum()) >= cfg.min_robot_steps]


def _regions(active: np.ndarray, turns: list[tuple[int, int]], cfg: DecodeConfig) -> list[tuple[int, int]]:
    """In-dialog runs without blips, joined across gaps of `merge_gap_steps` or fewer: the tagger's own
    gaps between back-to-back users do not carry over to unseen voices, so only the voice splits. The
    gap is measured from the user turns the runs touch: a turn is one user speaking, and the tagger can
    lose an unfamiliar voice halfway through one (it hears it as a non-dialog sound). Backwards a turn
    counts only `lead_steps` before the run, as in `_first_word`: a noise that runs into the next user's
    first words is one "turn" to the energy detector, and must not bridge the silence before it."""
    turn_start, turn_end = np.arange(len(active)), np.arange(len(active))   # a step outside any turn: itself
    for s, e in turns:
        turn_start[s:e + 1], turn_end[s:e + 1] = s, e
    regions: list[tuple[int, int]] = []
    reach_end = -1                       # the last region's end, widened to the end of the turn it touches
    for a, b in true_runs(active):
        if b - a + 1 < cfg.min_run_steps:
            continue
        lo = turn_start[a] if a - turn_start[a] <= cfg.lead_steps else a
        if regions and lo - reach_end - 1 <= cfg.merge_gap_steps:
            regions[-1] = (regions[-1][0], b)
        else:
            regions.append((a, b))
        reach_end = max(reach_end, int(turn_end[b]))
    return regions


def _split_region(a: int, b: int, probs: np.ndarray, voice: np.ndarray, pitch: np.ndarray | None,
                  voiced: np.ndarray, robot: np.ndarray, cfg: DecodeConfig,
                  extra_cuts: Sequence[int]) -> list[Session]:
    turns = user_turns(voiced, a, b, min_steps=cfg.min_turn_steps, gap_steps=cfg.turn_gap_steps)
    if cfg.voice_split_search == "binary":
        cut_turns = set(binary_voice_cuts(turns, voice, cfg.voice_split_contrast, cfg.voice_min_side_turns,
                                          cfg.voice_self_cosine))
    else:
        cut_turns = set(voice_cuts(turns, voice, cfg.voice_split_cosine, cfg.voice_lookahead_turns, pitch,
                                   cfg.voice_split_pitch, cfg.voice_split_contrast, cfg.voice_self_cosine))
    cut_turns |= {k for k, (s, _) in enumerate(turns) if k and any(turns[k - 1][1] < c <= s for c in extra_cuts)}
    if probs[a:min(b, a + 2) + 1, START].max() >= cfg.sure_start:   # the tagger hears the start itself
        start = a
    else:
        lead = user_turns(voiced, max(0, a - cfg.lead_steps), b, min_steps=cfg.min_turn_steps, gap_steps=cfg.turn_gap_steps)
        start = _first_word(robot, lead, a, b)
    sessions = []
    for k in sorted(cut_turns):
        onset, prev_end = turns[k][0], turns[k - 1][1]
        lo, hi = max(prev_end + 1, onset - cfg.snap_steps), min(b, onset + cfg.snap_steps)
        # the new session starts at the tagger's most likely start near the onset (no opinion: the onset)
        near = probs[lo:hi + 1, START] - 1e-4 * np.abs(np.arange(lo, hi + 1) - onset)
        new_start = lo + int(np.argmax(near))
        # the new user's first words can be too short to be a turn ("Thanks," then a pause): the session
        # starts where the tagger is sure it does after the last turn (the robot may even answer them) ...
        if lo > prev_end + 1:
            early = probs[prev_end + 1:lo, START]
            if early.max() >= cfg.sure_start:
                new_start = prev_end + 1 + int(np.argmax(early))
        # ... or at a voiced step up to `lead_steps` before the onset, after the last word before it
        spoken = np.flatnonzero(robot[prev_end + 1:onset])
        after = max(prev_end + 1 + (int(spoken[-1]) + 1 if spoken.size else 0), onset - cfg.lead_steps)
        first = np.flatnonzero(voiced[after:onset])
        if first.size:
            new_start = min(new_start, after + int(first[0]))
        sessions.append(Session(start, _last_word(robot, turns, start, new_start - 1)))
        start = new_start
    return join_robotless(sessions + [Session(start, _last_word(robot, turns, start, b))], robot, cfg.min_robot_steps)


def join_robotless(sessions: list[Session], robot: np.ndarray, min_robot_steps: int) -> list[Session]:
    """A voice cut before the robot has said anything leaves a part that is no dialog. Rather than drop
    the user's first words with it, the part joins the next one: a real speaker's long first turn can
    sound like two people to a voice head trained on espeak-ng voices (recorded speakers: F1@5 +0.004 to
    +0.008; no change on the espeak-ng sets). The last part has no next and is judged by `decode`."""
    joined: list[Session] = []
    for s in sessions:
        if joined and int(robot[joined[-1].start:joined[-1].end + 1].sum()) < min_robot_steps:
            joined[-1] = Session(joined[-1].start, s.end)
        else:
            joined.append(s)
    return joined


def _last_word(robot: np.ndarray, turns: list[tuple[int, int]], a: int, b: int) -> int:
    """A session ends with its last word, the robot's or the user's, not where the noise after it or
    the echo of the robot's voice fades (`b` when [a, b] has no word)."""
    words = [e for _, e in turns if a <= e <= b]
    spoken = np.flatnonzero(robot[a:b + 1])
    if spoken.size:
        words.append(a + int(spoken[-1]))
    return max(words, default=b)


def _first_word(robot: np.ndarray, turns: list[tuple[int, int]], a: int, b: int) -> int:
    """A session starts with its first word, the user's or the robot's (`a` when [a, b] has none). The
    tagger can miss the first second of an unfamiliar voice: a user turn running into the region counts."""
    words = [s for s, e in turns if e >= a and s <= b]
    spoken = np.flatnonzero(robot[a:b + 1])
    if spoken.size:
        words.append(a + int(spoken[0]))
    return min(words, default=a)


class TaggerSegmenter:
    name = "tagger"

    def __init__(self, model: TriggerTagger, decode_cfg: DecodeConfig | None = None, *, chunk_steps: int = 8192):
        self.model = model.eval()
        self.decode_cfg = decode_cfg or DecodeConfig()
        self.chunk_steps = chunk_steps
        mel_matrix()  # built once here (librosa import and all), not inside the first label() call

    @classmethod
    def load(cls, path: str | Path | None = None, *, voice_split_contrast: float | None = None) -> TaggerSegmenter:
        """A checkpoint from `egomem train trigger`; None: the one shipped in the package (trained on
        synthetic espeak-ng streams, see docs/memory.md). `voice_split_contrast` overrides the checkpoint's
        tuned value: it was tuned on held-out espeak-ng voices, and real speakers, whose turns vary far
        more than an espeak-ng voice's, need a larger one (docs/results.md: 0.15 on recorded speakers)."""
        if voice_split_contrast is not None and not 0.0 <= voice_split_contrast < 2.0:
            raise ValueError(f"voice_split_contrast must be in [0, 2), not {voice_split_contrast}")
        path = Path(path) if path else PACKAGED_CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no tagger checkpoint (train one with `egomem train trigger`)")
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        if "decode" not in ckpt or ckpt.get("features") != FEATURES:
            raise ValueError(f"{path}: a checkpoint of an older tagger (other step features); retrain it with "
                             "`egomem train trigger`")
        model = TriggerTagger(TaggerConfig(**ckpt["config"]))
        model.load_state_dict(ckpt["state_dict"])
        known = {k: v for k, v in ckpt["decode"].items() if k in DecodeConfig.__dataclass_fields__}
        if len(known) < len(ckpt["decode"]):
            log.warning("%s: decode settings %s are unknown to this version and ignored", path,
                        sorted(set(ckpt["decode"]) - set(known)))
        if voice_split_contrast is not None:
            known["voice_split_contrast"] = voice_split_contrast
        return cls(model, DecodeConfig(**known))

    def infer(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-step class probabilities (T, 4) and voice embeddings (T, voice_dim), chunk by chunk."""
        probs, voices = [], []
        with torch.inference_mode():
            for s in range(0, len(feats), self.chunk_steps):
                logits, voice = self.model(torch.from_numpy(feats[s:s + self.chunk_steps])[None])
                probs.append(torch.softmax(logits[0], -1).numpy())
                voices.append(voice[0].numpy())
        if not probs:
            return np.zeros((0, 4), np.float32), np.zeros((0, self.model.cfg.voice_dim), np.float32)
        return np.concatenate(probs), np.concatenate(voices)

    def label(self, stream: Stream, identities: Sequence[tuple[float, str]] = ()) -> np.ndarray:
        n = stream.n_steps
        feats = stream_features(stream.listen, stream.speak, n)
        probs, voice = self.infer(feats)
        extra = identity_changes(identities, 0, n - 1)
        return labels_from_sessions(decode(probs, voice, feats, self.decode_cfg, extra), n)


__all__ = ["DecodeConfig", "TaggerConfig", "TaggerSegmenter", "TriggerTagger", "binary_voice_cuts", "decode",
           "voice_cuts"]

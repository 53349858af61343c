"""`egomem train trigger`: train the tagger on labelled stream folders, then tune its voice-split
threshold on held-out streams, and save one checkpoint that `TaggerSegmenter.load` reads.

Loss: class-weighted cross-entropy on the per-step labels (starts and ends are rare) plus a supervised
contrastive loss on the mean voice embeddings of groups of a user's voiced steps (positives: groups of
the same session), the way the decoder compares turns.
"""
from __future__ import annotations

import itertools
import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...memory.sessions import NONE, START, load_stream, prf, sessions_from_labels, span_match
from ...memory.step_features import FEATURES, stream_features, user_voiced
from ...memory.tagger import DecodeConfig, TaggerConfig, TaggerSegmenter, TriggerTagger, decode
from .espeak_variants import is_synthetic

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    steps: int = 8000
    batch: int = 8
    crop_steps: int = 2048
    lr: float = 2e-3
    lr_min: float = 1e-5
    boundary_weight: float = 10.0
    voice_weight: float = 1.0
    voice_groups: int = 32       # per session and crop: samples in the contrastive loss
    voice_group_steps: int = 1   # voiced steps averaged per sample (groups of 4 or 8 measured worse)
    temperature: float = 0.1
    val_fraction: float = 0.1    # streams held out to tune the voice-split threshold (voices unseen in training)
    seed: int = 0


def session_ids(labels: np.ndarray) -> np.ndarray:
    """Per step: the index of its session in the stream, -1 outside any session."""
    ids = np.cumsum(labels == START) - 1
    return np.where(labels == NONE, -1, ids)


def supervised_contrastive(v: torch.Tensor, ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """SupCon (Khosla et al. 2020) on unit vectors: each anchor's positives are the other rows with its id."""
    sim = v @ v.T / temperature
    eye = torch.eye(len(v), dtype=torch.bool, device=v.device)
    sim = sim.masked_fill(eye, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, 1, keepdim=True)
    pos = (ids[:, None] == ids[None, :]) & ~eye
    has_pos = pos.any(1)
    if not has_pos.any():
        return v.sum() * 0.0
    per_anchor = -(log_prob.masked_fill(~pos, 0.0).sum(1) / pos.sum(1).clamp(min=1))
    return per_anchor[has_pos].mean()


def split_by_voice(dirs: list[Path], fraction: float, rng: random.Random) -> tuple[list[Path], list[Path]]:
    """(train, validation): whole voices are held out (the espeak-ng variant in each stream's meta.json)
    until their streams make up `fraction`, so the thresholds are tuned on voices the tagger never heard,
    as it will meet its users. Generated voices (`espeak_variants`) are each heard in one session only, so
    they are never held out, and `fraction` counts the streams with a voice of espeak-ng's own. Streams
    without meta.json (real recordings) are split at random."""
    voices: dict[Path, set[str]] = {}
    for d in dirs:
        meta = d / "meta.json"
        if meta.is_file():
            sessions = json.loads(meta.read_text(encoding="utf-8")).get("sessions", [])
            voices[d] = {s["voice"].split("+")[-1] for s in sessions if not is_synthetic(s["voice"])}
    by_voice = len(voices) == len(dirs) and any(voices.values())
    pooled = sum(map(bool, voices.values())) if by_voice else len(dirs)
    n_val = int(round(pooled * fraction)) if len(dirs) > 1 else 0
    if by_voice and n_val:
        held: set[str] = set()
        val: list[Path] = []
        all_voices = sorted(set().union(*voices.values()))
        for voice in rng.sample(all_voices, len(all_voices)):
            if len(val) >= n_val:
                break
            held.add(voice)
            val = [d for d in dirs if voices[d] & held]
        train = [d for d in dirs if not voices[d] & held]
        if train:
            return train, val
        log.warning("every stream holds a validation voice: splitting the streams at random instead")
    shuffled = rng.sample(dirs, len(dirs))
    return shuffled[n_val:], shuffled[:n_val]


def load_training_data(dirs: list[Path], progress=None) -> list[tuple[np.ndarray, np.ndarray]]:
    data = []
    for d in progress(dirs) if progress else dirs:
        s = load_stream(d)
        if s.labels is None:
            raise ValueError(f"{d}: no labels.csv or RTTM to train on")
        data.append((stream_features(s.listen, s.speak, s.n_steps), s.labels.astype(np.int64)))
    return data


def _batch(data, cfg: TrainConfig, rng: random.Random, device: str):
    xs, ys, groups = [], [], []
    chosen = [rng.choice(data) for _ in range(cfg.batch)]
    n = min(cfg.crop_steps, *(len(f) for f, _ in chosen))
    for k, (f, y) in enumerate(chosen):
        a = rng.randrange(0, len(f) - n + 1)
        xs.append(f[a:a + n])
        ys.append(y[a:a + n])
        ids = session_ids(y)[a:a + n]
        voiced = user_voiced(f[a:a + n])
        for sid in np.unique(ids[ids >= 0]):
            steps = np.flatnonzero(voiced & (ids == sid)).tolist()
            if len(steps) >= 2 * cfg.voice_group_steps:
                groups += [(k, rng.sample(steps, cfg.voice_group_steps), k * 10_000 + int(sid))
                           for _ in range(cfg.voice_groups)]
    x = torch.from_numpy(np.stack(xs)).to(device)
    y = torch.from_numpy(np.stack(ys)).to(device)
    return x, y, groups


COSINE_GRID = tuple(np.arange(0.0, 0.96, 0.05))
CONTRAST_GRID = tuple(np.arange(0.02, 0.21, 0.02))


def tune_decode(segmenter: TaggerSegmenter, data, grid=COSINE_GRID, lookaheads=(1, 2, 3),
                pitch_jumps=(math.inf, 0.3, 0.25, 0.2, 0.15),
                contrasts=CONTRAST_GRID, min_sides=(1, 2, 3)) -> tuple[DecodeConfig, dict]:
    """The voice split with the best span F1@5 on `data`: a cosine cut (`grid`, with each pitch jump)
    or a contrast cut (`contrasts`, cosine cut off), with each look-ahead, then the contrast cut by binary
    segmentation with each fewest turns a side (`min_sides`). Among the thresholds of one sweep that tie,
    the middle one (the widest margin on both sides); a later sweep wins only when better."""
    inferred = [(*segmenter.infer(f), f, sessions_from_labels(y)) for f, y in data]
    base = replace(segmenter.decode_cfg, voice_split_search="sequential")
    sweeps = [[replace(base, voice_split_cosine=round(float(thr), 3), voice_lookahead_turns=lookahead,
                       voice_split_pitch=pitch_jump, voice_split_contrast=math.inf) for thr in grid]
              for lookahead, pitch_jump in itertools.product(lookaheads, pitch_jumps)]
    sweeps += [[replace(base, voice_split_cosine=-1.0, voice_lookahead_turns=lookahead, voice_split_pitch=math.inf,
                        voice_split_contrast=round(float(c), 3)) for c in contrasts] for lookahead in lookaheads]
    sweeps += [[replace(base, voice_split_search="binary", voice_min_side_turns=min_side, voice_split_cosine=-1.0,
                        voice_split_pitch=math.inf, voice_split_contrast=round(float(c), 3)) for c in contrasts]
               for min_side in min_sides]
    best: tuple[float, DecodeConfig] | None = None
    for sweep in sweeps:
        scores = []
        for cfg in sweep:
            counts = np.zeros(3, int)
            for probs, voice, feats, truth in inferred:
                counts += span_match(decode(probs, voice, feats, cfg), truth, 5)
            scores.append((prf(*counts)["f1"], cfg))
        top = max(f1 for f1, _ in scores)
        ties = [cfg for f1, cfg in scores if f1 >= top - 1e-9]
        if best is None or top > best[0] + 1e-9:
            best = (top, ties[len(ties) // 2])
    f1, cfg = best
    return cfg, {"f1@5": float(f1), **{k: v for k, v in asdict(cfg).items() if k.startswith("voice_")}}


def train_tagger(stream_dirs: list[Path], out: Path, *, model_cfg: TaggerConfig | None = None,
                 train_cfg: TrainConfig | None = None, progress=None, device: str = "cpu") -> dict:
    """Train on stream folders with labels; save a checkpoint that `TaggerSegmenter.load` reads."""
    model_cfg, train_cfg = model_cfg or TaggerConfig(), train_cfg or TrainConfig()
    torch.manual_seed(train_cfg.seed)
    train_dirs, val_dirs, rng = _training_split(stream_dirs, train_cfg)
    data = load_training_data(train_dirs)
    val = load_training_data(val_dirs)
    model = TriggerTagger(model_cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, train_cfg.steps, eta_min=train_cfg.lr_min)
    weights = torch.tensor([1.0, train_cfg.boundary_weight, 1.0, train_cfg.boundary_weight], device=device)
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    history = []
    log_path = out.with_suffix(".log.jsonl")  # written as training goes: `tail -f` shows progress
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("", encoding="utf-8")
    t0 = time.perf_counter()
    steps = range(train_cfg.steps)
    model.train()
    for step in progress(steps) if progress else steps:
        x, y, groups = _batch(data, train_cfg, rng, device)
        logits, voice = model(x)
        loss_cls = loss_fn(logits.reshape(-1, 4), y.reshape(-1))
        loss_voice = logits.sum() * 0.0
        if groups:
            b_idx, t_idx, ids = (torch.tensor(c, device=device) for c in zip(*groups))
            group_voice = torch.nn.functional.normalize(voice[b_idx[:, None], t_idx].mean(1), dim=-1)
            loss_voice = supervised_contrastive(group_voice, ids, train_cfg.temperature)
        loss = loss_cls + train_cfg.voice_weight * loss_voice
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == train_cfg.steps - 1:
            history.append({"step": step, "loss": float(loss_cls.detach()), "voice_loss": float(loss_voice.detach()),
                            "lr": sched.get_last_lr()[0]})
            with log_path.open("a", encoding="utf-8") as log_file:
                log_file.write(json.dumps(history[-1]) + "\n")
    model = model.cpu().eval()
    segmenter = TaggerSegmenter(model)
    decode_cfg, tuned = tune_decode(segmenter, val) if val else (DecodeConfig(), {})
    _save_checkpoint({"config": asdict(model_cfg), "features": FEATURES, "state_dict": model.state_dict(),
                      "train": asdict(train_cfg),
                      "decode": asdict(decode_cfg), "streams": len(data), "validation_streams": len(val)}, out)
    summary = {"checkpoint": str(out), "streams": len(data), "validation_streams": len(val),
               "seconds": time.perf_counter() - t0, "final_loss": history[-1]["loss"],
               "final_voice_loss": history[-1]["voice_loss"],
               "parameters": sum(p.numel() for p in model.parameters()), **{f"validation_{k}": v for k, v in tuned.items()}}
    return summary


def _training_split(stream_dirs: list[Path], cfg: TrainConfig) -> tuple[list[Path], list[Path], random.Random]:
    """(train, held-out, rng): the one split that training and retuning share; training goes on
    drawing its batches from the returned rng."""
    rng = random.Random(cfg.seed)
    train, val = split_by_voice(sorted(stream_dirs), cfg.val_fraction, rng)
    return train, val, rng


def _save_checkpoint(ckpt: dict, out: Path) -> None:
    """Written next to `out` and moved over it: a crash mid-save leaves the old checkpoint whole."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    torch.save(ckpt, partial)
    os.replace(partial, out)


def retune_tagger(checkpoint: Path, stream_dirs: list[Path], progress=None) -> dict:
    """Tune a trained checkpoint's voice-split settings again, on the voices its training held out (the
    same split: streams, fraction and seed), so that a new decoder needs no retraining. The file is
    replaced only once the new settings are written in full."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    train_cfg = TrainConfig(**ckpt["train"])
    _, val_dirs, _ = _training_split(stream_dirs, train_cfg)
    if not val_dirs:
        raise ValueError(f"{checkpoint}: no held-out streams to tune on (val_fraction {train_cfg.val_fraction})")
    if len(val_dirs) != ckpt.get("validation_streams"):
        log.warning("%d held-out streams, but %s was tuned on %s: are these the streams it was trained on?",
                    len(val_dirs), checkpoint, ckpt.get("validation_streams"))
    decode_cfg, tuned = tune_decode(TaggerSegmenter.load(checkpoint), load_training_data(val_dirs, progress))
    ckpt["decode"] = asdict(decode_cfg)
    _save_checkpoint(ckpt, checkpoint)
    return {"checkpoint": str(checkpoint), "validation_streams": len(val_dirs),
            **{f"validation_{k}": v for k, v in tuned.items()}}


__all__ = ["TrainConfig", "load_training_data", "retune_tagger", "session_ids", "split_by_voice",
           "supervised_contrastive", "train_tagger", "tune_decode"]

"""The paper's episodic-trigger tagger: a small transformer with full (BERT-style) attention.

Input: per-step features of both channels (log-mel means and log energy of listen and speak, 66 values
per 80 ms step). A strided convolution brings 4 steps to one token so full attention over a whole
8192-step chunk (2048 tokens) stays cheap on a CPU; the tokens are spread back to steps and refined by a
local convolution before the 4-way per-step classifier. Scaling up on a GPU: raise `d_model`,
`layers`, `crop_steps` (8192, the paper's chunk) and the batch size; nothing else changes.
"""
from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .sessions import END, INSIDE, NONE, START, Stream, labels_from_sessions, load_stream, sessions_from_labels
from .trigger import HOP, SR

log = logging.getLogger(__name__)
N_MELS = 32
VOICE_DIMS = 16
AUDIO_FEATURES = 2 * (N_MELS + 1)


def _mel_matrix() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=SR, n_fft=512, n_mels=N_MELS, fmin=50, fmax=7600).astype(np.float32)


_MEL = None


def channel_features(pcm: np.ndarray | None, n_steps: int) -> np.ndarray:
    """(n_steps, N_MELS + 1): mean log-mel over the step's four 20 ms frames, and log energy."""
    global _MEL
    if _MEL is None:
        _MEL = torch.from_numpy(_mel_matrix())
    if pcm is None:
        return np.full((n_steps, N_MELS + 1), -10.0, np.float32)
    x = torch.from_numpy(np.ascontiguousarray(pcm[:n_steps * HOP], dtype=np.float32))
    x = torch.nn.functional.pad(x, (0, max(0, n_steps * HOP - len(x))))
    spec = torch.stft(x, n_fft=512, hop_length=HOP // 4, win_length=512, window=torch.hann_window(512),
                      center=True, return_complex=True).abs() ** 2           # (257, frames)
    frames = spec.shape[1] // 4 * 4
    mel = torch.log(_MEL @ spec[:, :frames] + 1e-6)                          # (N_MELS, frames)
    mel = mel.reshape(N_MELS, -1, 4).mean(-1).T[:n_steps]                     # (steps, N_MELS)
    energy = torch.log(x.reshape(n_steps, HOP).pow(2).mean(1) + 1e-8)[:, None]
    out = torch.cat([mel, energy], 1).numpy()
    return np.pad(out, ((0, n_steps - len(out)), (0, 0)), constant_values=-10.0)


_VOICE = None


def voice_features(pcm: np.ndarray, n_steps: int) -> np.ndarray:
    """(n_steps, VOICE_DIMS): who is speaking, so the tagger can tell one user from the next across
    back-to-back sessions (Mimi codes carry this in the paper; log-mel means barely do). resemblyzer
    embeddings of 1.6-s windows every 0.4 s, projected by a fixed orthonormal matrix."""
    global _VOICE
    if _VOICE is None:
        from resemblyzer import VoiceEncoder

        proj, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(256, VOICE_DIMS)))
        _VOICE = (VoiceEncoder("cpu", verbose=False), proj.astype(np.float32) * 4.0)
    encoder, proj = _VOICE
    out = np.zeros((n_steps, VOICE_DIMS), np.float32)
    if len(pcm) < SR:
        return out
    with torch.no_grad():
        _, partials, slices = encoder.embed_utterance(pcm.astype(np.float32), return_partials=True, rate=2.5,
                                                      min_coverage=0.5)
    for emb, sl in zip(partials, slices):
        centre = (sl.start + sl.stop) * 160 // 2 // HOP  # resemblyzer frames are 10 ms
        out[max(0, centre - 2):min(n_steps, centre + 3)] = emb @ proj
    return out


def stream_features(stream: Stream, voice: bool = False) -> np.ndarray:
    n = stream.n_steps
    parts = [channel_features(stream.listen, n), channel_features(stream.speak, n)]
    if voice:
        parts.append(voice_features(stream.listen, n))
    return np.concatenate(parts, 1)


@dataclass
class TaggerConfig:
    d_model: int = 64
    layers: int = 2
    heads: int = 4
    stride: int = 4
    dropout: float = 0.1
    voice_features: bool = False  # add projected speaker embeddings to the per-step input

    @property
    def features(self) -> int:
        return AUDIO_FEATURES + (VOICE_DIMS if self.voice_features else 0)


class TriggerTagger(nn.Module):
    def __init__(self, cfg: TaggerConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.norm_in = nn.LayerNorm(cfg.features)
        self.inp = nn.Linear(cfg.features, d)
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

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, T, features) -> (B, T, 4) logits; T is padded to a multiple of the stride internally."""
        b, t, _ = feats.shape
        pad = (-t) % self.cfg.stride
        x = torch.nn.functional.pad(feats, (0, 0, 0, pad))
        h = torch.relu(self.local(self.inp(self.norm_in(x)).transpose(1, 2)))            # (B, d, T')
        z = self.down(h).transpose(1, 2)                                                  # (B, T'/s, d)
        z = self.encoder(z + self.positions(z.shape[1], z.shape[2], z.device))           # full attention
        up = z.repeat_interleave(self.cfg.stride, dim=1).transpose(1, 2)                 # (B, d, T')
        y = torch.relu(self.refine(torch.cat([h, up], 1))).transpose(1, 2)
        return self.head(y)[:, :t]


def clean_boundaries(pred: np.ndarray, min_steps: int = 12) -> np.ndarray:
    """Per-step argmax -> well-formed labels: one start per run of 1s, one end per run of 3s, short
    sessions dropped."""
    sessions = sessions_from_labels(_collapse(pred))
    return labels_from_sessions([s for s in sessions if s.steps >= min_steps], len(pred))


def _collapse(pred: np.ndarray) -> np.ndarray:
    out = np.array(pred, copy=True)
    i = 0
    while i < len(out):
        if out[i] in (START, END):
            j = i
            while j + 1 < len(out) and out[j + 1] == out[i]:
                j += 1
            keep = i if out[i] == START else j
            out[i:j + 1] = INSIDE
            out[keep] = pred[i]
            i = j + 1
        else:
            i += 1
    return out


class TaggerSegmenter:
    name = "tagger"

    def __init__(self, model: TriggerTagger, *, chunk_steps: int = 8192):
        self.model = model.eval()
        self.chunk_steps = chunk_steps

    @classmethod
    def load(cls, path: str | Path) -> TaggerSegmenter:
        ckpt = torch.load(Path(path), map_location="cpu", weights_only=False)
        model = TriggerTagger(TaggerConfig(**ckpt["config"]))
        model.load_state_dict(ckpt["state_dict"])
        return cls(model)

    def predict(self, feats: np.ndarray) -> np.ndarray:
        out = []
        with torch.no_grad():
            for s in range(0, len(feats), self.chunk_steps):
                x = torch.from_numpy(feats[s:s + self.chunk_steps])[None]
                out.append(self.model(x)[0].argmax(-1).numpy())
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def label(self, stream: Stream, identities=()) -> np.ndarray:
        return clean_boundaries(self.predict(stream_features(stream, self.model.cfg.voice_features)))


# --- training -----------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    steps: int = 1500
    batch: int = 8
    crop_steps: int = 1024
    lr: float = 2e-3
    lr_min: float = 1e-5
    boundary_weight: float = 10.0
    seed: int = 0


def train_tagger(stream_dirs: list[Path], out: Path, *, model_cfg: TaggerConfig = TaggerConfig(),
                 train_cfg: TrainConfig = TrainConfig(), progress=None, device: str = "cpu") -> dict:
    """Train on stream folders with labels; save a checkpoint that `TaggerSegmenter.load` reads."""
    torch.manual_seed(train_cfg.seed)
    rng = random.Random(train_cfg.seed)
    data = []
    for d in stream_dirs:
        s = load_stream(d)
        if s.labels is None:
            raise ValueError(f"{d}: no labels.csv or RTTM to train on")
        data.append((stream_features(s, model_cfg.voice_features), s.labels.astype(np.int64)))
    model = TriggerTagger(model_cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, train_cfg.steps, eta_min=train_cfg.lr_min)
    weights = torch.tensor([1.0, train_cfg.boundary_weight, 1.0, train_cfg.boundary_weight], device=device)
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    history = []
    t0 = time.perf_counter()
    steps = range(train_cfg.steps)
    for step in progress(steps) if progress else steps:
        xs, ys = [], []
        for _ in range(train_cfg.batch):
            f, y = rng.choice(data)
            n = min(train_cfg.crop_steps, len(f))
            a = rng.randrange(0, len(f) - n + 1)
            xs.append(f[a:a + n])
            ys.append(y[a:a + n])
        n = min(len(x) for x in xs)
        x = torch.from_numpy(np.stack([x[:n] for x in xs])).to(device)
        y = torch.from_numpy(np.stack([y[:n] for y in ys])).to(device)
        model.train()
        loss = loss_fn(model(x).reshape(-1, 4), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == train_cfg.steps - 1:
            history.append({"step": step, "loss": float(loss.detach()), "lr": sched.get_last_lr()[0]})
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": asdict(model_cfg), "state_dict": model.cpu().state_dict(), "train": asdict(train_cfg),
                "streams": len(stream_dirs)}, out)
    summary = {"checkpoint": str(out), "streams": len(stream_dirs), "seconds": time.perf_counter() - t0,
               "final_loss": history[-1]["loss"], "parameters": sum(p.numel() for p in model.parameters())}
    (out.with_suffix(".log.jsonl")).write_text("\n".join(json.dumps(h) for h in history) + "\n")
    return summary


__all__ = ["AUDIO_FEATURES", "END", "INSIDE", "NONE", "START", "TaggerConfig", "TaggerSegmenter", "TrainConfig", "TriggerTagger",
           "stream_features", "train_tagger"]

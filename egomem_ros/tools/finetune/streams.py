"""`egomem make-data streams`: transcripts -> speech -> Mimi tokens -> 17-channel training streams.

Per stream (paper §4.1): several dialogs one after another; each user speaks with a random espeak-ng
voice (any `TtsFn` can replace it), the robot with one fixed voice; the next user turn interrupts the
robot's answer with p = 0.3; echo of the robot in the microphone with p = 0.3 (gain 0-0.2, delay
0.1-0.5 s) and background noise. Both channels are tokenized by the checkpoint's Mimi. The text
channel holds the robot's words from 2 steps before its audio ("natural monologue"), preceded by the
ground-truth `<retr>` block on turns that query the graph. The dialog part is at most
`max_steps - layout.total` steps: the MemChunk slots (L1 0-511, L2 512-767) are filled per sample.
"""
from __future__ import annotations

import logging
import math
import random
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...dialog.pinned_memory import RegionLayout
from ..datagen.synth import FINETUNE_NOISES as NOISES
from ..datagen.synth import FINETUNE_VOICES as VOICES
from ..datagen.synth import ROBOT_VOICE, Voice, microphone_mix, tts
from ...retrieval.retr_protocol import RetrQuery
from .chunks import ChunkTexts
from .masks import trigger_labels
from .schema import Dialog

log = logging.getLogger(__name__)
SAMPLE_RATE, FRAME = 24_000, 1920  # Mimi: 12.5 steps/s
TEXT_PAD, TEXT_EPAD = 3, 0        # moshi's text padding and end-of-padding ids
TtsFn = Callable[[str, Voice, random.Random], np.ndarray]  # text, voice -> float PCM at 24 kHz


@dataclass
class StreamConfig:
    max_steps: int = 8192
    layout: RegionLayout = field(default_factory=RegionLayout)
    dialogs_per_stream: tuple[int, int] = (2, 4)
    text_lead_steps: int = 2
    p_interrupt: float = 0.3
    p_echo: float = 0.3
    snr_db: tuple[float, float] = (10.0, 30.0)
    split: str = "train"

    @property
    def dialog_steps(self) -> int:
        return self.max_steps - self.layout.total


def word_tones_tts(text: str, voice: Voice, rng: random.Random) -> np.ndarray:
    """NOT speech: one 0.2 s tone per word (pitch from the word, gain from the voice). A fast, deterministic
    `TtsFn` for tests and the CPU mechanism proof; real data uses espeak-ng (the default) or a real TTS."""
    t = np.arange(int(0.2 * SAMPLE_RATE)) / SAMPLE_RATE
    gap = np.zeros(int(0.04 * SAMPLE_RATE), np.float32)
    parts = []
    for word in text.split():
        freq = 150 + zlib.crc32(word.lower().encode()) % 500
        parts += [(np.sin(2 * np.pi * freq * t) * voice.gain).astype(np.float32), gap]
    return np.concatenate(parts) if parts else gap


def encode_words(tokenizer, text: str, span: tuple[int, int] | None = None) -> tuple[list[int], tuple[int, int] | None]:
    """Token ids of `text`, word by word (what sentencepiece does at whitespace), and the token range
    of the words that overlap the character `span`."""
    ids: list[int] = []
    token_span = None
    pos = 0
    for word in text.split():
        start = text.index(word, pos)
        pos = start + len(word)
        pieces = tokenizer.encode(word)
        if span and start < span[1] and pos > span[0]:
            token_span = (token_span[0] if token_span else len(ids), len(ids) + len(pieces))
        ids += pieces
    return ids, token_span


def _step(sample: int) -> int:
    return sample // FRAME


class StreamBuilder:
    """Builds one stream at a time; `mimi` is a moshi MimiModel (8 codebooks), `tokenizer` sentencepiece."""

    def __init__(self, mimi, tokenizer, chunks: ChunkTexts, cfg: StreamConfig, tts_fn: TtsFn | None = None):
        self.mimi, self.tokenizer, self.chunks, self.cfg = mimi, tokenizer, chunks, cfg
        self._tmp = tempfile.TemporaryDirectory()
        self.tts: TtsFn = tts_fn or (lambda text, voice, rng: tts(text, voice, rng, Path(self._tmp.name),
                                                                     SAMPLE_RATE))
        self.robot = Voice(ROBOT_VOICE, 165, 45, 0.6)

    def close(self) -> None:
        self._tmp.cleanup()

    def build(self, dialogs: Sequence[Dialog], seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """codes [17, T] int32 (text, 8 robot, 8 user codebooks), trigger labels [T] int8, metadata."""
        rng, nrng = random.Random(seed), np.random.default_rng(seed)
        limit = self.cfg.dialog_steps * FRAME
        listen_clips, speak_clips, text_blocks, metas = [], [], [], []
        t = int(rng.uniform(0.5, 2.0) * SAMPLE_RATE)
        voices = VOICES[self.cfg.split]
        for d in dialogs:
            voice = Voice.random(rng.choice(voices), rng)
            meta, clips, end = self._dialog(d, voice, t, rng, limit)
            if meta is None:
                if not metas:
                    log.warning("dialog %s alone exceeds %d steps: not used", d.id, self.cfg.dialog_steps)
                break
            listen_clips += clips[0]
            speak_clips += clips[1]
            text_blocks += clips[2]
            metas.append(meta)
            t = end + int((rng.uniform(0.3, 1.0) if rng.random() < 0.3 else rng.uniform(2.0, 6.0)) * SAMPLE_RATE)
        total = min(limit, math.ceil((t + SAMPLE_RATE) / FRAME) * FRAME)
        listen, speak = np.zeros(total, np.float32), np.zeros(total, np.float32)
        for buf, clips in ((listen, listen_clips), (speak, speak_clips)):
            for start, pcm in clips:
                n = max(0, min(len(pcm), total - start))
                buf[start:start + n] += pcm[:n]
        listen = microphone_mix(listen, speak, rng, nrng, p_echo=self.cfg.p_echo, snr_db=self.cfg.snr_db,
                                noise_kinds=NOISES[self.cfg.split], sample_rate=SAMPLE_RATE)
        steps = total // FRAME
        text = np.full(steps, TEXT_PAD, np.int64)
        for start, ids in text_blocks:
            if 0 < start <= steps and text[start - 1] == TEXT_PAD:
                text[start - 1] = TEXT_EPAD
            n = max(0, min(len(ids), steps - start))
            text[start:start + n] = ids[:n]
        codes = np.concatenate([text[None], self._mimi(speak, steps), self._mimi(listen, steps)]).astype(np.int32)
        labels = trigger_labels({"dialogs": metas}, steps)
        return codes, labels, {"steps": steps, "dialogs": metas}

    def _dialog(self, d: Dialog, voice: Voice, t: int, rng: random.Random, limit: int):
        """Lay out one dialog from sample `t`; None when it does not fit before `limit`."""
        listen, speak, text, turns = [], [], [], []
        l2_prev = ""
        for i, turn in enumerate(d.turns):
            user = self.tts(turn.user, voice, rng)
            u_start, u_end = t, t + len(user)
            query_ids = []
            if turn.has_query:
                query_ids = self.tokenizer.encode(RetrQuery(tuple(turn.relation_query),
                                                            tuple(turn.keyword_query)).block())
            q_start = _step(u_end) + 1
            q_end = q_start + len(query_ids)
            resp_ids, fact = encode_words(self.tokenizer, turn.robot, turn.answer_span)
            audio_step = max(_step(u_end + int(rng.uniform(0.2, 0.7) * SAMPLE_RATE)), q_end + self.cfg.text_lead_steps)
            text_start = audio_step - self.cfg.text_lead_steps
            robot = self.tts(turn.robot, self.robot, rng)
            r_start = audio_step * FRAME
            if i < len(d.turns) - 1 and rng.random() < self.cfg.p_interrupt:
                cut = int(len(robot) * rng.uniform(0.3, 0.7))  # the user barges in; the robot stops 0.3 s later
                robot = robot[:cut + int(0.3 * SAMPLE_RATE)]
                t_next = r_start + cut
            else:
                t_next = r_start + len(robot) + int(rng.uniform(0.3, 1.0) * SAMPLE_RATE)
            r_end = r_start + len(robot)
            if r_end > limit:
                return None, None, 0
            end_step = math.ceil(r_end / FRAME)
            resp_ids = resp_ids[:max(0, end_step - text_start)]  # an interrupted answer's words stop with it
            l2 = self.chunks.level2(d.user, turn) if turn.has_query else l2_prev
            listen.append((u_start, user))
            speak.append((r_start, robot))
            if query_ids:
                text.append((q_start, query_ids))
            text.append((text_start, resp_ids))
            fact_steps = None
            if fact and fact[1] <= len(resp_ids):
                fact_steps = [text_start + fact[0], text_start + fact[1]]
            turns.append({"user_text": turn.user, "robot_text": turn.robot, "audio_start": _step(u_start),
                          "user_end": _step(u_end), "query": [q_start, q_end], "has_query": bool(query_ids),
                          "text_start": text_start, "audio_step": audio_step,
                          "end": end_step, "l2_before": l2_prev, "l2": l2, "fact_steps": fact_steps,
                          "fact_text": turn.robot[turn.answer_span[0]:turn.answer_span[1]] if turn.answer_span else "",
                          "response_ids": len(resp_ids)})
            l2_prev = l2
            t = t_next
        meta = {"dialog": d.id, "user": d.user, "level": d.level, "start": turns[0]["audio_start"],
                "end": turns[-1]["end"], "l1": self.chunks.level1(d.user), "turns": turns}
        return meta, (listen, speak, text), t

    def _mimi(self, pcm: np.ndarray, steps: int) -> np.ndarray:
        import torch

        with torch.no_grad():
            device = next(self.mimi.parameters()).device
            x = torch.from_numpy(np.ascontiguousarray(pcm[:steps * FRAME], np.float32)).to(device).view(1, 1, -1)
            codes = self.mimi.encode(x)[0, :8].cpu().numpy()
        if codes.shape[0] != 8 or codes.shape[1] != steps:
            raise ValueError(f"Mimi returned codes of shape {codes.shape}, expected (8, {steps})")
        return codes


def plan_streams(dialogs: Sequence[Dialog], cfg: StreamConfig, seed: int, repeats: int = 1) -> list[tuple[str, dict]]:
    """Group the dialogs into streams (`dialogs_per_stream`, shuffled, every dialog `repeats` times)."""
    rng = random.Random(seed)
    jobs: list[tuple[str, dict]] = []
    for _ in range(repeats):
        order = [d.id for d in dialogs]
        rng.shuffle(order)
        while order:
            k = rng.randint(*cfg.dialogs_per_stream)
            group, order = order[:k], order[k:]
            jobs.append((f"s{len(jobs):06d}", {"dialogs": group, "seed": seed * 1_000_003 + len(jobs)}))
    return jobs


def make_streams(data, models, out: Path, cfg: StreamConfig, *, seed: int = 0, repeats: int = 1,
                 per_shard: int = 64, rerank: str = "lexical", tts_fn: TtsFn | None = None,
                 progress=None) -> dict[str, Any]:
    """Transcripts (`schema.Transcripts`) + a loaded checkpoint (`MoshiModels`) -> shards under `out`."""
    from ...memchunk import SentencePieceTokenCounter
    from .shards import Stream, write_streams

    if cfg.split not in VOICES:
        raise ValueError(f"split must be one of {sorted(VOICES)}, not {cfg.split!r}")
    if cfg.dialog_steps < 100:
        raise ValueError(f"max_steps {cfg.max_steps} leaves {cfg.dialog_steps} dialog steps after the slots")
    counter = SentencePieceTokenCounter(models.info.tokenizer, processor=models.tokenizer)
    builder = StreamBuilder(models.mimi, models.tokenizer, ChunkTexts(data, counter, cfg.layout, rerank), cfg, tts_fn)
    by_id = {d.id: d for d in data.dialogs}
    header = {"checkpoint": str(models.info.moshi_weights), "tokenizer": counter.name,
              "layout": {"l1_steps": cfg.layout.l1_steps, "l2_steps": cfg.layout.l2_steps},
              "max_steps": cfg.max_steps, "transcripts_backend": data.backend, "note": data.note}

    def build(spec: dict) -> Stream:
        codes, labels, meta = builder.build([by_id[i] for i in spec["dialogs"]], spec["seed"])
        return Stream(spec["id"], codes, labels, meta)

    jobs = [(sid, dict(spec, id=sid)) for sid, spec in plan_streams(data.dialogs, cfg, seed, repeats)]
    try:
        return write_streams(out, header, jobs, build, per_shard=per_shard, progress=progress)
    finally:
        builder.close()

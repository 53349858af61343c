"""DialogEngine: a moshi-family full-duplex model whose Level-1 / Level-2 MemChunks are always attended.

One `step` is one 80 ms frame (1920 samples at 24 kHz): Mimi encodes the user's audio, `LMGen` predicts
one text token and the robot's 8 audio tokens, Mimi decodes them. `set_memchunk` may be called from any
thread; the new chunk is tokenized at once and written into its pinned region between two steps with one
batched forward pass (`pinned_memory.MemoryBank.write`). `<retr>` queries in the text stream come back
from `step` so the caller can answer them asynchronously.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from moshi.models.lm import LMGen

from ..memchunk import LEVEL1, LEVEL2, SentencePieceTokenCounter, clean_text, truncate_lines
from ..retrieval.retr_protocol import RetrQuery, RetrStreamParser
from .moshi_checkpoint import MoshiModels
from .pinned_memory import MemoryBank, RegionLayout

log = logging.getLogger(__name__)

SAMPLE_RATE = 24_000
FRAME_SAMPLES = 1920  # 80 ms at 24 kHz: one model step (12.5 steps/s)


@dataclass
class StepOutput:
    pcm: np.ndarray | None  # float32 [1920] of robot speech, None during the first (delay) steps
    text: str | None  # the text piece of this step, None for pads
    queries: list[RetrQuery] = field(default_factory=list)  # completed `<retr>` blocks


@dataclass
class ChunkUpdate:
    level: int
    text: str
    token_count: int
    dropped_lines: int
    seconds: float = 0.0


class DialogEngine:
    def __init__(self, models: MoshiModels, layout: RegionLayout = RegionLayout(), *, use_sampling: bool = True,
                 temp: float = 0.8, temp_text: float = 0.7, top_k: int = 250, top_k_text: int = 25,
                 horizon: int | None | str = "auto", graph_prefill: bool = True):
        self.lm, self.mimi, self.tokenizer = models.lm, models.mimi, models.tokenizer
        if int(self.mimi.sample_rate) != SAMPLE_RATE or self.mimi.frame_size != FRAME_SAMPLES:
            raise ValueError(f"Mimi runs at {self.mimi.sample_rate} Hz / {self.mimi.frame_size} samples per frame; "
                             f"the engine needs {SAMPLE_RATE} Hz / {FRAME_SAMPLES}")
        self.bank = MemoryBank(self.lm, layout, horizon=horizon, graph_prefill=graph_prefill)
        self.counter = SentencePieceTokenCounter(models.info.tokenizer, processor=self.tokenizer)
        self.lm_gen = LMGen(self.lm, use_sampling=use_sampling, temp=temp, temp_text=temp_text, top_k=top_k,
                            top_k_text=top_k_text)
        self.parser = RetrStreamParser()
        self._pending: dict[int, ChunkUpdate] = {}
        self._lock = threading.Lock()
        self.last_update: dict[int, ChunkUpdate] = {}
        self.mimi.streaming_forever(1)
        self.lm_gen.streaming_forever(1)
        for level in (LEVEL1, LEVEL2):  # empty regions (pads) until chunks arrive: the fine-tuning layout
            self.set_memchunk(level, "")

    # -- chunks -------------------------------------------------------------------------------------
    def set_memchunk(self, level: int, text: str | bytes) -> ChunkUpdate:
        """Queue a new chunk for `level` (1 or 2); it is attended from the next step on.

        Text longer than the region loses whole lines from its end (logged). Empty text fills the
        region with pad tokens, as the paper does when no user is recognised.
        """
        if level not in (LEVEL1, LEVEL2):
            raise ValueError(f"MemChunk level must be 1 or 2, got {level!r}")
        text = clean_text(text)
        _, steps = self.bank.layout.span(level)
        packed = truncate_lines(text, steps, self.counter)
        if packed.dropped:
            log.warning("Level-%d MemChunk (%d tokens) exceeds its %d-step region: dropped its last %d line(s)",
                        level, self.counter.count(text), steps, packed.dropped)
        update = ChunkUpdate(level, packed.text, packed.token_count, packed.dropped)
        with self._lock:
            self._pending[level] = update  # a newer chunk for the same level replaces an unapplied one
        return update

    def apply_pending_chunks(self) -> list[ChunkUpdate]:
        """Write queued chunks into their regions (one forward pass each). Called before every step."""
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
        for update in pending:
            start = time.perf_counter()
            self.bank.write(update.level, self.tokenizer.encode(update.text) if update.text else [])
            if self.lm.device.type == "cuda":
                torch.cuda.synchronize()
            update.seconds = time.perf_counter() - start
            self.last_update[update.level] = update
            log.info("Level-%d MemChunk updated: %d tokens in %.1f ms", update.level, update.token_count,
                     update.seconds * 1e3)
        return pending

    # -- audio ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, pcm_in: np.ndarray) -> StepOutput:
        pcm = np.asarray(pcm_in)
        if pcm.ndim != 1 or pcm.shape[0] != FRAME_SAMPLES:
            raise ValueError(f"a dialog step takes {FRAME_SAMPLES} mono samples at {SAMPLE_RATE} Hz (80 ms); "
                             f"got shape {pcm.shape}")
        if not np.issubdtype(pcm.dtype, np.floating):
            raise ValueError(f"PCM must be float in [-1, 1], got {pcm.dtype}")
        self.apply_pending_chunks()
        frame = torch.from_numpy(pcm.astype(np.float32, copy=False)).to(self.lm.device).view(1, 1, -1)
        codes = self.mimi.encode(frame)
        tokens = self.lm_gen.step(codes[:, :, :1])
        if tokens is None:
            return StepOutput(None, None)
        out_pcm = self.mimi.decode(tokens[:, 1:]).float().cpu().numpy().reshape(-1)
        piece = self.text_piece(int(tokens[0, 0, 0]))
        return StepOutput(out_pcm, piece, self.parser.feed(piece) if piece else [])

    def text_piece(self, token: int) -> str | None:
        """moshi's convention: ids 0 and 3 are text padding; '▁' marks a word start."""
        if token in (0, 3) or token >= self.tokenizer.vocab_size():
            return None
        return self.tokenizer.id_to_piece(token).replace("\u2581", " ")

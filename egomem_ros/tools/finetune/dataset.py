"""Training samples from token-stream shards: codes, supervision mask and MemChunk token ids.

A sample is cropped after the last supervised step (the model is causal: later steps cannot change
what it predicts before them). MemChunk texts are cut to their region with `memchunk.truncate_lines`,
the function the dialog runtime uses, then tokenized with the checkpoint's tokenizer.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...dialog.pinned_memory import RegionLayout
from ...memchunk import LEVEL1, LEVEL2, TokenCounter, truncate_lines
from .masks import TASKS, Sample, mask_array, samples_for
from .shards import Stream, iter_streams

log = logging.getLogger(__name__)


@dataclass
class Batch:
    codes: torch.Tensor    # [B, K=17, T] long, the zero token (-1) after each sample's end
    mask: torch.Tensor     # [B, T] bool: supervised steps
    l1_ids: list[list[int]]
    l2_ids: list[list[int]]
    samples: list[Sample]


class ChunkEncoder:
    """MemChunk text -> region token ids, cut by whole lines exactly as `DialogEngine.set_memchunk` does."""

    def __init__(self, tokenizer, counter: TokenCounter, layout: RegionLayout):
        self.tokenizer, self.counter, self.layout = tokenizer, counter, layout
        self._cache: dict[tuple[int, str], list[int]] = {}

    def __call__(self, level: int, text: str) -> list[int]:
        key = (level, text)
        if key not in self._cache:
            _, steps = self.layout.span(level)
            packed = truncate_lines(text, steps, self.counter)
            if packed.dropped:
                log.debug("Level-%d chunk cut by %d line(s) to fit %d steps", level, packed.dropped, steps)
            self._cache[key] = self.tokenizer.encode(packed.text) if packed.text else []
        return self._cache[key]


class SampleSet:
    """Every sample of the chosen tasks in the given stream folders (corrupt shards skipped)."""

    def __init__(self, folders: Sequence[Path], tasks: Iterable[str] = TASKS, *, verify: bool = True):
        self.streams: dict[str, Stream] = {}
        self.samples: list[Sample] = []
        for folder in folders:
            for stream in iter_streams(Path(folder), verify=verify):
                key = f"{Path(folder).name}/{stream.id}"
                self.streams[key] = stream
                self.samples += samples_for(key, stream.meta, tasks)
        if not self.samples:
            raise ValueError(f"no training samples for tasks {sorted(set(tasks))} in {[str(f) for f in folders]}")

    def __len__(self) -> int:
        return len(self.samples)

    def batch(self, indices: Sequence[int], chunks: ChunkEncoder, *, l1_override: Sequence[str] | None = None
              ) -> Batch:
        """Collate samples; `l1_override` replaces their Level-1 texts (blanked or swapped chunks)."""
        chosen = [self.samples[i] for i in indices]
        ends = [max(e for _, e in s.spans) for s in chosen]
        T, K = max(ends), self.streams[chosen[0].stream].codes.shape[0]
        codes = torch.full((len(chosen), K, T), -1, dtype=torch.long)
        mask = torch.zeros(len(chosen), T, dtype=torch.bool)
        for b, (s, end) in enumerate(zip(chosen, ends)):
            stream_codes = self.streams[s.stream].codes
            n = min(end, stream_codes.shape[1])
            codes[b, :, :n] = torch.from_numpy(np.asarray(stream_codes[:, :n], dtype=np.int64))
            mask[b, :n] = torch.from_numpy(mask_array(s.spans, n))
        l1 = l1_override if l1_override is not None else [s.l1 for s in chosen]
        return Batch(codes, mask, [chunks(LEVEL1, t) for t in l1], [chunks(LEVEL2, s.l2) for s in chosen], chosen)

"""The pinned Level-1 / Level-2 regions of a moshi LM and their one-pass update.

A region holds `steps` time steps (L1 512, L2 256, as in paper §4.1): the chunk's text tokens, then the
text pad token; every audio channel holds moshi's zero token (-1, embedded as zeros). A chunk update
runs ONE `lm.forward_text` over `[1, 17, steps]` outside the dialog's streaming state, its RoPE shifted
to the region's stored positions (pinned_attention), and every layer copies its keys/values straight into
that region only. The regions are independent blocks: L2 does
not attend L1 while it is prefilled, so a new L1 never invalidates L2 and the fine-tuning layout must
mask them the same way (see docs/dialog.md).
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from moshi.models.lm import LMModel
from moshi.modules.streaming import StreamingModule
from torch import nn

from ..memchunk import LEVEL1, LEVEL2
from .pinned_attention import PinnedAttention, PrefillCaptured, RegionRope, install_pinned_attention, layer_ropes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegionLayout:
    """Steps reserved per region; L1 first, L2 right after (positions 0-511 and 512-767)."""

    l1_steps: int = 512
    l2_steps: int = 256

    @property
    def total(self) -> int:
        return self.l1_steps + self.l2_steps

    def span(self, level: int) -> tuple[int, int]:
        if level == LEVEL1:
            return 0, self.l1_steps
        if level == LEVEL2:
            return self.l1_steps, self.l2_steps
        raise ValueError(f"MemChunk level must be 1 or 2, got {level!r}")


def region_tokens(lm: LMModel, layout: RegionLayout, level: int, text_ids: Sequence[int]) -> torch.Tensor:
    """`[1, K, steps]` of one region: text ids then pad on channel 0, the zero token on every audio
    channel. The runtime prefill and the fine-tuning samples both build regions here."""
    _, steps = layout.span(level)
    if len(text_ids) > steps:
        raise ValueError(f"{len(text_ids)} text tokens do not fit the {steps}-step Level-{level} region")
    tokens = torch.full((1, lm.num_codebooks, steps), lm.zero_token_id, dtype=torch.long)
    tokens[0, 0, :] = lm.text_padding_token_id
    tokens[0, 0, :len(text_ids)] = torch.as_tensor(list(text_ids), dtype=torch.long)
    return tokens


def default_horizon(context: int | None) -> int | None:
    """Where pinned distances stop growing: the last in-window step (see pinned_attention)."""
    return None if context is None else context - 1


def cuda_graph_of(fn: Callable[[], object]) -> torch.cuda.CUDAGraph:
    """`fn` captured as a CUDA graph, after one warm-up run on a side stream as torch's CUDA graph docs ask."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph


def streaming_modules(module: nn.Module) -> list[StreamingModule]:
    return [m for m in module.modules() if isinstance(m, StreamingModule)]


@contextlib.contextmanager
def detached_streaming(modules: Sequence[StreamingModule]) -> Iterator[None]:
    """Run `modules` outside their streaming state (the dialog's ring caches stay untouched). The list
    comes from `streaming_modules`, once: walking a 7B model's modules on every switch costs ~1 ms."""
    saved = [(m, m._streaming_state) for m in modules]  # noqa: SLF001 - moshi's streaming state
    for m, _ in saved:
        m._streaming_state = None  # noqa: SLF001 - moshi's streaming state
    try:
        yield
    finally:
        for m, state in saved:
            m._streaming_state = state  # noqa: SLF001 - moshi's streaming state


class MemoryBank:
    """Pinned keys/values of every self-attention layer, plus which regions are attended.

    `graph_safe` (default on CUDA, where moshi captures the step in a CUDA graph): always attend all
    regions and mask inactive ones with an additive bias updated in place, so no Python branch is frozen
    into the graph. On CPU only the active span is attended, so an unused region costs nothing.
    """

    def __init__(self, lm: LMModel, layout: RegionLayout = RegionLayout(), horizon: int | None | str = "auto",
                 graph_safe: bool | None = None, joint_softmax: bool = True, graph_prefill: bool = True):
        self.lm, self.layout = lm, layout
        self.layers: list[PinnedAttention] = install_pinned_attention(lm.transformer, self)
        first = self.layers[0]
        if first.context is not None and layout.total > first.context:
            raise ValueError(f"MemChunk regions ({layout.total} steps) exceed the model's context {first.context}")
        if horizon == "auto":
            horizon = default_horizon(first.context)
        self.horizon: int | None = horizon  # type: ignore[assignment]
        device, dtype = lm.device, lm.dtype
        shape = (len(self.layers), 1, first.num_heads // first.kv_repeat, layout.total,
                 first.embed_dim // first.num_heads)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.bias = torch.full((1, 1, 1, layout.total), float("-inf"), device=device, dtype=dtype)
        self.graph_safe = device.type == "cuda" if graph_safe is None else graph_safe
        # how a step attends: one softmax over window + pinned keys (mat-vec products), or one fused
        # attention per part merged by log-sum-exp; joint was faster on CPU and on an H200 (docs/dialog.md)
        self.joint_softmax = joint_softmax
        self.fused_attention = True
        # CUDA: a switch replays a CUDA graph of the region update (_write_graphed). 7B,
        # H200: an L1 switch 19 ms instead of 43-47 ms eager; the DialogEngine step around it 22.6 ms with
        # or without (docs/dialog.md). Off: the eager forward (e.g. where capture would cost the LM's
        # "first graph of the process" speed, which an engine with Mimi's graphs never has).
        self.graph_prefill = graph_prefill and device.type == "cuda"
        self._prefill_graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self._streaming = streaming_modules(lm.transformer)
        self._ropes: list[RegionRope] = layer_ropes(self.layers)  # type: ignore[assignment]  # re-classed on install
        if not self._ropes:
            raise ValueError("pinned regions need a RoPE transformer")
        self._region_slots: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self.record_mass = False
        self.active: dict[int, bool] = {LEVEL1: False, LEVEL2: False}
        self._span = (0, 0)
        self._span_kv: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._step_shared: dict[str, object] = {}
        self._prefilling = False

    # -- read side, called by every layer on every step ------------------------------------------
    def attended(self) -> bool:
        return not self._prefilling and (self.graph_safe or self._span[1] > self._span[0])

    def layer_kv(self, layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if self.graph_safe:
            return self.keys[layer], self.values[layer], self.bias
        return (*self._span_kv[layer], None)

    def step_values(self, layer: int) -> dict[str, object]:
        """Per-step values that every layer shares (pinned query rotation, window mask): layer 0 starts
        a new step, so they are built once per step, not once per layer (also inside a CUDA graph)."""
        if layer == 0:
            self._step_shared = {}
        return self._step_shared

    # -- write side, called between steps ---------------------------------------------------------
    def set_active(self, level: int, on: bool) -> None:
        start, steps = self.layout.span(level)
        self.active[level] = on
        self.bias[..., start:start + steps] = 0.0 if on else float("-inf")
        spans = [self.layout.span(lv) for lv, a in sorted(self.active.items()) if a]
        # L1 and L2 are adjacent, so the active part is always one contiguous span
        self._span = (spans[0][0], spans[-1][0] + spans[-1][1]) if spans else (0, 0)
        if not self.graph_safe:  # views, made once per switch rather than sliced by every layer every step
            a, b = self._span
            self._span_kv = [(self.keys[i, :, :, a:b], self.values[i, :, :, a:b]) for i in range(len(self.layers))]

    def region_tokens(self, level: int, text_ids: Sequence[int]) -> torch.Tensor:
        return region_tokens(self.lm, self.layout, level, text_ids).to(self.lm.device)

    @torch.no_grad()
    def write(self, level: int, text_ids: Sequence[int], method: str = "batched") -> None:
        """Fill one region's keys/values from its tokens and attend it from the next step on.

        `batched` is the runtime path (one forward over the region; a CUDA graph replay when
        `graph_prefill` is on); `stepwise` feeds the same tokens one step at a time through a fresh
        streaming state and exists to check that both agree.
        """
        tokens = self.region_tokens(level, text_ids)
        if method == "batched" and self.graph_prefill and tokens.is_cuda:
            try:
                self._write_graphed(level, tokens)
                self.set_active(level, True)
                return
            except RuntimeError as exc:  # capture refused on this GPU/torch: eager from now on
                self.graph_prefill = False
                self._prefill_graphs.clear()
                log.warning("CUDA graph capture of the MemChunk prefill failed (%s): eager prefill", exc)
        try:
            if method == "batched":
                self._run_prefill(level, tokens)
            else:
                self._prefill_stepwise(level, tokens)
        except BaseException:  # the region may be half rewritten: never attend it so
            self.set_active(level, False)
            raise
        self.set_active(level, True)

    def _slots(self, level: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every layer's key and value views of one region (made once per level)."""
        if level not in self._region_slots:
            start, steps = self.layout.span(level)
            self._region_slots[level] = [(self.keys[i, :, :, start:start + steps],
                                          self.values[i, :, :, start:start + steps])
                                         for i in range(len(self.layers))]
        return self._region_slots[level]

    @contextlib.contextmanager
    def _prefill_state(self, level: int) -> Iterator[None]:
        """Outside the dialog's streaming state, regions unattended, RoPE at the region's stored
        positions: key j at `start + j - R - horizon` (see pinned_attention)."""
        start, _ = self.layout.span(level)
        self._prefilling = True
        for rope in self._ropes:
            rope.shift = start - self.layout.total - (self.horizon or 0)
        try:
            with detached_streaming(self._streaming):
                yield
        finally:
            self._prefilling = False
            for rope in self._ropes:
                rope.shift = 0

    def _write_graphed(self, level: int, tokens: torch.Tensor) -> None:
        """The region update (prefill and copy into the bank) as a CUDA graph, captured once per level
        and replayed on every switch.

        An eager forward over a region is bound by Python/kernel-launch time on a large GPU (a 7B
        forward over 512 steps: 43-80 ms eager, 19 ms as a graph on an H200). The last layer still
        stops after its keys/values: the exception is caught inside the capture, so the graph simply
        holds fewer kernels.
        """
        if level not in self._prefill_graphs:
            static = tokens.clone()
            graph = cuda_graph_of(lambda: self._run_prefill(level, static))
            self._prefill_graphs[level] = (graph, static)
        graph, static = self._prefill_graphs[level]
        static.copy_(tokens)
        graph.replay()

    def _run_prefill(self, level: int, tokens: torch.Tensor) -> None:
        """One forward over the region; every layer copies its keys/values into the region's slots and
        the last layer then ends the forward."""
        for layer, slot in zip(self.layers, self._slots(level)):
            layer.capture = slot
        try:
            with self._prefill_state(level):
                self.lm.forward_text(tokens)
        except PrefillCaptured:
            pass
        finally:
            for layer in self.layers:
                layer.capture = None

    def _prefill_stepwise(self, level: int, tokens: torch.Tensor) -> None:
        steps = tokens.shape[-1]
        with self._prefill_state(level), self.lm.transformer.streaming(1):
            for t in range(steps):
                self.lm.forward_text(tokens[:, :, t:t + 1])
            for layer, (keys, values) in zip(self.layers, self._slots(level)):
                cache = layer._streaming_state.kv_cache.cache  # type: ignore[union-attr]  # noqa: SLF001 - moshi's KV cache
                keys.copy_(cache[0][:, :, :steps])
                values.copy_(cache[1][:, :, :steps])

    @contextlib.contextmanager
    def stock_attention(self) -> Iterator[None]:
        """Inside, the layers forget the bank and run moshi's own attention (to time stock moshi against
        the pinned step on one model)."""
        for layer in self.layers:
            layer.pinned = None
        try:
            yield
        finally:
            for layer in self.layers:
                layer.pinned = self

    def pinned_mass(self) -> float:
        """Mean attention probability on the pinned regions at the last step (needs `record_mass`)."""
        masses = [layer.last_pinned_mass for layer in self.layers if layer.last_pinned_mass is not None]
        return float(torch.stack(masses).mean()) if masses else 0.0

"""Attention with pinned MemChunk regions: every step attends to the Level-1 / Level-2 chunk keys, held
outside moshi's sliding `RingKVCache`, however long the stream runs.

Positions (why this choice is right). The fine-tuning layout (paper §4.1) puts L1 at positions 0-511,
L2 at 512-767 and the dialog right after. So the pinned keys are stored rotated at fixed *virtual*
positions `j - R` (R = total pinned steps), i.e. just before dialog step 0, which moshi rotates at its
own streaming offset. A query at dialog step p is rotated a second time, for the pinned part only, at
`min(p, horizon)`. RoPE scores depend only on the difference, so the pinned key j is seen at distance
`R + min(p, horizon) - j`. (Implementation: keys are stored at `j - R - horizon` and the query rotated
at `min(p, horizon) - horizon`, which is no rotation at all once p > horizon: the steady state of a
long stream costs no extra RoPE work.)

- while p <= horizon this is exactly the training layout (chunk, then the dialog, contiguous);
- with `horizon = context - 1` (the default), from then on the chunk sits right before the oldest key
  of the sliding window, at the distances the last in-window step saw. Distances never grow without
  bound, which a RoPE model has never seen, and the chunk keys are rotated once per chunk update, never
  per step (the per-step cost is one extra rotation of the query).

Nothing is forked: `install_pinned_attention` re-classes moshi's own `StreamingMultiheadAttention`
modules in place, so checkpoints, LoRA and the stock path (no region attended) are unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from einops import rearrange
from moshi.modules.transformer import (KVCacheResult, StreamingMultiheadAttention, apply_weights_per_step,
                                       expand_repeated_kv)
from torch import nn


class PinnedKVSource(Protocol):
    """What the attention layers read the pinned regions from (see `pinned_memory.MemoryBank`)."""

    horizon: int | None
    record_mass: bool

    def attended(self) -> bool: ...

    def layer_kv(self, layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]: ...


def rope_rotate(x: torch.Tensor, positions: torch.Tensor, max_period: float, interleave: bool) -> torch.Tensor:
    """Rotate `x` [B, H, T, D] to arbitrary `positions` [B or 1, T] with moshi's RoPE convention.

    moshi's `apply_rope` only takes `offset + arange(T)`; the pinned part needs clamped positions and
    constant shifts. Rotations compose, so rotating an already rotated key by s moves it s steps.
    """
    B, H, T, D = x.shape
    ds = torch.arange(D // 2, device=x.device, dtype=torch.float32)
    freqs = torch.exp(ds * (-math.log(max_period) * 2 / D))
    ts = positions.to(torch.float32).reshape(positions.shape[0], 1, T, 1)
    rotr, roti = torch.cos(freqs * ts), torch.sin(freqs * ts)
    if interleave:
        pairs = x.reshape(B, H, T, D // 2, 2)
        xr, xi = pairs[..., 0].float(), pairs[..., 1].float()
    else:
        xr, xi = x[..., : D // 2].float(), x[..., D // 2:].float()
    out_r, out_i = xr * rotr - xi * roti, xr * roti + xi * rotr
    if interleave:
        return torch.stack([out_r, out_i], dim=-1).reshape(B, H, T, D).to(x.dtype)
    return torch.cat([out_r, out_i], dim=-1).to(x.dtype)


_FLASH_CPU = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


def attend_with_lse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None,
                    scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention output and its log-sum-exp [B, H, T], so two key sets merge into one exact softmax.

    On CPU this is torch's fused flash kernel (the one `scaled_dot_product_attention` runs, which
    returns the log-sum-exp too); elsewhere the plain math, which at one query per step is bandwidth-bound.
    """
    if q.device.type == "cpu" and _FLASH_CPU is not None:
        out, lse = _FLASH_CPU(q, k, v, 0.0, False, attn_mask=bias, scale=scale)[:2]
        return out, lse
    scores = torch.matmul(q, k.transpose(-1, -2)).float() * scale
    if bias is not None:
        scores = scores + bias.float()
    lse = torch.logsumexp(scores, dim=-1)
    return torch.matmul(torch.exp(scores - lse[..., None]).to(v.dtype), v), lse


def merge_partial_attention(out_win: torch.Tensor, lse_win: torch.Tensor, out_pin: torch.Tensor,
                            lse_pin: torch.Tensor, pinned_may_be_empty: bool = True
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """One softmax over two key sets from the two partial ones (outputs and log-sum-exps).

    The pinned share of the total probability mass is sigmoid(lse_pin - lse_win), exactly. Returns the
    merged output and that share. A pinned part with no visible key (lse -inf) has share 0 and a NaN
    output, zeroed when `pinned_may_be_empty`.
    """
    share = torch.sigmoid(lse_pin - lse_win)[..., None].to(out_win.dtype)
    if pinned_may_be_empty:
        out_pin = torch.nan_to_num(out_pin)
    return out_win + (out_pin - out_win) * share, share


@dataclass(frozen=True)
class RegionSequence:
    """Training layout: the forward's first `total` steps are the MemChunk regions, the dialog follows.

    `spans` are (start, steps) of each region (L1 then L2); `horizon` is the runtime's (None: no clamp).
    """

    spans: tuple[tuple[int, int], ...]
    horizon: int | None

    @property
    def total(self) -> int:
        return sum(steps for _, steps in self.spans)


class PrefillCaptured(Exception):
    """Raised by the last layer once a prefill has every layer's keys/values: the rest is not needed."""


class PinnedAttention(StreamingMultiheadAttention):
    """moshi's streaming self-attention plus the pinned regions of a `PinnedKVSource`.

    Without a source, outside streaming, or while no region is attended, it is moshi's own forward.
    `capture` (a list) records the post-RoPE keys/values of a forward: the batched chunk prefill, which
    the last layer ends as soon as its keys/values are recorded (its attention, FFN and the text head
    would only compute logits nobody reads).
    """

    pinned: PinnedKVSource | None
    layer_index: int
    capture: list[tuple[torch.Tensor, torch.Tensor]] | None
    stop_after_capture: bool
    last_pinned_mass: torch.Tensor | None
    regions: RegionSequence | None  # set while training over [regions | dialog] (finetune.region_forward)

    def _complete_kv(self, k: torch.Tensor, v: torch.Tensor) -> KVCacheResult:
        if self.capture is not None:
            self.capture.append((k, v))
            if self.stop_after_capture:  # the last layer's keys/values are all a prefill needs
                raise PrefillCaptured
        return super()._complete_kv(k, v)

    def _split_qkv(self, projected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.kv_repeat == 1:
            q, k, v = rearrange(projected, "b t (p h d) -> p b h t d", p=3, h=self.num_heads)
            return q, k, v
        q = rearrange(projected[:, :, :self.embed_dim], "b t (h d) -> b h t d", h=self.num_heads)
        k, v = rearrange(projected[:, :, self.embed_dim:], "b t (p kh d) -> p b kh t d", p=2,
                         kh=self.num_heads // self.kv_repeat)
        return q, k, v

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        state, bank = self._streaming_state, self.pinned
        if self.regions is not None and state is None and not self.cross_attention:
            return self._forward_regions(query, self.regions)
        if self.cross_attention or state is None or bank is None or self.rope is None or not bank.attended():
            return super().forward(query, key, value)
        B, T = query.shape[:2]
        offset = state.offset
        projected = apply_weights_per_step(self.in_projs, self.weights_per_step_schedule, query, state.offset_cpu)
        q, k, v = self._split_qkv(projected)
        steps = offset.view(-1, 1) + torch.arange(T, device=q.device, dtype=torch.long)  # [B, T]
        if bank.horizon is not None and state.offset_cpu > bank.horizon and not bank.graph_safe:
            q_pin = q  # past the horizon the pinned keys' stored rotation is already the right one
        else:
            ref = 0 if bank.horizon is None else bank.horizon
            pin_steps = steps if bank.horizon is None else steps.clamp(max=bank.horizon)
            q_pin = rope_rotate(q, pin_steps - ref, self.rope.max_period, self.rope.interleave)
        q, k = self.rope(q, k, offset, time_before_heads=False)
        k, v, pos_k = self._complete_kv(k, v)
        k_pin, v_pin, pin_bias = bank.layer_kv(self.layer_index)
        if self.kv_repeat > 1:
            k, v = expand_repeated_kv(k, self.kv_repeat), expand_repeated_kv(v, self.kv_repeat)
            k_pin, v_pin = expand_repeated_kv(k_pin, self.kv_repeat), expand_repeated_kv(v_pin, self.kv_repeat)
        # the sliding window, masked exactly as moshi masks it
        delta = steps[:, :, None] - pos_k[:, None, :]
        visible = (pos_k[:, None, :] >= 0) & (delta >= 0)
        if self.context is not None:
            visible &= delta < self.context
        win_bias = torch.zeros(visible.shape, device=q.device, dtype=q.dtype).masked_fill_(~visible, float("-inf"))
        scale = 1.0 / math.sqrt(q.shape[-1])
        out_win, lse_win = attend_with_lse(q, k, v, win_bias[:, None], scale)
        out_pin, lse_pin = attend_with_lse(q_pin, k_pin, v_pin, pin_bias, scale)
        # graph-safe mode masks inactive regions with -inf: possibly no visible pinned key
        x, share = merge_partial_attention(out_win, lse_win, out_pin, lse_pin, pin_bias is not None)
        if bank.record_mass:
            self.last_pinned_mass = share.float().mean().detach()
        x = rearrange(x, "b h t d -> b t (h d)")
        x = apply_weights_per_step(self.out_projs, self.weights_per_step_schedule, x, state.offset_cpu)
        state.offset[:] = torch.where(state.exec_mask, state.offset + T, state.offset)
        state.offset_cpu += T
        return x

    def _forward_regions(self, query: torch.Tensor, regions: RegionSequence) -> torch.Tensor:
        """Training forward over [regions | dialog], attending exactly as the runtime does.

        Each region attends only itself, causally (the runtime prefills each region alone); dialog step p
        attends every region key and its own sliding window. Region key j sits at virtual position
        j - R (R = all region steps), dialog step p at p, and for region keys the query is rotated at
        min(p, horizon): the runtime's positions, so a model trained here is served unchanged.
        """
        assert self.rope is not None, "MemChunk regions need a RoPE transformer"
        R, S = regions.total, query.shape[1]
        T, dev = S - R, query.device
        projected = apply_weights_per_step(self.in_projs, self.weights_per_step_schedule, query, 0)
        q, k, v = self._split_qkv(projected)
        pos = torch.cat([torch.arange(R, device=dev) - R, torch.arange(T, device=dev)])[None]
        rot = (self.rope.max_period, self.rope.interleave)
        q_all, k = rope_rotate(q, pos, *rot), rope_rotate(k, pos, *rot)
        if self.kv_repeat > 1:
            k, v = expand_repeated_kv(k, self.kv_repeat), expand_repeated_kv(v, self.kv_repeat)
        in_region = torch.zeros(R, R, dtype=torch.bool, device=dev)
        for start, steps in regions.spans:
            in_region[start:start + steps, start:start + steps] = True
        own = in_region & torch.ones(R, R, dtype=torch.bool, device=dev).tril()
        out_regions = F.scaled_dot_product_attention(q_all[:, :, :R], k[:, :, :R], v[:, :, :R], attn_mask=own)
        steps = torch.arange(T, device=dev)
        delta = steps[:, None] - steps[None, :]
        window = delta >= 0
        if self.context is not None:
            window &= delta < self.context
        if regions.horizon is None or T - 1 <= regions.horizon:  # no clamping: one softmax over all keys
            mask = torch.cat([torch.ones(T, R, dtype=torch.bool, device=dev), window], dim=1)
            out_dialog = F.scaled_dot_product_attention(q_all[:, :, R:], k, v, attn_mask=mask)
        else:
            q_pin = rope_rotate(q[:, :, R:], steps.clamp(max=regions.horizon)[None], *rot)
            scale = 1.0 / math.sqrt(q.shape[-1])
            win_bias = torch.zeros(window.shape, device=dev, dtype=q.dtype).masked_fill_(~window, float("-inf"))
            out_win, lse_win = attend_with_lse(q_all[:, :, R:], k[:, :, R:], v[:, :, R:], win_bias, scale)
            out_pin, lse_pin = attend_with_lse(q_pin, k[:, :, :R], v[:, :, :R], None, scale)
            out_dialog, _ = merge_partial_attention(out_win, lse_win, out_pin, lse_pin, False)
        x = rearrange(torch.cat([out_regions, out_dialog], dim=2), "b h t d -> b t (h d)")
        return apply_weights_per_step(self.out_projs, self.weights_per_step_schedule, x, 0)


def install_pinned_attention(transformer: nn.Module, source: PinnedKVSource | None) -> list[PinnedAttention]:
    """Re-class every self-attention of a moshi `StreamingTransformer` as `PinnedAttention`."""
    layers: list[PinnedAttention] = []
    for module in transformer.modules():
        if isinstance(module, StreamingMultiheadAttention) and not module.cross_attention:
            module.__class__ = PinnedAttention
            assert isinstance(module, PinnedAttention)
            module.pinned, module.layer_index = source, len(layers)
            module.capture, module.last_pinned_mass, module.stop_after_capture = None, None, False
            module.regions = None
            layers.append(module)
    if layers:
        layers[-1].stop_after_capture = True
    if not layers:
        raise ValueError("no moshi self-attention found: is this a moshi LMModel transformer?")
    return layers

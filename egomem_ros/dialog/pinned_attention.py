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

The chunk prefill rotates its keys straight at `j - R - horizon`: `RegionRope` adds the region's shift to
moshi's own RoPE offset for queries and keys alike. Scores inside the region depend only on differences,
so the prefill attends exactly as at positions 0..steps-1, and no second rotation of the stored keys is
needed (it cost a float copy and a matrix product over every layer's keys on every chunk switch).

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
from moshi.modules.rope import RotaryEmbedding, apply_rope
from moshi.modules.transformer import (KVCacheResult, StreamingMultiheadAttention, apply_weights_per_step,
                                       expand_repeated_kv)
from torch import nn


class PinnedKVSource(Protocol):
    """What the attention layers read the pinned regions from (see `pinned_memory.MemoryBank`)."""

    horizon: int | None
    record_mass: bool
    graph_safe: bool
    joint_softmax: bool
    fused_attention: bool

    def attended(self) -> bool: ...

    def layer_kv(self, layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]: ...

    def step_values(self, layer: int) -> dict[str, object]: ...


def rope_angles(positions: torch.Tensor, dim: int, max_period: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin [B or 1, 1, T, dim/2] of moshi's RoPE at arbitrary `positions` [B or 1, T]."""
    ds = torch.arange(dim // 2, device=positions.device, dtype=torch.float32)
    freqs = torch.exp(ds * (-math.log(max_period) * 2 / dim))
    ts = positions.to(torch.float32).reshape(positions.shape[0], 1, positions.shape[-1], 1)
    return torch.cos(freqs * ts), torch.sin(freqs * ts)


def rope_apply(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, interleave: bool) -> torch.Tensor:
    """Rotate `x` [B, H, T, D] by precomputed `rope_angles` (shared by every layer of one step)."""
    B, H, T, D = x.shape
    if interleave:
        pairs = x.reshape(B, H, T, D // 2, 2)
        xr, xi = pairs[..., 0].float(), pairs[..., 1].float()
    else:
        xr, xi = x[..., : D // 2].float(), x[..., D // 2:].float()
    out_r, out_i = xr * cos - xi * sin, xr * sin + xi * cos
    if interleave:
        return torch.stack([out_r, out_i], dim=-1).reshape(B, H, T, D).to(x.dtype)
    return torch.cat([out_r, out_i], dim=-1).to(x.dtype)


def rope_rotate(x: torch.Tensor, positions: torch.Tensor, max_period: float, interleave: bool) -> torch.Tensor:
    """Rotate `x` [B, H, T, D] to arbitrary `positions` [B or 1, T] with moshi's RoPE convention.

    moshi's `apply_rope` only takes `offset + arange(T)`; the pinned part needs clamped positions and
    constant shifts. Rotations compose, so rotating an already rotated key by s moves it s steps.
    """
    return rope_apply(x, *rope_angles(positions, x.shape[-1], max_period), interleave)


def rope_matrix(cos: torch.Tensor, sin: torch.Tensor, interleave: bool, dtype: torch.dtype) -> torch.Tensor:
    """[D, D] matrix M with `x @ M == rope_apply(x, cos, sin)` for one position (cos/sin [1, 1, 1, D/2]).

    One step of a stream rotates every layer's pinned query by the same angles, so building M once per
    step turns each layer's rotation into one matrix product (a dozen element-wise kernels otherwise).
    In bf16, M's entries carry one bf16 rounding: the same size of error as the cast that ends moshi's
    own fp32 RoPE.
    """
    half = cos.shape[-1]
    c, s_ = cos.reshape(half), sin.reshape(half)
    idx = torch.arange(half, device=cos.device)
    re, im = (2 * idx, 2 * idx + 1) if interleave else (idx, idx + half)
    m = torch.zeros(2 * half, 2 * half, device=cos.device, dtype=torch.float32)
    m[re, re], m[re, im], m[im, re], m[im, im] = c, s_, -s_, c
    return m.to(dtype)


_FLASH_CPU = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


def attend_with_lse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None,
                    scale: float, fused: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention output and its log-sum-exp [B, H, T], so two key sets merge into one exact softmax.

    On CPU (`fused`) torch's fused flash kernel (the one `scaled_dot_product_attention` runs, which
    returns the log-sum-exp too); elsewhere the plain math. CUDA's fused memory-efficient kernel was
    tried for the runtime's one query per step and was slower there (docs/dialog.md, Measured).
    """
    if fused and q.device.type == "cpu" and _FLASH_CPU is not None:
        out, lse = _FLASH_CPU(q, k, v, 0.0, False, attn_mask=bias, scale=scale)[:2]
        return out, lse
    scores = torch.matmul(q, k.transpose(-1, -2)).float() * scale
    if bias is not None:
        scores = scores + bias.float()
    lse = torch.logsumexp(scores, dim=-1)
    return torch.matmul(torch.exp(scores - lse[..., None]).to(v.dtype), v), lse


def attend_joint(q_win: torch.Tensor, k_win: torch.Tensor, v_win: torch.Tensor, q_pin: torch.Tensor,
                 k_pin: torch.Tensor, v_pin: torch.Tensor, bias: torch.Tensor | None, scale: float,
                 want_share: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One softmax over the window keys and the pinned keys, each scored with its own query rotation.

    For one query per step on a GPU: a few batched matrix-vector products that use the whole chip,
    where the fused attention kernels parallelise over heads and query blocks only. Returns the output
    and (if asked) the pinned share of the probability mass [B, H, T, 1]. The window always holds the
    current step's key, so no row is fully masked.
    """
    S = k_win.shape[2]
    scores = torch.cat([torch.matmul(q_win, k_win.transpose(-1, -2)),
                        torch.matmul(q_pin, k_pin.transpose(-1, -2))], dim=-1)
    scores = scores.float() * scale if bias is None else torch.add(bias, scores, alpha=scale)  # fp32
    probs = torch.softmax(scores, dim=-1).to(v_win.dtype)
    out = torch.matmul(probs[..., :S], v_win) + torch.matmul(probs[..., S:], v_pin)
    return out, (probs[..., S:].float().sum(-1, keepdim=True) if want_share else None)


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
    return torch.lerp(out_win, out_pin, share), share


def _joint_bias(window_bias: torch.Tensor | None, pin_bias: torch.Tensor | None, B: int, T: int,
                window_keys: int, pinned_keys: int, device: torch.device) -> torch.Tensor | None:
    """The window mask and the region mask side by side, float32, for `attend_joint`."""
    if window_bias is None and pin_bias is None:
        return None
    win = torch.zeros(1, 1, 1, window_keys, device=device) if window_bias is None else window_bias.float()
    pin = torch.zeros(1, 1, 1, pinned_keys, device=device) if pin_bias is None else pin_bias.float()
    return torch.cat([win.expand(B, 1, T, window_keys), pin.expand(B, 1, T, pinned_keys)], dim=-1)


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


class RegionRope(RotaryEmbedding):
    """moshi's RoPE, at `shift` steps from the streaming offset: a chunk prefill sets the region's shift,
    so its keys come out rotated at the region's stored positions (module doc). 0 during the dialog."""

    shift: int

    def forward(self, q: torch.Tensor, k: torch.Tensor, offset: torch.Tensor, time_before_heads: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.shift:
            offset = offset + self.shift
        return apply_rope(q, k, offset, self.max_period, self.interleave, time_before_heads)


class PrefillCaptured(Exception):
    """Raised by the last layer once a prefill has every layer's keys/values: the rest is not needed."""


class PinnedAttention(StreamingMultiheadAttention):
    """moshi's streaming self-attention plus the pinned regions of a `PinnedKVSource`.

    Without a source, outside streaming, or while no region is attended, it is moshi's own forward.
    `capture` (the layer's key and value slots of a region in the bank) receives the post-RoPE keys/values
    of a forward: the batched chunk prefill, which the last layer ends as soon as its keys/values are
    copied (its attention, FFN and the text head would only compute logits nobody reads).
    """

    pinned: PinnedKVSource | None
    layer_index: int
    capture: tuple[torch.Tensor, torch.Tensor] | None
    stop_after_capture: bool
    last_pinned_mass: torch.Tensor | None
    regions: RegionSequence | None  # set while training over [regions | dialog] (finetune.region_forward)

    def _complete_kv(self, k: torch.Tensor, v: torch.Tensor) -> KVCacheResult:
        if self.capture is not None:
            self.capture[0].copy_(k)
            self.capture[1].copy_(v)
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
        shared = bank.step_values(self.layer_index)  # built by layer 0, read by the others
        if "pin_rotation" not in shared:
            shared["pin_rotation"] = self._pin_rotation(bank, state, T, q.shape[-1], q.dtype)
        rotation = shared["pin_rotation"]
        if rotation is None:
            q_pin = q
        elif isinstance(rotation, torch.Tensor):
            q_pin = torch.matmul(q, rotation)
        else:
            q_pin = rope_apply(q, *rotation, self.rope.interleave)
        q, k = self.rope(q, k, offset, time_before_heads=False)
        k, v, pos_k = self._complete_kv(k, v)
        k_pin, v_pin, pin_bias = bank.layer_kv(self.layer_index)
        if self.kv_repeat > 1:
            k, v = expand_repeated_kv(k, self.kv_repeat), expand_repeated_kv(v, self.kv_repeat)
            k_pin, v_pin = expand_repeated_kv(k_pin, self.kv_repeat), expand_repeated_kv(v_pin, self.kv_repeat)
        if "window_bias" not in shared:
            shared["window_bias"] = self._window_bias(bank, state, pos_k, T, q.dtype)
        window_bias = shared["window_bias"]
        scale = 1.0 / math.sqrt(q.shape[-1])
        if bank.joint_softmax:
            if "joint_bias" not in shared:
                shared["joint_bias"] = _joint_bias(window_bias, pin_bias, q.shape[0], T, k.shape[2], k_pin.shape[2],
                                                  q.device)
            x, share = attend_joint(q, k, v, q_pin, k_pin, v_pin, shared["joint_bias"], scale,  # type: ignore[arg-type]
                                    bank.record_mass)
        else:
            out_win, lse_win = attend_with_lse(q, k, v, window_bias, scale, bank.fused_attention)
            out_pin, lse_pin = attend_with_lse(q_pin, k_pin, v_pin, pin_bias, scale, bank.fused_attention)
            # graph-safe mode masks inactive regions with -inf: possibly no visible pinned key
            x, share = merge_partial_attention(out_win, lse_win, out_pin, lse_pin, pin_bias is not None)
        if bank.record_mass and share is not None:
            self.last_pinned_mass = share.float().mean().detach()
        x = rearrange(x, "b h t d -> b t (h d)")
        x = apply_weights_per_step(self.out_projs, self.weights_per_step_schedule, x, state.offset_cpu)
        state.offset[:] = torch.where(state.exec_mask, state.offset + T, state.offset)
        state.offset_cpu += T
        return x

    @staticmethod
    def _step_positions(state, T: int) -> torch.Tensor:
        return state.offset.view(-1, 1) + torch.arange(T, device=state.offset.device, dtype=torch.long)

    def _pin_rotation(self, bank: PinnedKVSource, state, T: int, head_dim: int, dtype: torch.dtype
                      ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None:
        """Rotation of the query for the pinned part: to min(p, horizon) - horizon (see module doc).

        None past the horizon, where that is no rotation; graph-safe mode always rotates, since the
        step a CUDA graph was captured at must not decide what every later step computes. One step
        (T == 1, batch 1): a `rope_matrix`; several: cos/sin per step.
        """
        assert self.rope is not None
        if bank.horizon is not None and state.offset_cpu > bank.horizon and not bank.graph_safe:
            return None
        steps = self._step_positions(state, T)
        if bank.horizon is not None:
            steps = steps.clamp(max=bank.horizon) - bank.horizon
        cos, sin = rope_angles(steps, head_dim, self.rope.max_period)
        if steps.numel() == 1:
            return rope_matrix(cos, sin, self.rope.interleave, dtype)
        return cos, sin

    def _window_bias(self, bank: PinnedKVSource, state, pos_k: torch.Tensor, T: int,
                     dtype: torch.dtype) -> torch.Tensor | None:
        """moshi's sliding-window mask as an additive bias [B, 1, T, capacity].

        None once the ring is full and one step is fed (every cached key is then inside the window,
        since moshi sizes the ring to the context): the steady state of a long stream needs no mask.
        """
        B = pos_k.shape[0]
        ring = getattr(state.kv_cache, "capacity", None)
        if (not bank.graph_safe and T == 1 and B == 1 and self.context is not None and ring is not None
                and ring <= self.context and state.offset_cpu >= ring):
            return None
        steps = self._step_positions(state, T)
        delta = steps[:, :, None] - pos_k[:, None, :]
        visible = (pos_k[:, None, :] >= 0) & (delta >= 0)
        if self.context is not None:
            visible &= delta < self.context
        return torch.zeros(visible.shape, device=pos_k.device, dtype=dtype).masked_fill_(~visible, float("-inf"))[:, None]

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


def layer_ropes(layers: list[PinnedAttention]) -> list[RotaryEmbedding]:
    """The distinct RoPE modules of `layers` (moshi shares one among all layers of a transformer)."""
    return list({id(layer.rope): layer.rope for layer in layers if layer.rope is not None}.values())


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
    for rope in layer_ropes(layers):
        rope.__class__ = RegionRope
        assert isinstance(rope, RegionRope)
        rope.shift = 0
    if layers:
        layers[-1].stop_after_capture = True
    if not layers:
        raise ValueError("no moshi self-attention found: is this a moshi LMModel transformer?")
    return layers

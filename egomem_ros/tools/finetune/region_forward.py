"""moshi's own training forward with the MemChunk regions in front of the dialog (paper §4.1, Figure 4).

`LMModel.forward` (delays, initial token, depformer, un-delaying, validity masks) runs unchanged; only
its `forward_text` sees `[L1 | L2 | dialog]`, and every self-attention attends the way the runtime's
pinned regions do (`PinnedAttention._forward_regions`). So what fine-tuning teaches is what the dialog
runtime serves: same region tokens (`pinned_memory.region_tokens`), same masks, same positions.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from moshi.models.lm import LMModel, LMOutput

from ...dialog.pinned_attention import PinnedAttention, RegionSequence, install_pinned_attention
from ...dialog.pinned_memory import RegionLayout, default_horizon, region_tokens
from ...memchunk import LEVEL1, LEVEL2


def attention_layers(lm: LMModel) -> list[PinnedAttention]:
    """The LM's self-attention layers as `PinnedAttention` (re-classed in place on first use)."""
    layers = [m for m in lm.transformer.modules() if isinstance(m, PinnedAttention)]
    return layers or install_pinned_attention(lm.transformer, None)


@contextlib.contextmanager
def regions_in_front(lm: LMModel, regions: torch.Tensor, layout: RegionLayout,
                     horizon: int | None | str = "auto") -> Iterator[None]:
    """While active, `lm.forward(codes)` runs over `[regions | codes]` and returns the dialog part only."""
    layers = attention_layers(lm)
    if horizon == "auto":
        horizon = default_horizon(layers[0].context)
    R = layout.total
    if regions.shape[-1] != R:
        raise ValueError(f"regions hold {regions.shape[-1]} steps, the layout {R}")
    spec = RegionSequence((layout.span(LEVEL1), layout.span(LEVEL2)), horizon)  # type: ignore[arg-type]
    plain_forward_text = lm.forward_text

    def forward_text(sequence: torch.Tensor, *args, **kwargs):
        batch = regions.to(sequence.device).expand(sequence.shape[0], -1, -1) if regions.shape[0] == 1 \
            else regions.to(sequence.device)
        out, text_logits = plain_forward_text(torch.cat([batch, sequence], dim=2), *args, **kwargs)
        return out[:, R:], text_logits[:, :, R:]

    for layer in layers:
        layer.regions = spec
    lm.forward_text = forward_text  # type: ignore[method-assign]
    try:
        yield
    finally:
        del lm.forward_text
        for layer in layers:
            layer.regions = None


def batch_regions(lm: LMModel, layout: RegionLayout, l1_ids: Sequence[Sequence[int]],
                  l2_ids: Sequence[Sequence[int]]) -> torch.Tensor:
    """`[B, K, R]` region tokens for a batch of (L1 ids, L2 ids)."""
    rows = [torch.cat([region_tokens(lm, layout, LEVEL1, a), region_tokens(lm, layout, LEVEL2, b)], dim=2)
            for a, b in zip(l1_ids, l2_ids)]
    return torch.cat(rows, dim=0)


def forward_with_regions(lm: LMModel, codes: torch.Tensor, regions: torch.Tensor, layout: RegionLayout,
                         horizon: int | None | str = "auto") -> LMOutput:
    """moshi's `LMModel.forward` over dialog `codes` [B, K, T] with `regions` [B or 1, K, R] in front."""
    with regions_in_front(lm, regions, layout, horizon):
        return lm.forward(codes)

"""Masked cross-entropy over the text channel and the 8 speak codebooks, weighted as moshi-finetune does:
text padding (ids 3 and 0) at `text_padding_weight` (0.5), the first (semantic) codebook at
`first_codebook_weight` (100); loss = text + audio, each a weighted mean over supervised positions.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from moshi.models.lm import LMOutput

TEXT_PAD_IDS = (3, 0)


@dataclass(frozen=True)
class LossWeights:
    text: float = 1.0
    audio: float = 1.0
    text_padding: float = 0.5
    first_codebook: float = 100.0


def _weighted_ce(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Sum(w * CE) / sum(w) over positions with w > 0; 0 (with a graph) when there are none."""
    keep = weights > 0
    if not keep.any():
        return logits.sum() * 0.0
    ce = F.cross_entropy(logits[keep].float(), target[keep], reduction="none")
    return (ce * weights[keep]).sum() / weights[keep].sum()


def masked_loss(out: LMOutput, codes: torch.Tensor, supervise: torch.Tensor, audio_offset: int = 1,
                weights: LossWeights = LossWeights()) -> tuple[torch.Tensor, dict[str, float]]:
    """`codes` [B, K, T] (text, audio...), `supervise` [B, T] bool. Returns the loss and its parts."""
    text_target = codes[:, 0]
    text_w = (out.text_mask[:, 0] & supervise).float()
    pad = torch.zeros_like(text_target, dtype=torch.bool)
    for pad_id in TEXT_PAD_IDS:
        pad |= text_target == pad_id
    text_w = torch.where(pad, text_w * weights.text_padding, text_w)
    text_loss = _weighted_ce(out.text_logits[:, 0], text_target.clamp(min=0), text_w)
    dep_q = out.logits.shape[1]
    audio_target = codes[:, audio_offset:audio_offset + dep_q]
    audio_w = (out.mask & supervise[:, None]).float()
    audio_w[:, 0] *= weights.first_codebook
    audio_loss = _weighted_ce(out.logits, audio_target.clamp(min=0), audio_w)
    loss = weights.text * text_loss + weights.audio * audio_loss
    return loss, {"loss": loss.item(), "text_loss": text_loss.item(), "audio_loss": audio_loss.item(),
                  "supervised_steps": int(supervise.sum())}

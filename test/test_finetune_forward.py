"""The fine-tuning forward attends exactly as the dialog runtime: same logits, step for step."""
from __future__ import annotations

import pytest
import torch

from egomem_ros.dialog import moshi_checkpoint as mc
from egomem_ros.dialog.pinned_memory import MemoryBank, RegionLayout
from egomem_ros.tools.finetune.region_forward import batch_regions, forward_with_regions, regions_in_front
from egomem_ros.memchunk import LEVEL1, LEVEL2

LAYOUT = RegionLayout(l1_steps=40, l2_steps=16)
CONTEXT = 64


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    cfg = mc.lm_config(dim=64, num_layers=2, num_heads=4, context=CONTEXT)
    return mc.load_models(mc.write_tiny_checkpoint(tmp_path_factory.mktemp("ft_fwd"), lm_cfg=cfg, seed=3))


def _sequence(lm, steps: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    seq = torch.randint(0, lm.card, (1, lm.num_codebooks, steps), generator=gen)
    seq[:, 0] = torch.randint(0, lm.text_card, (1, steps), generator=gen)
    return seq


def _runtime_logits(lm, l1, l2, seq) -> torch.Tensor:
    bank = MemoryBank(lm, LAYOUT)
    bank.write(LEVEL1, l1)
    bank.write(LEVEL2, l2)
    out = []
    with torch.no_grad(), lm.transformer.streaming(1):
        for t in range(seq.shape[-1]):
            out.append(lm.forward_text(seq[:, :, t:t + 1])[1])
    for layer in bank.layers:
        layer.pinned = None
    return torch.cat(out, dim=2)


@pytest.mark.parametrize("steps", [CONTEXT - 5, 3 * CONTEXT])  # inside the window, and past the horizon
def test_training_forward_equals_runtime_steps(models, steps):
    lm, tok = models.lm, models.tokenizer
    l1, l2 = tok.encode("User: Alice (id u1)\nFacts:\n- lives in Lyon"), tok.encode("Carol likes swimming")
    seq = _sequence(lm, steps)
    expected = _runtime_logits(lm, l1, l2, seq)
    regions = batch_regions(lm, LAYOUT, [l1], [l2])
    with torch.no_grad(), regions_in_front(lm, regions, LAYOUT):
        got = lm.forward_text(seq)[1]
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=2e-4), (got - expected).abs().max()
    # and the regions matter: another L1 changes the dialog's logits
    other = batch_regions(lm, LAYOUT, [tok.encode("User: Bob (id u2)")], [l2])
    with torch.no_grad(), regions_in_front(lm, other, LAYOUT):
        assert not torch.allclose(lm.forward_text(seq)[1], expected, atol=1e-3)


def test_forward_with_regions_is_moshi_forward_and_trains(models):
    lm, tok = models.lm, models.tokenizer
    codes = _sequence(lm, 30, seed=4).repeat(2, 1, 1)
    regions = batch_regions(lm, LAYOUT, [tok.encode("a b"), tok.encode("c d e")], [[], tok.encode("f")])
    out = forward_with_regions(lm, codes, regions, LAYOUT)
    assert out.text_logits.shape[:3] == (2, 1, 30) and out.logits.shape[:3] == (2, lm.dep_q, 30)
    assert not torch.equal(out.text_logits[0], out.text_logits[1])  # same dialog, different regions
    loss = out.text_logits[out.text_mask].float().logsumexp(-1).mean()
    loss.backward()
    grads = [p.grad for p in lm.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert lm.text_emb.weight.grad[tok.encode("c")[0]].abs().sum() > 0  # a region token got gradient
    lm.zero_grad()
    with torch.no_grad():  # outside the context the model is stock moshi again
        plain = lm(codes).text_logits
    assert plain.shape == out.text_logits.shape

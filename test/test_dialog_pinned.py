"""Pinned MemChunk regions on a tiny random moshi LM (real moshi code, random weights, CPU)."""
from __future__ import annotations

import contextlib

import pytest
import torch


from moshi.models.lm import LMGen  # noqa: E402
from moshi.modules.rope import apply_rope  # noqa: E402

from egomem_ros.dialog import moshi_checkpoint as mc  # noqa: E402
from egomem_ros.dialog.pinned_attention import rope_rotate  # noqa: E402
from egomem_ros.dialog.pinned_memory import MemoryBank, RegionLayout  # noqa: E402

TEXT_A = "User: Alice Smith (id u1)\nFacts:\n- Alice is a nurse and lives in Lyon."
TEXT_B = "User: Bob (id u2)\nPreferences:\n- likes green tea"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return mc.write_tiny_checkpoint(tmp_path_factory.mktemp("moshi_tiny"))


@pytest.fixture
def models(checkpoint):
    return mc.load_models(checkpoint)


def _stream(lm, steps: int, seed: int = 1, chunk: int = 500):
    """Feed `steps` random dialog steps through the streaming LM, `chunk` steps per forward."""
    gen = torch.Generator().manual_seed(seed)
    done = 0
    while done < steps:
        t = min(chunk, steps - done)
        tokens = torch.randint(0, lm.card, (1, lm.num_codebooks, t), generator=gen)
        tokens[:, 0] = torch.randint(0, lm.text_card, (1, t), generator=gen)
        lm.forward_text(tokens)
        done += t


def _next_logits(lm) -> torch.Tensor:
    probe = torch.full((1, lm.num_codebooks, 1), 5, dtype=torch.long)
    return lm.forward_text(probe)[1].flatten()


def test_rope_rotate_matches_moshi_and_composes():
    x = torch.randn(2, 3, 7, 16)
    offset = torch.tensor([4, 11])
    ref, _ = apply_rope(x, x, offset, max_period=10_000, interleave=True)
    positions = offset.view(-1, 1) + torch.arange(7)
    assert torch.allclose(rope_rotate(x, positions, 10_000, True), ref, atol=1e-5)
    shifted = rope_rotate(rope_rotate(x, positions, 10_000, True), torch.full((1, 7), -30), 10_000, True)
    assert torch.allclose(shifted, rope_rotate(x, positions - 30, 10_000, True), atol=1e-5)


def test_batched_prefill_equals_stepwise_for_kv_and_greedy_tokens(models):
    lm, tok = models.lm, models.tokenizer
    bank = MemoryBank(lm, RegionLayout())
    ids1, ids2 = tok.encode(TEXT_A), tok.encode(TEXT_B)
    runs = []
    for method in ("batched", "stepwise"):
        bank.write(1, ids1, method)
        bank.write(2, ids2, method)
        kv = (bank.keys.clone(), bank.values.clone())
        gen = LMGen(lm, use_sampling=False)
        user = torch.Generator().manual_seed(3)
        tokens = []
        with gen.streaming(1):
            for _ in range(12):
                out = gen.step(torch.randint(0, lm.card, (1, 8, 1), generator=user))
                if out is not None:
                    tokens.append(out.clone())
        runs.append((kv, torch.cat(tokens, dim=-1)))
    (kv_b, tok_b), (kv_s, tok_s) = runs
    assert torch.count_nonzero(kv_b[0]) > 0
    assert torch.allclose(kv_b[0], kv_s[0], atol=1e-5) and torch.allclose(kv_b[1], kv_s[1], atol=1e-5)
    assert torch.equal(tok_b, tok_s)


def test_failed_prefill_leaves_the_region_unattended(models):
    """The prefill writes straight into the bank: one that fails half-way must not be attended."""
    bank = MemoryBank(models.lm, RegionLayout())
    bank.write(1, models.tokenizer.encode(TEXT_A))
    assert bank.active[1]

    def fail(*_):
        raise RuntimeError("CUDA out of memory (simulated)")

    hook = models.lm.transformer.layers[1].register_forward_pre_hook(fail)
    try:
        with pytest.raises(RuntimeError, match="simulated"):
            bank.write(1, models.tokenizer.encode(TEXT_B))
    finally:
        hook.remove()
    assert not bank.active[1] and torch.isinf(bank.bias[..., :512]).all()
    assert bank.layers[0].capture is None and all(rope.shift == 0 for rope in bank._ropes)
    bank.write(1, models.tokenizer.encode(TEXT_B))  # and the next chunk is written and attended again
    assert bank.active[1]


def test_region_update_rewrites_only_that_region(models):
    bank = MemoryBank(models.lm, RegionLayout())
    bank.write(1, models.tokenizer.encode(TEXT_A))
    bank.write(2, models.tokenizer.encode(TEXT_B))
    before = bank.keys.clone()
    bank.write(1, models.tokenizer.encode(TEXT_B))
    assert torch.equal(bank.keys[..., 512:, :], before[..., 512:, :])
    assert not torch.allclose(bank.keys[..., :512, :], before[..., :512, :])


def test_chunk_still_attended_after_10000_steps_and_l1_text_changes_logits(models):
    lm, tok = models.lm, models.tokenizer
    assert lm.transformer.layers[0].self_attn.context == 3000
    bank = MemoryBank(lm, RegionLayout())
    bank.record_mass = True
    logits = {}
    for name, switch_to in (("A", None), ("A again", None), ("B", TEXT_B)):
        bank.write(1, tok.encode(TEXT_A))
        with lm.streaming(1):
            _stream(lm, 10_000)
            if switch_to:
                bank.write(1, tok.encode(switch_to))
            logits[name] = _next_logits(lm)
            mass = bank.pinned_mass()
    assert torch.equal(logits["A"], logits["A again"])  # deterministic, so the change below is the chunk's
    assert (logits["A"] - logits["B"]).abs().max() > 1e-3
    assert mass > 0.01, f"pinned regions get {mass:.4f} of the attention after 10,000 steps"


def test_stock_prefix_is_forgotten_after_the_window(models):
    """What EgoMem fixes: a chunk prefilled into moshi's own ring falls out after 3000 steps."""
    lm, tok = models.lm, models.tokenizer
    results = []
    for text in (TEXT_A, TEXT_B):
        ids = tok.encode(text)
        prefix = torch.full((1, lm.num_codebooks, 512), lm.zero_token_id, dtype=torch.long)
        prefix[0, 0] = lm.text_padding_token_id
        prefix[0, 0, :len(ids)] = torch.tensor(ids)
        with lm.streaming(1):
            lm.forward_text(prefix)
            early = _next_logits(lm)
            _stream(lm, 10_000)
            results.append((early, _next_logits(lm)))
    (early_a, late_a), (early_b, late_b) = results
    assert (early_a - early_b).abs().max() > 1e-3  # the prefix matters while it is in the window...
    assert torch.allclose(late_a, late_b, atol=1e-6)  # ...and not at all 10,000 steps later


def test_graph_safe_bias_mode_matches_span_mode(models):
    lm, tok = models.lm, models.tokenizer
    out = {}
    for graph_safe in (False, True):
        bank = MemoryBank(lm, RegionLayout(), graph_safe=graph_safe)
        bank.write(2, tok.encode(TEXT_B))  # only L2 active: the bias must hide the unused L1 region
        with lm.streaming(1):
            _stream(lm, 3100, chunk=500)  # past the horizon: the fast path vs the general one
            out[graph_safe] = _next_logits(lm)
    assert torch.allclose(out[False], out[True], atol=1e-5)


@pytest.mark.parametrize("graph_safe", [False, True])
def test_attention_variants_agree(models, graph_safe):
    """One joint softmax (the CUDA default), the fused kernel per part merged by log-sum-exp (CPU
    default) and the plain-math merge are the same attention: same logits, same pinned share."""
    lm, tok = models.lm, models.tokenizer
    out = {}
    for variant in ("joint", "fused", "math"):
        bank = MemoryBank(lm, RegionLayout(), graph_safe=graph_safe, joint_softmax=variant == "joint")
        bank.fused_attention = variant == "fused"
        bank.record_mass = True
        bank.write(2, tok.encode(TEXT_B))
        with lm.streaming(1):
            _stream(lm, 40, chunk=8)  # window not yet full: the masked path
            out[variant] = (_next_logits(lm), bank.pinned_mass())
    for variant in ("fused", "math"):
        assert torch.allclose(out["joint"][0], out[variant][0], atol=1e-5)
        assert out["joint"][1] == pytest.approx(out[variant][1], rel=1e-4)
    assert out["joint"][1] > 0.01


def test_no_active_region_is_stock_moshi(checkpoint):
    a, b = mc.load_models(checkpoint).lm, mc.load_models(checkpoint).lm
    MemoryBank(b, RegionLayout())  # installed, nothing written
    outs = []
    for lm in (a, b):
        with lm.streaming(1):
            _stream(lm, 30, chunk=4)
            outs.append(_next_logits(lm))
    assert torch.equal(outs[0], outs[1])


def test_stock_attention_detaches_an_active_bank(checkpoint):
    a, b = mc.load_models(checkpoint).lm, mc.load_models(checkpoint).lm
    bank = MemoryBank(b, RegionLayout())
    bank.write(1, list(range(4, 40)))
    outs = []
    for lm, stock in ((a, False), (b, True), (b, False)):
        with lm.streaming(1), bank.stock_attention() if stock else contextlib.nullcontext():
            _stream(lm, 30, chunk=4)
            outs.append(_next_logits(lm))
    assert torch.equal(outs[0], outs[1])        # the written L1 is not attended inside
    assert not torch.equal(outs[0], outs[2])    # and is again after
    assert all(layer.pinned is bank for layer in bank.layers)


def test_region_too_long_for_its_tokens_is_refused(models):
    bank = MemoryBank(models.lm, RegionLayout(8, 4))
    with pytest.raises(ValueError, match="do not fit"):
        bank.write(2, list(range(5)))
    with pytest.raises(ValueError, match="level must be 1 or 2"):
        bank.write(3, [1])


@pytest.mark.parametrize("interleave", [True, False])
def test_rope_matrix_is_rope_apply(interleave):
    from egomem_ros.dialog.pinned_attention import rope_angles, rope_apply, rope_matrix

    x = torch.randn(1, 3, 4, 16)
    cos, sin = rope_angles(torch.tensor([[-1234]]), 16, 10_000)
    assert torch.allclose(x @ rope_matrix(cos, sin, interleave, x.dtype), rope_apply(x, cos, sin, interleave),
                          atol=1e-5)

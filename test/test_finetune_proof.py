"""The mechanism works: a tiny random moshi LM, fine-tuned on CPU, answers from its L1 chunk (minutes).

Held-out profiles only; the fact is in L1 and nowhere in the dialog. It must be right with the chunk,
near chance with the chunk blanked, and follow a swapped chunk. Numbers: docs/finetune.md.
"""
from __future__ import annotations

import json

import pytest

from egomem_ros.tools.finetune.proof import ProofConfig, run_proof


@pytest.mark.heavy
def test_tiny_model_learns_to_answer_from_its_memchunk(tmp_path):
    result = run_proof(tmp_path, ProofConfig())
    print(json.dumps(result, indent=1))
    held_out = result["held_out"]
    assert held_out["turns"] >= 40
    assert held_out["accuracy_with_chunk"] >= 0.8, held_out
    assert held_out["accuracy_blank_chunk"] <= 0.1, held_out
    assert held_out["swap_follows_chunk"] >= 0.6 and held_out["swap_keeps_old_answer"] <= 0.1, held_out

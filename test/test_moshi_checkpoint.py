"""moshi checkpoint loading: local directories (PersonaPlex / FLM-Audio style) and Hugging Face repos
(served from an offline cache laid out exactly as huggingface_hub writes it)."""
from __future__ import annotations

import shutil

import pytest
import torch


from safetensors.torch import load_file  # noqa: E402

from egomem_ros.dialog import moshi_checkpoint as mc  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return mc.write_tiny_checkpoint(tmp_path_factory.mktemp("moshi_tiny"), seed=7)


def _same_weights(lm, path) -> None:
    saved = load_file(str(path))
    state = lm.state_dict()
    assert saved.keys() == state.keys()
    for key, value in saved.items():
        assert torch.equal(state[key], value), key


def test_local_directory_loads_exactly_the_saved_tensors(checkpoint):
    models = mc.load_models(checkpoint)
    _same_weights(models.lm, checkpoint / mc.LM_NAME)
    mimi_saved = load_file(str(checkpoint / mc.MIMI_NAME))
    mimi_state = models.mimi.state_dict()
    assert all(torch.equal(mimi_state[k], v) for k, v in mimi_saved.items() if k in mimi_state)
    assert models.lm.dim == 64 and models.mimi.num_codebooks == 8
    assert models.tokenizer.encode("Alice likes green tea")


def test_hf_repo_id_goes_through_checkpoint_info_from_hf_repo(checkpoint, tmp_path, monkeypatch):
    import huggingface_hub.constants as hf_constants

    revision = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = tmp_path / "hub" / "models--kyutai--tiny-moshi"
    snapshot = repo_dir / "snapshots" / revision
    shutil.copytree(checkpoint, snapshot)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(revision)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    info = mc.checkpoint_info("kyutai/tiny-moshi")
    assert info.moshi_weights.resolve() == (snapshot / mc.LM_NAME).resolve()
    _same_weights(mc.load_models("kyutai/tiny-moshi").lm, checkpoint / mc.LM_NAME)


def test_missing_pieces_are_named(checkpoint, tmp_path):
    broken = tmp_path / "ckpt"
    shutil.copytree(checkpoint, broken)
    (broken / mc.MIMI_NAME).unlink()
    with pytest.raises(FileNotFoundError, match="mimi_weights file mimi.safetensors is missing"):
        mc.load_models(broken)
    (broken / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        mc.load_models(broken)
    with pytest.raises(FileNotFoundError, match="neither a checkpoint directory"):
        mc.load_models(tmp_path / "does-not-exist")


def test_cuda_requested_without_cuda_is_refused(checkpoint):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        mc.load_models(checkpoint, device="cuda")

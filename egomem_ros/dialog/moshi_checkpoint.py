"""Loading moshi-family checkpoints, and writing random ones of any size for tests and benchmarks.

Production: `moshi.models.loaders.CheckpointInfo.from_hf_repo` for kyutai repositories (moshiko,
moshika; cached or downloaded), or a local directory laid out the same way, as PersonaPlex and FLM-Audio
style checkpoints are: `config.json` (moshi's LM kwargs plus `moshi_name` / `mimi_name` /
`tokenizer_name` / optional `mimi_config_name`), the LM safetensors, the Mimi weights and the
sentencepiece text tokenizer. Random checkpoints are written in exactly that layout, so tests and
benchmarks load them back through the same code a robot uses.
"""
from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

if os.environ.get("CUDA_VISIBLE_DEVICES") == "" or not torch.cuda.is_available():
    os.environ.setdefault("NO_TORCH_COMPILE", "1")  # moshi compiles lazily; pointless and slow on CPU

from moshi.models import loaders  # noqa: E402  (after NO_TORCH_COMPILE)
from moshi.models.compression import MimiModel  # noqa: E402
from moshi.models.lm import LMModel  # noqa: E402

LM_NAME, MIMI_NAME, MIMI_CONFIG_NAME, TOKENIZER_NAME = ("model.safetensors", "mimi.safetensors",
                                                        "mimi_config.json", "tokenizer.model")


@dataclass
class MoshiModels:
    lm: LMModel
    mimi: MimiModel
    tokenizer: Any  # sentencepiece.SentencePieceProcessor
    info: loaders.CheckpointInfo


def lm_config(dim: int = 64, num_layers: int = 2, num_heads: int = 4, text_card: int = 256, card: int = 64,
              context: int = 3000, depformer_dim: int = 32, depformer_layers: int = 1) -> dict[str, Any]:
    """moshi's 7B LM kwargs (`loaders._lm_kwargs`), resized; the defaults make a ~0.1M-parameter toy."""
    cfg = copy.deepcopy(loaders._lm_kwargs)  # noqa: SLF001 - moshi's only copy of the 7B config
    cfg.update(dim=dim, num_layers=num_layers, num_heads=num_heads, text_card=text_card, card=card,
               context=context, depformer_dim=depformer_dim, depformer_num_layers=depformer_layers,
               depformer_num_heads=max(1, depformer_dim // 16),
               depformer_dim_feedforward=int(4.125 * depformer_dim))
    return cfg


def mimi_config(dimension: int = 32, n_filters: int = 4, bins: int = 64, layers: int = 1) -> dict[str, Any]:
    """moshi's Mimi config (`loaders._mimi_config`), resized. Frame size and rate stay 1920 @ 24 kHz."""
    cfg = copy.deepcopy(loaders._mimi_config)  # noqa: SLF001 - moshi's only copy of Mimi's config
    cfg["seanet"].update(dimension=dimension, n_filters=n_filters)
    cfg["quantizer"].update(dimension=max(8, dimension // 2), n_q=16, bins=bins, input_dimension=dimension,
                            output_dimension=dimension)
    cfg["transformer"].update(d_model=dimension, num_heads=2, num_layers=layers, dim_feedforward=2 * dimension,
                              input_dimension=dimension, output_dimensions=[dimension])
    return cfg


def train_tokenizer(path: Path, vocab_size: int, sentences: list[str]) -> Path:
    """A small sentencepiece model with the special ids of moshi's real 32k model (0 unk, used as the
    end-of-padding token, 1 bos, 2 eos, 3 pad), so ids 0 and 3 are text padding here too."""
    import io

    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=model, vocab_size=vocab_size,
                                   model_type="unigram", character_coverage=1.0, pad_id=3, unk_id=0, bos_id=1,
                                   eos_id=2, user_defined_symbols=["<retr>", "<answer>", "\n"],
                                   hard_vocab_limit=False, minloglevel=2, normalization_rule_name="identity")
    path.write_bytes(model.getvalue())
    return path


def write_checkpoint(directory: Path, lm: LMModel | dict[str, torch.Tensor], lm_cfg: dict[str, Any],
                     mimi: MimiModel | Path, mimi_cfg: dict[str, Any] | None, tokenizer: Path) -> Path:
    """An LM (a model or its state dict), Mimi (a model, or a weights file to copy) and the tokenizer, in the
    local-checkpoint layout `load_models` reads. Random checkpoints and fine-tuned exports both go here."""
    import shutil

    from safetensors.torch import save_file, save_model

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = lm if isinstance(lm, dict) else lm.state_dict()
    save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, str(directory / LM_NAME))
    if isinstance(mimi, MimiModel):
        save_model(mimi, str(directory / MIMI_NAME))
    elif Path(mimi).resolve() != (directory / MIMI_NAME).resolve():
        shutil.copyfile(mimi, directory / MIMI_NAME)
    if Path(tokenizer).resolve() != (directory / TOKENIZER_NAME).resolve():
        shutil.copyfile(tokenizer, directory / TOKENIZER_NAME)
    config = {k: v for k, v in lm_cfg.items() if k not in ("lora", "lora_rank", "lora_scaling", "lora_name")}
    config.update(moshi_name=LM_NAME, mimi_name=MIMI_NAME, tokenizer_name=TOKENIZER_NAME, model_type="moshi")
    config.pop("mimi_config_name", None)
    if mimi_cfg is not None:
        (directory / MIMI_CONFIG_NAME).write_text(json.dumps(mimi_cfg, indent=1))
        config["mimi_config_name"] = MIMI_CONFIG_NAME
    (directory / "config.json").write_text(json.dumps(config, indent=1))
    return directory


def write_random_checkpoint(directory: Path, lm_cfg: dict[str, Any], mimi_cfg: dict[str, Any], tokenizer: Path,
                            seed: int = 0, dtype: torch.dtype = torch.float32) -> Path:
    """Random LM + Mimi weights in the local-checkpoint layout `load_models` reads."""
    torch.manual_seed(seed)
    lm = loaders.get_moshi_lm(None, lm_kwargs=copy.deepcopy(lm_cfg), device="cpu", dtype=dtype)
    return write_checkpoint(directory, lm, lm_cfg, loaders.get_mimi(None, mimi_cfg, device="cpu"), mimi_cfg, tokenizer)


def lm_config_of(info: loaders.CheckpointInfo) -> dict[str, Any]:
    """The LM kwargs a checkpoint was built with (moshi's 7B defaults for legacy repos)."""
    return copy.deepcopy(info.raw_config) if info.raw_config else copy.deepcopy(loaders._lm_kwargs)  # noqa: SLF001 - as above


_TINY_CORPUS = (
    "User: Alice Smith (id u1)\nFacts:\n- Alice is a nurse and lives in Lyon.\nPreferences:\n- likes green tea",
    "People:\n- Bob is their brother\n- Carol is their mother\nRecent conversations:\n- talked about hiking",
    "Retrieved for: relation=mother; keywords=exercise\nRelated memory:\n- Carol likes swimming every morning",
    "<retr>\nmother\nexercise<answer> Your mother likes swimming. What is my name? Your name is Dana.",
    "Hello, how are you today? I am fine, thank you. Do you remember my favourite food? You love pizza.",
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday one two three four five six seven 0 1 2 3",
    "Eve Frank Grace Heidi Ivan Judy Mallory Niaj Olivia Peggy Rupert Sybil Trent Victor Walter Yara Zoe",
)


def write_tiny_checkpoint(directory: Path, lm_cfg: dict[str, Any] | None = None,
                          mimi_cfg: dict[str, Any] | None = None, vocab_size: int = 200, seed: int = 0,
                          corpus: list[str] | None = None) -> Path:
    """A random checkpoint with a small sentencepiece tokenizer (trained on `corpus`, default a few
    MemChunk-like lines), for tests and CPU benchmarks."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lm_cfg = lm_cfg or lm_config()
    tokenizer = train_tokenizer(directory / "tokenizer.train.model", min(vocab_size, lm_cfg["text_card"]),
                                (corpus or list(_TINY_CORPUS)) * 20)
    write_random_checkpoint(directory, lm_cfg, mimi_cfg or mimi_config(), tokenizer, seed=seed)
    tokenizer.unlink()
    return directory


def checkpoint_info(source: str | Path) -> loaders.CheckpointInfo:
    """A local checkpoint directory, or a Hugging Face repository id (kyutai/moshiko-pytorch-bf16, ...)."""
    path = Path(source).expanduser()
    if path.is_dir():
        cfg_path = path / "config.json"
        if not cfg_path.is_file():
            raise FileNotFoundError(f"{path} has no config.json: not a moshi-style checkpoint directory")
        cfg = json.loads(cfg_path.read_text())
        tokenizer = path / cfg.get("tokenizer_name", loaders.TEXT_TOKENIZER_NAME)
        if not tokenizer.is_file():
            found = sorted(path.glob("*.model"))
            if not found:
                raise FileNotFoundError(f"{path}: no sentencepiece tokenizer ({tokenizer.name} or *.model)")
            tokenizer = found[0]
        files = {"moshi_weights": path / cfg.get("moshi_name", loaders.MOSHI_NAME),
                 "mimi_weights": path / cfg.get("mimi_name", loaders.MIMI_NAME)}
        for what, file in files.items():
            if not file.is_file():
                raise FileNotFoundError(f"{path}: {what} file {file.name} is missing")
        mimi_cfg = path / cfg["mimi_config_name"] if cfg.get("mimi_config_name") else None
        return loaders.CheckpointInfo.from_hf_repo(str(path), tokenizer=tokenizer, config_path=cfg_path,
                                                   mimi_config_path=mimi_cfg, **files)
    if str(source).count("/") != 1:
        raise FileNotFoundError(f"{source!r} is neither a checkpoint directory nor a Hugging Face repo id")
    return loaders.CheckpointInfo.from_hf_repo(str(source))


def load_models(source: str | Path, device: str = "cpu", dtype: torch.dtype | None = None) -> MoshiModels:
    """LM, Mimi and text tokenizer of one checkpoint (bf16 on CUDA, float32 on CPU by default)."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("dialog.device is 'cuda' but torch sees no CUDA device; use 'cpu'")
    info = checkpoint_info(source)
    dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    lm = info.get_moshi(device=device, dtype=dtype)
    mimi = info.get_mimi(device=device)
    log.info("loaded moshi checkpoint %s (%.1fM LM parameters, %s, %s)", source,
             sum(p.numel() for p in lm.parameters()) / 1e6, device, dtype)
    return MoshiModels(lm, mimi, info.get_text_tokenizer(), info)

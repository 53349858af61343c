"""Build the configured dialog process (moshi engine or cascaded LLM) from an `EgomemConfig`."""
from __future__ import annotations

from ..config import EgomemConfig
from ..retrieval.retr_protocol import RetrieveFn
from ..errors import EgomemError


class DialogSetupError(EgomemError, RuntimeError):
    """The configured dialog mode cannot start; the message says what to change."""


def load_dialog_models(source: str, device: str = "cpu", dtype: str = "auto"):
    """`MoshiModels` of a checkpoint (HF repo id or local dir), with errors a user can act on.

    `dtype`: auto (bf16 on CUDA, fp32 on CPU), fp32 or bf16."""
    if not source:
        raise DialogSetupError("no moshi checkpoint given: set a Hugging Face repo id (kyutai/moshiko-pytorch-bf16) "
                               "or a local checkpoint directory")
    try:
        import torch

        from .moshi_checkpoint import load_models
    except ImportError as err:
        raise DialogSetupError(f"moshi mode needs the moshi package ({err}); run scripts/bootstrap.sh, which installs "
                               "it with --no-deps because it pins an older torch") from err
    try:
        return load_models(source, device=device,
                           dtype={"auto": None, "fp32": torch.float32, "bf16": torch.bfloat16}[dtype])
    except (FileNotFoundError, RuntimeError, OSError) as err:
        raise DialogSetupError(f"cannot load moshi checkpoint {source!r}: {err}") from err


def build_moshi_engine(cfg: EgomemConfig):
    """A DialogEngine whose regions are memchunk.l1_max_tokens / l2_max_tokens steps long."""
    d = cfg.dialog
    if not d.checkpoint:
        raise DialogSetupError("dialog.mode is 'moshi' but dialog.checkpoint is empty: set a Hugging Face repo id "
                               "(kyutai/moshiko-pytorch-bf16) or a local checkpoint directory")
    models = load_dialog_models(d.checkpoint, d.device, d.dtype)
    from .engine import DialogEngine
    from .pinned_memory import RegionLayout

    layout = RegionLayout(cfg.memchunk.l1_max_tokens, cfg.memchunk.l2_max_tokens)
    return DialogEngine(models, layout, use_sampling=d.use_sampling, temp=d.temp, temp_text=d.temp_text,
                        top_k=d.top_k, top_k_text=d.top_k_text,
                        horizon="auto" if d.pinned_horizon < 0 else d.pinned_horizon, graph_prefill=d.graph_prefill)


def build_cascaded(cfg: EgomemConfig, retrieve: RetrieveFn | None):
    from ..memory.llm import client_from_section
    from .cascaded import CascadedDialog

    return CascadedDialog(client_from_section(cfg.dialog.llm, json_mode=False), retrieve,
                          use_tools=cfg.dialog.use_tools, retrieve_timeout_s=cfg.dialog.retrieve_timeout_s)

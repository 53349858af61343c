"""`egomem train dialog`: teach a moshi-family LM to use its MemChunks (paper §4.2).

Masked cross-entropy (`loss.py`) over `[L1 | L2 | dialog]` sequences laid out exactly as the runtime
attends them (`region_forward.py`), AdamW with warm-up and cosine decay (paper: 1e-5 -> 1.5e-6, batch
64 = `batch_size x grad_accum`), bf16 autocast on CUDA, optional LoRA (moshi's own `LoRALinear`, the
format moshi-finetune uses). Resumable: `OUT/train_state.pt` (weights being trained, optimizer,
scheduler, step) is written atomically every `save_every` steps and at the end; batches are a pure
function of (seed, step), so a resumed run sees the batches it would have seen. Metrics go to
`OUT/metrics.jsonl`; `OUT/checkpoint/` is a dialog-runtime checkpoint (LoRA merged).
"""
from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ...dialog.moshi_checkpoint import MoshiModels, lm_config_of, load_models, write_checkpoint
from ...dialog.pinned_memory import RegionLayout
from ...memchunk import SentencePieceTokenCounter
from .dataset import ChunkEncoder, SampleSet
from .loss import LossWeights, masked_loss
from .masks import TASKS
from .region_forward import batch_regions, forward_with_regions

log = logging.getLogger(__name__)
STATE, METRICS, EXPORT = "train_state.pt", "metrics.jsonl", "checkpoint"


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 8
    grad_accum: int = 8
    lr: float = 1e-5
    lr_min: float = 1.5e-6
    warmup_steps: int = 50
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    lora_rank: int = 0            # 0: full fine-tuning
    lora_scaling: float = 2.0
    tasks: tuple[str, ...] = TASKS
    l1_steps: int = 512
    l2_steps: int = 256
    loss: LossWeights = field(default_factory=LossWeights)
    amp: str = "auto"             # auto: bf16 autocast on CUDA, none on CPU; or "bf16" / "none"
    dtype: str = "fp32"           # weights: fp32, or bf16 (halves memory; meant for LoRA on a GPU)
    save_every: int = 200
    log_every: int = 10
    seed: int = 0

    @property
    def layout(self) -> RegionLayout:
        return RegionLayout(self.l1_steps, self.l2_steps)


def add_lora(lm: torch.nn.Module, rank: int, scaling: float) -> list[torch.nn.Parameter]:
    """moshi's LoRA on every linear layer of the LM (B starts at zero: the model is unchanged at step
    0); everything else frozen. Returns the trainable parameters."""
    from moshi.modules.lora import LoRALinear, replace_all_linear_with_lora

    replace_all_linear_with_lora(lm, rank, scaling)
    params = []
    for module in lm.modules():
        if isinstance(module, LoRALinear):
            torch.nn.init.zeros_(module.lora_B.weight)
    for name, p in lm.named_parameters():
        p.requires_grad = "lora_" in name
        if p.requires_grad:
            params.append(p)
    return params


def merged_state_dict(lm: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The LM's weights with every LoRA merged into its linear layer, under the plain layer names."""
    from moshi.modules.lora import LoRALinear

    merged = {f"{name}.weight": m.merge_weight() for name, m in lm.named_modules() if isinstance(m, LoRALinear)}
    out = {}
    for key, value in lm.state_dict().items():
        if ".lora_A." in key or ".lora_B." in key:
            continue
        if key.endswith(".frozen_W.weight"):
            key = key[:-len("frozen_W.weight")] + "weight"
            value = merged[key]
        out[key] = value
    return out


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay from `lr` to `lr_min` at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * min(1.0, progress)))


@functools.lru_cache(maxsize=4)
def _epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch)).tolist()


def batch_indices(n: int, step: int, micro: int, cfg: TrainConfig) -> list[int]:
    """Sample indices of one micro-batch: epochs of seeded permutations, a pure function of the step."""
    start = (step * cfg.grad_accum + micro) * cfg.batch_size
    return [_epoch_order(n, cfg.seed, pos // n)[pos % n] for pos in range(start, start + cfg.batch_size)]


def _atomic_save(obj: object, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


class DialogTrainer:
    def __init__(self, checkpoint: str | Path, data: Iterable[Path], out: Path, cfg: TrainConfig,
                 device: str = "cpu"):
        self.cfg, self.out, self.device = cfg, Path(out), device
        self.out.mkdir(parents=True, exist_ok=True)
        if cfg.dtype not in ("fp32", "bf16"):
            raise ValueError(f"dtype must be fp32 or bf16, not {cfg.dtype!r}")
        dtype = torch.bfloat16 if cfg.dtype == "bf16" else torch.float32
        self.models: MoshiModels = load_models(checkpoint, device=device, dtype=dtype)
        self.lm = self.models.lm
        self.samples = SampleSet(list(data), cfg.tasks)
        counter = SentencePieceTokenCounter(self.models.info.tokenizer, processor=self.models.tokenizer)
        self.chunks = ChunkEncoder(self.models.tokenizer, counter, cfg.layout)
        if cfg.lora_rank > 0:
            params = add_lora(self.lm, cfg.lora_rank, cfg.lora_scaling)
        else:
            params = [p for p in self.lm.parameters() if p.requires_grad]
        self.params = params
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
        self.step = 0
        self._resume()

    # -- state -----------------------------------------------------------------------------------------
    def _trainable_state(self) -> dict[str, torch.Tensor]:
        names = {id(p) for p in self.params}
        return {k: v for k, v in self.lm.named_parameters() if id(v) in names}

    def _resume(self) -> None:
        path = self.out / STATE
        if not path.is_file():
            return
        state = torch.load(path, map_location=self.device, weights_only=False)
        saved = {k: v for k, v in state["config"].items() if k not in ("steps", "save_every", "log_every")}
        now = {k: v for k, v in self._config_dict().items() if k in saved}
        if saved != now:
            raise ValueError(f"{path} was written with another training config; use a new --out or the same "
                             f"options (saved: {saved})")
        self.lm.load_state_dict(state["weights"], strict=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        log.info("resumed from %s at step %d", path, self.step)

    def _config_dict(self) -> dict:
        d = asdict(self.cfg)
        d["tasks"] = list(d["tasks"])
        return d

    def save(self) -> None:
        _atomic_save({"step": self.step, "weights": self._trainable_state(), "optimizer": self.optimizer.state_dict(),
                      "config": self._config_dict()}, self.out / STATE)

    # -- training --------------------------------------------------------------------------------------
    def _autocast(self):
        use = self.cfg.amp == "bf16" or (self.cfg.amp == "auto" and self.device.startswith("cuda"))
        return torch.autocast(device_type=self.device.split(":")[0], dtype=torch.bfloat16, enabled=use)

    def micro_step(self, indices: list[int]) -> dict[str, float]:
        batch = self.samples.batch(indices, self.chunks)
        regions = batch_regions(self.lm, self.cfg.layout, batch.l1_ids, batch.l2_ids).to(self.device)
        codes, mask = batch.codes.to(self.device), batch.mask.to(self.device)
        with self._autocast():
            out = forward_with_regions(self.lm, codes, regions, self.cfg.layout)
        loss, parts = masked_loss(out, codes, mask, self.lm.audio_offset, self.cfg.loss)
        (loss / self.cfg.grad_accum).backward()
        return parts

    def train(self, progress: Callable[[Iterable[int]], Iterable[int]] | None = None) -> dict[str, float]:
        cfg = self.cfg
        self.lm.train()
        metrics_file = open(self.out / METRICS, "a", encoding="utf-8")
        last: dict[str, float] = {}
        try:
            steps = range(self.step, cfg.steps)
            for step in progress(steps) if progress else steps:
                t0 = time.perf_counter()
                lr = lr_at(step, cfg)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                parts = [self.micro_step(batch_indices(len(self.samples), step, m, cfg))
                         for m in range(cfg.grad_accum)]
                grad_norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step = step + 1
                last = {k: sum(p[k] for p in parts) / len(parts) for k in parts[0]}
                last.update(step=self.step, lr=lr, grad_norm=float(grad_norm), seconds=time.perf_counter() - t0)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    metrics_file.write(json.dumps(last) + "\n")
                    metrics_file.flush()
                if self.step % cfg.save_every == 0:
                    self.save()
        finally:
            metrics_file.close()
            self.save()
        self.lm.eval()
        return last

    def export(self) -> Path:
        """A dialog-runtime checkpoint of the trained model in OUT/checkpoint (LoRA merged)."""
        info = self.models.info
        return write_checkpoint(self.out / EXPORT, merged_state_dict(self.lm), lm_config_of(info),
                                Path(info.mimi_weights), info.mimi_config, Path(info.tokenizer))

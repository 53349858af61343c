"""`egomem make-data transcripts|streams`, `egomem train dialog`, `egomem eval dialog-memory` (paper §4)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import ConfigOption, console, fail, get_config
from .eval_cmds import JsonOption, eval_app, progress, report
from .memory_mgmt_cmds import train_app

data_app = typer.Typer(no_args_is_help=True, help="Build EgoMem fine-tuning data (transcripts, token streams).")


def _range(text: str, what: str) -> tuple[int, int]:
    try:
        lo, _, hi = text.partition("-")
        pair = (int(lo), int(hi or lo))
    except ValueError:
        fail(f"{what} must look like 3-5 or 2, not {text!r}")
    if pair[0] < 0 or pair[1] < pair[0]:
        fail(f"{what}: bad range {text!r}")
    return pair


@data_app.command("transcripts")
def make_transcripts(out: Annotated[Path, typer.Option("--out", "-o", help="Transcript JSON file to write.")],
                     profiles: Annotated[int, typer.Option(help="Main user profiles.")] = 50,
                     level1: Annotated[int, typer.Option(help="Level-1 dialogs.")] = 200,
                     level2: Annotated[int, typer.Option(help="Level-2 dialogs.")] = 100,
                     turns: Annotated[str, typer.Option(help="Turns per dialog, e.g. 3-5.")] = "3-5",
                     connected: Annotated[str, typer.Option(help="Connected users per main user, e.g. 3-5.")] = "3-5",
                     seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
                     llm: Annotated[bool, typer.Option(help="Write dialogs with the LLM of memory.llm in the config.")] = False,
                     config: ConfigOption = None) -> None:
    """Synthetic profiles, relation graphs and Level-1 / Level-2 dialogs (templates, or an LLM)."""
    from ..finetune.schema import save_transcripts
    from ..finetune.transcripts import make_transcripts as build
    from ..memory.llm import LLMError, client_from_section

    client = client_from_section(get_config(config).memory.llm) if llm else None
    try:
        data = build(n_profiles=profiles, n_level1=level1, n_level2=level2, seed=seed, turns=_range(turns, "--turns"),
                     connected=_range(connected, "--connected"), client=client, progress=progress("dialogs", False))
    except LLMError as err:
        fail(f"LLM failed: {err}")
    except ValueError as err:
        fail(str(err))
    save_transcripts(data, out)
    console.print(f"wrote {len(data.profiles)} profiles, {len(data.graphs)} graphs, {len(data.dialogs)} dialogs to {out}")
    console.print(f"backend: {data.backend} ({data.note})")


@data_app.command("streams")
def make_streams(transcripts: Annotated[Path, typer.Argument(help="Transcript JSON (make-data transcripts).")],
                 checkpoint: Annotated[str, typer.Option(help="moshi checkpoint dir or HF repo: its Mimi and tokenizer.")],
                 out: Annotated[Path, typer.Option("--out", "-o", help="Folder for shards + manifest.json.")],
                 max_steps: Annotated[int, typer.Option(help="Steps per sample, MemChunk slots included.")] = 8192,
                 l1_steps: Annotated[int, typer.Option(help="Level-1 slot steps.")] = 512,
                 l2_steps: Annotated[int, typer.Option(help="Level-2 slot steps.")] = 256,
                 dialogs_per_stream: Annotated[str, typer.Option(help="Dialogs concatenated per stream, e.g. 2-4.")] = "2-4",
                 repeats: Annotated[int, typer.Option(help="Use every dialog this many times.")] = 1,
                 split: Annotated[str, typer.Option(help="train or test (disjoint voices and noise).")] = "train",
                 per_shard: Annotated[int, typer.Option(help="Streams per shard file.")] = 64,
                 seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
                 device: Annotated[str, typer.Option(help="Device for Mimi.")] = "cpu") -> None:
    """TTS (espeak-ng), noise/echo/interruptions, Mimi tokens and MemChunk texts -> safetensors shards."""
    from ..dialog.pinned_memory import RegionLayout
    from ..finetune.schema import load_transcripts
    from ..finetune.streams import StreamConfig
    from ..finetune.streams import make_streams as build

    try:
        data = load_transcripts(transcripts)
    except (FileNotFoundError, ValueError) as err:
        fail(str(err))
    if not data.dialogs:
        fail(f"{transcripts} has no usable dialog")
    models = load_checkpoint(checkpoint, device)
    cfg = StreamConfig(max_steps=max_steps, layout=RegionLayout(l1_steps, l2_steps),
                       dialogs_per_stream=_range(dialogs_per_stream, "--dialogs-per-stream"), split=split)
    try:
        manifest = build(data, models, out, cfg, seed=seed, repeats=repeats, per_shard=per_shard,
                         progress=progress("streams", False))
    except (RuntimeError, ValueError) as err:
        fail(str(err))
    n = sum(len(s["streams"]) for s in manifest["shards"])
    console.print(f"{n} streams in {len(manifest['shards'])} shard(s) under {out} (transcripts: {data.backend})")


@train_app.command("dialog")
def train_dialog(data: Annotated[list[Path], typer.Argument(help="Stream folder(s) from make-data streams.")],
                 checkpoint: Annotated[str, typer.Option(help="moshi checkpoint dir or HF repo to start from.")],
                 out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (state, metrics, checkpoint/).")],
                 steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 1000,
                 batch_size: Annotated[int, typer.Option(help="Samples per micro-batch.")] = 8,
                 grad_accum: Annotated[int, typer.Option(help="Micro-batches per step (paper: 64 samples).")] = 8,
                 lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-5,
                 lr_min: Annotated[float, typer.Option(help="Final learning rate (cosine).")] = 1.5e-6,
                 warmup: Annotated[int, typer.Option(help="Warm-up steps.")] = 50,
                 lora_rank: Annotated[int, typer.Option(help="LoRA rank; 0 = full fine-tuning.")] = 0,
                 tasks: Annotated[str, typer.Option(help="Comma list of l1, l2_query, l2_response.")] = "l1,l2_query,l2_response",
                 l1_steps: Annotated[int, typer.Option(help="Level-1 region steps.")] = 512,
                 l2_steps: Annotated[int, typer.Option(help="Level-2 region steps.")] = 256,
                 audio_weight: Annotated[float, typer.Option(help="Weight of the speak-codebook loss.")] = 1.0,
                 amp: Annotated[str, typer.Option(help="Autocast: auto (bf16 on CUDA), bf16 or none.")] = "auto",
                 dtype: Annotated[str, typer.Option(help="Weights: fp32, or bf16 (for LoRA on a GPU).")] = "fp32",
                 save_every: Annotated[int, typer.Option(help="Steps between resumable states.")] = 200,
                 seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
                 device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu") -> None:
    """Fine-tune the dialog LM on masked samples; resumes from OUT if it holds a state; exports OUT/checkpoint."""
    from ..dialog.factory import DialogSetupError
    from ..finetune.loss import LossWeights
    from ..finetune.trainer import DialogTrainer, TrainConfig

    if amp not in ("auto", "bf16", "none"):
        fail(f"--amp must be auto, bf16 or none, not {amp!r}")
    cfg = TrainConfig(steps=steps, batch_size=batch_size, grad_accum=grad_accum, lr=lr, lr_min=lr_min,
                      warmup_steps=warmup, lora_rank=lora_rank, tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()),
                      l1_steps=l1_steps, l2_steps=l2_steps, loss=LossWeights(audio=audio_weight), amp=amp, dtype=dtype,
                      save_every=save_every, seed=seed)
    try:
        trainer = DialogTrainer(checkpoint, data, out, cfg, device=device)
    except (FileNotFoundError, ValueError, RuntimeError, DialogSetupError) as err:
        fail(str(err))
    if trainer.step:
        console.print(f"resuming at step {trainer.step} of {steps}")
    last = trainer.train(progress=progress("training", False))
    path = trainer.export()
    report({**last, "checkpoint": str(path), "samples": len(trainer.samples)}, False, "dialog fine-tuning")


@eval_app.command("dialog-memory")
def eval_dialog_memory(data: Annotated[list[Path], typer.Argument(help="Held-out stream folder(s).")],
                       checkpoint: Annotated[str, typer.Option(help="Fine-tuned checkpoint (train dialog's OUT/checkpoint).")],
                       l1_steps: Annotated[int, typer.Option(help="Level-1 region steps.")] = 512,
                       l2_steps: Annotated[int, typer.Option(help="Level-2 region steps.")] = 256,
                       device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
                       as_json: JsonOption = False) -> None:
    """Fact accuracy with the user's L1 chunk vs a blank and a swapped chunk."""
    from ..dialog.pinned_memory import RegionLayout
    from ..finetune.dataset import ChunkEncoder, SampleSet
    from ..finetune.evaluate import fact_accuracy
    from ..memchunk import SentencePieceTokenCounter

    models = load_checkpoint(checkpoint, device)
    layout = RegionLayout(l1_steps, l2_steps)
    try:
        samples = SampleSet(data, ("l1",))
        counter = SentencePieceTokenCounter(models.info.tokenizer, processor=models.tokenizer)
        result = fact_accuracy(models.lm, samples, ChunkEncoder(models.tokenizer, counter, layout), layout,
                               progress=progress("turns", as_json))
    except (FileNotFoundError, ValueError) as err:
        fail(str(err))
    report(result, as_json, "answers from the MemChunk")


def load_checkpoint(source: str, device: str):
    from ..dialog.factory import DialogSetupError, load_dialog_models

    try:
        return load_dialog_models(source, device, "fp32")
    except DialogSetupError as err:
        fail(str(err))


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="make-data")

"""`egomem train ...`: the models trained on this machine (the episodic trigger, the relation-word
classifier, the dialog model's memory fine-tuning, paper §4)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import track

from .common import console, err_console, fail, progress, report


train_app = typer.Typer(no_args_is_help=True, help="Train a model on this machine.")


@train_app.command("trigger")
def train_trigger(streams: Annotated[Path, typer.Argument(help="Folder of labelled stream folders.")],
                  out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint file (.pt).")],
                  steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 8000,
                  batch: Annotated[int, typer.Option(help="Crops per step.")] = 8,
                  crop: Annotated[int, typer.Option(help="Steps per crop (8192 on a GPU).")] = 2048,
                  d_model: Annotated[int, typer.Option(help="Transformer width.")] = 64,
                  layers: Annotated[int, typer.Option(help="Transformer layers.")] = 2,
                  seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
                  val_fraction: Annotated[float, typer.Option(
                      help="Streams held out to tune the voice-split settings: whole voices (from meta.json) "
                           "that training never hears.")] = 0.1,
                  device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
                  retune: Annotated[bool, typer.Option(
                      help="Do not train: tune the voice-split settings of the checkpoint at --out again, on the "
                           "voices its training held out of STREAMS (after a decoder change).")] = False) -> None:
    """Train the episodic-trigger tagger (2 CPU cores: ~9 min at the defaults), then tune its voice-split
    settings on held-out voices."""
    from ..memory.sessions import stream_dirs
    from ..memory.tagger import TaggerConfig
    from ..tools.datagen.tagger_train import TrainConfig, retune_tagger, train_tagger

    if not 0.0 <= val_fraction < 1.0:
        fail("--val-fraction must be in [0, 1)")
    try:
        dirs = stream_dirs(streams)
        if retune:
            if not out.is_file():
                fail(f"{out}: no checkpoint to retune")
            report(retune_tagger(out, dirs, progress=lambda it: track(it, description="held-out streams",
                                                                       console=err_console)),
                   False, "trigger tagger retuned")
            return
        summary = train_tagger(dirs, out, model_cfg=TaggerConfig(d_model=d_model, layers=layers),
                               train_cfg=TrainConfig(steps=steps, batch=batch, crop_steps=crop, seed=seed,
                                                     val_fraction=val_fraction),
                               progress=lambda it: track(it, description="training", console=err_console),
                               device=device)
    except (FileNotFoundError, ValueError) as err:
        fail(str(err))
    report(summary, False, "trigger tagger trained")


@train_app.command("relations")
def train_relations(out: Annotated[Path, typer.Option("--out", "-o", help="Weights file (.npz).")] = Path(
        "egomem_ros/data/relation_classifier.npz")) -> None:
    """Train the relation-word classifier Level-2 runs with the minilm backend, on WordNet's person words
    under each lexicon relation (needs wordnet-base; ~15 s on 2 cores)."""
    from ..tools.datagen.relation_train import write_relation_classifier
    from ..retrieval.rerank import make_reranker

    if not out.parent.is_dir():
        fail(f"output directory {out.parent} does not exist")
    try:
        encoder = make_reranker("minilm", precision="fp32")
        path = write_relation_classifier(out, encoder.embed)
    except RuntimeError as err:
        fail(str(err))
    console.print(f"wrote {path}")


@train_app.command("cues")
def train_cues(out: Annotated[Path, typer.Option("--out", "-o", help="Weights file (.npz).")] = Path(
        "egomem_ros/data/cue_intent.npz"),
               conversations: Annotated[list[Path] | None, typer.Option(
                   "--conversations", help="Conversation files whose clauses are ordinary talk (repeatable; "
                   "default: bench/data/conversations/conv01-06.json).")] = None) -> None:
    """Train the privacy cue classifier (memory/cue_intent.py) on data/privacy_intents.yaml and ordinary
    conversation (~20 s on 2 cores). Run from the repository root: the default paths are relative to it, and
    the default --out is the shipped weights file."""
    from ..tools.datagen.cue_train import write_cue_intent
    from ..retrieval.rerank import make_reranker

    conversations = conversations or [Path(f"bench/data/conversations/conv0{i}.json") for i in range(1, 7)]
    missing = [str(f) for f in conversations if not f.is_file()]
    if missing or not out.parent.is_dir():
        fail(f"not found: {', '.join(missing) or out.parent} (the default paths are relative to the repository "
             "root: run from there, or pass --conversations and --out)")
    quality = write_cue_intent(out, make_reranker("minilm", precision="fp32").embed, conversations)
    console.print(f"wrote {out}")
    console.print("5-fold cross-validated, at the shipped threshold: " + ", ".join(
        f"{name} {value:.2f}" for name, value in quality.items()))


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
    from ..tools.finetune.loss import LossWeights
    from ..tools.finetune.trainer import DialogTrainer, TrainConfig

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


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")

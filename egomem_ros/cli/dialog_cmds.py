"""`egomem dialog ...`: the moshi-family dialog runtime without ROS (audio file in, audio + text out)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import track

from .common import ConfigOption, console, err_console, fail, get_config

dialog_app = typer.Typer(no_args_is_help=True, help="Dialog runtime: moshi with pinned MemChunks.")


@dialog_app.command("run")
def run(audio: Annotated[Path, typer.Argument(help="User audio (wav/flac, any rate; resampled to 24 kHz).")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Robot speech to write (24 kHz wav).")],
        checkpoint: Annotated[Optional[str], typer.Option(help="HF repo id or local dir (default: dialog.checkpoint).")] = None,
        profile: Annotated[str, typer.Option(help="Level-1 MemChunk text (the user's profile).")] = "",
        level2: Annotated[str, typer.Option(help="Level-2 MemChunk text.")] = "",
        device: Annotated[Optional[str], typer.Option(help="cpu or cuda (default: dialog.device).")] = None,
        config: ConfigOption = None) -> None:
    """Step the model over an audio file, frame by frame, as the robot would in real time."""
    import numpy as np
    import soundfile as sf

    from ..dialog.engine import FRAME_SAMPLES, SAMPLE_RATE
    from ..dialog.factory import DialogSetupError, build_moshi_engine
    from ..retrieval.media import MediaError, load_audio

    cfg = get_config(config)
    updates = {"checkpoint": checkpoint or cfg.dialog.checkpoint, "device": device or cfg.dialog.device}
    cfg = cfg.model_copy(update={"dialog": cfg.dialog.model_copy(update=updates)})
    try:
        pcm = load_audio(audio, SAMPLE_RATE)
    except (MediaError, OSError) as err:
        fail(f"{audio}: {err}")
    try:
        engine = build_moshi_engine(cfg)
    except DialogSetupError as err:
        fail(str(err))
    for level, text in ((1, profile), (2, level2)):
        if text:
            engine.set_memchunk(level, text)
    frames = len(pcm) // FRAME_SAMPLES
    if frames == 0:
        fail(f"{audio}: shorter than one 80 ms frame")
    speech, text = [], []
    for i in track(range(frames), description="dialog steps", console=err_console):
        step = engine.step(pcm[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES])
        speech.append(step.pcm if step.pcm is not None else np.zeros(FRAME_SAMPLES, dtype=np.float32))
        text.append(step.text or "")
        for query in step.queries:
            console.print(f"<retr> query: relation={list(query.relation_query)} keywords={list(query.keyword_query)}")
    sf.write(out, np.concatenate(speech), SAMPLE_RATE)
    console.print(f"{frames} steps; text: {''.join(text).strip()!r}")
    console.print(f"robot speech: {out}")


@dialog_app.command("make-random-checkpoint")
def make_random_checkpoint(directory: Annotated[Path, typer.Argument(help="Directory to create.")],
                           dim: int = 64, layers: int = 2, seed: int = 0) -> None:
    """Write a RANDOM-weight moshi-layout checkpoint (LM, Mimi, tokenizer) to try the pipeline offline.

    It speaks noise and babble: real weights (kyutai/moshiko-pytorch-bf16) need a download."""
    from ..dialog import moshi_checkpoint as mc

    if directory.exists() and any(directory.iterdir()):
        fail(f"{directory} exists and is not empty")
    mc.write_tiny_checkpoint(directory, mc.lm_config(dim=dim, num_layers=layers), seed=seed)
    console.print(f"random checkpoint (not a trained model) written to {directory}")


def register(app: typer.Typer) -> None:
    app.add_typer(dialog_app, name="dialog")

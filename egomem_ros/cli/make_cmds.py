"""`egomem make-bench ...`, `egomem make-data ...` and `egomem make-streams`: the data the benchmarks and
the training read, generated here."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import track

from .common import ConfigOption, console, err_console, fail, get_config, progress
from .eval_cmds import load_checkpoint


make_bench_app = typer.Typer(no_args_is_help=True, help="Generate synthetic benchmark files.")


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


@make_bench_app.command("text")
def make_bench_text(out: Annotated[Path, typer.Option("--out", "-o", help="Output JSON file.")],
                    users: Annotated[int, typer.Option("--users", help="Main users (each with 3-5 connections).")] = 40,
                    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
                    queries_per_user: Annotated[int, typer.Option(help="Queries per main user.")] = 5) -> None:
    """Synthetic Level-2 benchmark sized like the paper's (≈500 tuples, ≈200 queries at 40 users)."""
    from ..tools.text_bench import generate_text_bench, write_bench

    if users < 1:
        fail("--users must be at least 1")
    if not out.parent.is_dir():
        fail(f"output directory {out.parent} does not exist")
    data = generate_text_bench(users, seed=seed, queries_per_user=queries_per_user)
    write_bench(data, out)
    n_facts = sum(len(u["facts"]) for u in data["users"])
    console.print(f"wrote {out}: {len(data['users'])} users, {len(data['edges'])} edges, "
                  f"{n_facts} facts, {len(data['queries'])} queries")


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
    from ..tools.finetune.schema import save_transcripts
    from ..tools.finetune.transcripts import make_transcripts as build
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
def make_data_streams(transcripts: Annotated[Path, typer.Argument(help="Transcript JSON (make-data transcripts).")],
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
    from ..tools.finetune.schema import load_transcripts
    from ..tools.finetune.streams import StreamConfig
    from ..tools.finetune.streams import make_streams as build

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


def make_streams(out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the stream folders.")],
                 count: Annotated[int, typer.Option(help="Number of streams.")] = 20,
                 split: Annotated[str, typer.Option(help="train or test (disjoint voices and noise kinds).")] = "train",
                 seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
                 p_back_to_back: Annotated[float, typer.Option(
                     help="Probability that the next user starts right after a session (no gap).")] = 0.3,
                 voice_warp: Annotated[float, typer.Option(
                     help="Warp each user's voice (formants, pitch, tempo) by a factor up to 1 + this (0: off, as the "
                          "test streams are made).")] = 0.0,
                 random_voices: Annotated[float, typer.Option(
                     help="Train split: probability that a user is a generated espeak-ng variant (a new speaker) "
                          "instead of one of the pool's.")] = 0.0,
                 klatt_voices: Annotated[float, typer.Option(
                     help="With --random-voices: probability that a generated voice speaks through espeak-ng's "
                          "Klatt synthesizer (voicing sources 2-4; the test voice klatt uses 1).")] = 0.0,
                 voices: Annotated[str, typer.Option(
                     help="Comma-separated espeak-ng voices (base+variant) to draw the users from instead of the "
                          "split's pool, e.g. variants neither training nor the test split uses.")] = "",
                 user_speech: Annotated[Optional[Path], typer.Option(
                     help="Folder with one subfolder of recordings (wav/flac) per real speaker: the users' turns "
                          "come from them instead of espeak-ng (the robot stays espeak-ng).")] = None,
                 speakers: Annotated[str, typer.Option(
                     help="With --user-speech: only speaker folders matching this glob, e.g. 'librispeech_*'.")] = "*",
                 turn_jitter: Annotated[float, typer.Option(
                     help="0-1: each user's pitch, speed, level and spectral tilt vary from turn to turn by up to "
                          "this (1: pitch +-15, speed +-20 wpm, level x1.5, tilt +-0.8).")] = 0.0,
                 workers: Annotated[int, typer.Option(help="Parallel processes.")] = 2) -> None:
    """Synthesize dialog streams (espeak-ng voices, robot voice, noise, echo, interruptions)."""
    from ..tools.datagen.synth import make_streams as synth

    if count < 1:
        fail("--count must be at least 1")
    try:
        paths = synth(out, count, seed=seed, split=split, workers=workers, p_back_to_back=p_back_to_back,
                      voice_warp=voice_warp, random_voices=random_voices, klatt_voices=klatt_voices,
                      voices=[v.strip() for v in voices.split(",") if v.strip()], user_speech=user_speech,
                      speakers=speakers, turn_jitter=turn_jitter,
                      progress=lambda it, total: track(it, total=total, description="streams", console=err_console))
    except (RuntimeError, ValueError) as err:
        fail(str(err))
    console.print(f"wrote {len(paths)} {split} streams under {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(make_bench_app, name="make-bench")
    app.add_typer(data_app, name="make-data")
    app.command("make-streams")(make_streams)

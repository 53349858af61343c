"""`egomem make-streams`, `egomem train trigger`, `egomem eval trigger`: the episodic trigger;
`egomem train relations`: the Level-2 relation-word classifier."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import track

from .common import console, err_console, fail
from .eval_cmds import JsonOption, eval_app, progress, report

train_app = typer.Typer(no_args_is_help=True, help="Train a model on this machine.")


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
    from ..datagen.synth import make_streams as synth

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
    from ..datagen.tagger_train import TrainConfig, retune_tagger, train_tagger

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
    from ..datagen.relation_train import write_relation_classifier
    from ..retrieval.rerank import make_reranker

    if not out.parent.is_dir():
        fail(f"output directory {out.parent} does not exist")
    try:
        encoder = make_reranker("minilm", precision="fp32")
        path = write_relation_classifier(out, encoder.embed)
    except RuntimeError as err:
        fail(str(err))
    console.print(f"wrote {path}")


@eval_app.command("trigger")
def eval_trigger(directory: Annotated[Path, typer.Argument(help="Stream folder, or a folder of them.")],
                 as_json: JsonOption = False,
                 segmenter: Annotated[str, typer.Option(help="baseline or tagger.")] = "baseline",
                 checkpoint: Annotated[Optional[Path], typer.Option(
                     help="Tagger checkpoint (.pt); default: the one shipped in the package.")] = None,
                 speaker_change: Annotated[bool, typer.Option(help="Baseline: split on voice changes.")] = True,
                 voice_contrast: Annotated[Optional[float], typer.Option(
                     help="Tagger: the voice contrast that cuts a region (default: the checkpoint's, tuned on "
                          "espeak-ng voices; real speakers need more, see docs/results.md).")] = None,
                 rttm_gap: Annotated[float, typer.Option(help="RTTM truth: max gap (s) inside one session.")] = 3.0) -> None:
    """Episodic trigger: Jaccard and span_match@0/5/10 P/R/F1, seconds per 8192 steps."""
    from ..eval.trigger_eval import evaluate_trigger

    if not directory.exists():
        fail(f"not found: {directory}")
    try:
        seg = _segmenter(segmenter, checkpoint, speaker_change, voice_contrast)
        result = evaluate_trigger(directory, seg, progress=progress("streams", as_json), rttm_max_gap_s=rttm_gap)
    except (FileNotFoundError, ValueError) as err:
        fail(str(err))
    report(result, as_json, f"episodic trigger ({result['segmenter']})")


def _segmenter(kind: str, checkpoint: Path | None, speaker_change: bool, voice_contrast: float | None = None):
    if kind == "baseline":
        from ..memory.trigger import BaselineSegmenter

        voice = None
        if speaker_change:
            from ..config import EgomemConfig
            from ..retrieval.factory import make_voice_engine

            voice = make_voice_engine(EgomemConfig().identity)
        return BaselineSegmenter(voice_engine=voice)
    if kind == "tagger":
        from ..memory.tagger import TaggerSegmenter

        return TaggerSegmenter.load(checkpoint, voice_split_contrast=voice_contrast)
    fail(f"--segmenter must be baseline or tagger, not {kind!r}")


def register(app: typer.Typer) -> None:
    app.command("make-streams")(make_streams)
    app.add_typer(train_app, name="train")


@eval_app.command("extract")
def eval_extract(file: Annotated[Path, typer.Argument(help="JSON list of dialogs with expected items.")],
                 as_json: JsonOption = False,
                 extractor: Annotated[str, typer.Option(help="rules or llm.")] = "rules",
                 config: Annotated[Optional[Path], typer.Option(
                     "--config", "-c", help="Config with memory.llm.")] = None) -> None:
    """Memory extraction precision/recall per kind (name, facts, preferences, events, relations)."""
    from pydantic import ValidationError

    from ..config import format_validation_error
    from ..eval.extract_eval import evaluate_extraction
    from ..memory.disclosure import offline_extractor
    from ..memory.extraction import LLMExtractor
    from ..memory.llm import LLMError
    from .common import get_config

    if not file.is_file():
        fail(f"not found: {file}")
    if extractor == "rules":
        ext = offline_extractor()
    elif extractor == "llm":
        from ..memory.llm import client_from_section

        ext = LLMExtractor(client_from_section(get_config(config).memory.llm))
    else:
        fail(f"--extractor must be rules or llm, not {extractor!r}")
    try:
        result = evaluate_extraction(file, ext, progress=progress("dialogs", as_json))
    except ValidationError as err:
        fail(f"{file}: {format_validation_error(err, 'extraction benchmark')}")
    except LLMError as err:
        fail(f"LLM extractor failed: {err}")
    report(result, as_json, f"memory extraction ({ext.name})")

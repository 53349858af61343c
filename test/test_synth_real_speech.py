"""Trigger streams whose users are real recorded speakers (`egomem make-streams --user-speech`)."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from egomem_ros.memory.sessions import load_stream, sessions_from_labels
from egomem_ros.tools.datagen.synth import SR, make_streams, recorded_turn, speech_speakers


def test_streams_of_real_speakers(shared_data, tmp_path):
    speech = shared_data / "speech"
    paths = make_streams(tmp_path / "real", 2, seed=3, split="test", workers=1, user_speech=speech,
                         speakers="librispeech_*")
    for path in paths:
        meta = json.loads((path / "meta.json").read_text())
        voices = [s["voice"] for s in meta["sessions"]]
        assert all(v.startswith("librispeech_") for v in voices) and len(set(voices)) == len(voices)
        for session in meta["sessions"]:  # every user turn names recordings of that session's speaker
            for turn in session["turns"][::2]:
                used = turn["text"].removeprefix("(recording ").removesuffix(")").split(" + ")
                assert all((speech / session["voice"] / name).is_file() for name in used)
        stream = load_stream(path)
        sessions = sessions_from_labels(stream.labels)
        assert len(sessions) == len(voices)
        for s, m in zip(sessions, meta["sessions"]):  # labels where the recording starts and the robot ends
            assert abs(s.start * 0.08 - m["start_s"]) < 0.08 and abs(s.end * 0.08 - m["end_s"]) < 0.16


def test_short_recordings_are_joined_into_a_turn(shared_data):
    files = [str(f) for f in sorted((shared_data / "speech" / "fsdd_george").glob("*.wav"))]
    turn, used = recorded_turn(files, random.Random(0), gain=0.5)
    assert len(turn) >= 1.5 * SR and len(used) >= 2       # spoken digits last under a second each
    assert abs(float(np.max(np.abs(turn))) - 0.5) < 1e-4


def test_bad_speech_folders_are_refused(shared_data, tmp_path):
    (tmp_path / "only_one").mkdir()
    (tmp_path / "only_one" / "a.wav").write_bytes((shared_data / "speech" / "fsdd_george" / "1.wav").read_bytes())
    with pytest.raises(ValueError, match="at least 2 speakers"):
        speech_speakers(tmp_path)
    with pytest.raises(ValueError, match="not a folder"):
        speech_speakers(tmp_path / "missing")
    with pytest.raises(ValueError, match="no --voices"):
        make_streams(tmp_path / "x", 1, user_speech=shared_data / "speech", voices=["en-us+m7"])
    import soundfile as sf

    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), SR)  # a header and no samples: named
    with pytest.raises(ValueError, match="empty.wav"):
        recorded_turn([str(tmp_path / "empty.wav")], random.Random(0), gain=0.5)


def test_turn_jitter_varies_a_voice_from_turn_to_turn(tmp_path):
    """Off, a user's turns are espeak-ng's one voice (the streams stay as they were made); on, pitch, speed,
    level and tilt move from turn to turn, within the stated ranges."""
    from egomem_ros.tools.datagen.synth import StreamSpec, Voice, jittered_turn, make_stream, tts

    voice = Voice("en-us+m3", 160, 50, 0.6)
    plain = tts("I really like chess.", voice, random.Random(1), tmp_path)
    varied = [jittered_turn("I really like chess.", voice, 1.0, random.Random(seed), tmp_path) for seed in range(4)]
    assert len({len(v) for v in varied} | {len(plain)}) > 2     # another speed, another length
    for v in varied:
        assert 0.6 / 1.6 < np.std(v) / np.std(plain) < 1.6 * 1.6  # level within x/÷ 1.5 (and the tilt's RMS kept)
    listen_off, *_ = make_stream(StreamSpec(sessions=2, seed=9), tmp_path)
    listen_again, *_ = make_stream(StreamSpec(sessions=2, seed=9, turn_jitter=0.0), tmp_path)
    assert np.array_equal(listen_off, listen_again)
    with pytest.raises(ValueError, match="turn_jitter"):
        make_streams(tmp_path / "x", 1, turn_jitter=1.5)


def test_voice_contrast_override_from_config_and_cli(shared_data, tmp_path):
    """Real speakers need a larger voice contrast than the espeak-ng-tuned one in the checkpoint: the
    config and `eval trigger --voice-contrast` override it; a nonsense value is refused with a message."""
    import subprocess
    import sys

    from egomem_ros.config import EgomemConfig
    from egomem_ros.memory.manager import build_memory_manager
    from egomem_ros.memory.tagger import TaggerSegmenter
    from egomem_ros.store import SqliteStore

    shipped = TaggerSegmenter.load().decode_cfg.voice_split_contrast
    assert TaggerSegmenter.load(voice_split_contrast=0.15).decode_cfg.voice_split_contrast == 0.15 != shipped
    with pytest.raises(ValueError, match="voice_split_contrast"):
        TaggerSegmenter.load(voice_split_contrast=-1.0)
    cfg = EgomemConfig.model_validate({"memory": {"segmenter": "tagger", "trigger_voice_split_contrast": 0.15}})
    with SqliteStore(tmp_path / "m.db") as store:
        manager = build_memory_manager(store, cfg, db_path=tmp_path / "m.db")
        assert manager.segmenter.primary.decode_cfg.voice_split_contrast == 0.15
    streams = make_streams(tmp_path / "real", 1, seed=4, split="test", workers=1, user_speech=shared_data / "speech")
    cli = [sys.executable, "-m", "egomem_ros.cli.main", "eval", "trigger", str(streams[0]), "--json", "--segmenter",
           "tagger", "--voice-contrast"]
    ok = subprocess.run(cli + ["0.15"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(cli + ["5"], capture_output=True, text=True)
    assert bad.returncode != 0 and "voice_split_contrast" in bad.stderr + bad.stdout


def test_a_part_before_the_robot_speaks_joins_the_next():
    """A voice cut inside a user's first turn (before any robot reply) must not lose those first words."""
    from egomem_ros.memory.sessions import Session
    from egomem_ros.memory.tagger import join_robotless

    robot = np.zeros(300, bool)
    robot[120:140] = robot[220:240] = True           # the robot answers twice
    parts = [Session(10, 60), Session(61, 150), Session(160, 250)]
    assert join_robotless(parts, robot, 6) == [Session(10, 150), Session(160, 250)]
    assert join_robotless(parts[1:], robot, 6) == parts[1:]          # both parts hold robot speech: kept
    assert join_robotless([Session(10, 60), Session(61, 100)], robot, 6) == [Session(10, 100)]

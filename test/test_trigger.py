"""Episodic trigger: labels, metrics, stream format, synthesis, baseline and tagger."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from egomem_ros.memory.sessions import (Session, jaccard, labels_from_sessions, load_stream, prf, read_labels,
                                        sessions_from_labels, sessions_from_rttm, span_match, write_labels)

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def test_labels_roundtrip_and_lenient_decoding():
    sessions = [Session(2, 6), Session(7, 12), Session(20, 25)]
    labels = labels_from_sessions(sessions, 30)
    assert labels.tolist()[:14] == [0, 0, 1, 2, 2, 2, 3, 1, 2, 2, 2, 2, 3, 0]
    assert sessions_from_labels(labels) == sessions
    assert sessions_from_labels(np.array([0, 2, 2, 2, 0, 1, 2, 1, 2, 3])) == [Session(1, 3), Session(5, 6), Session(7, 9)]


def test_metrics():
    g = [Session(10, 50), Session(60, 100)]
    p = [Session(12, 49), Session(70, 100)]
    assert span_match(p, g, 0) == (0, 2, 2)
    assert span_match(p, g, 5) == (1, 2, 2)
    assert span_match(p, g, 10) == (2, 2, 2)
    assert prf(1, 2, 2)["f1"] == pytest.approx(0.5)
    gl, pl = labels_from_sessions(g, 120), labels_from_sessions(p, 120)
    assert jaccard(gl, gl) == 1.0 and 0.8 < jaccard(pl, gl) < 1.0
    assert jaccard(np.zeros(5), np.zeros(5)) == 1.0


def test_labels_csv_and_rttm(tmp_path):
    labels = labels_from_sessions([Session(1, 5)], 10)
    write_labels(tmp_path / "labels.csv", labels)
    assert read_labels(tmp_path / "labels.csv").tolist() == labels.tolist()
    (tmp_path / "bad.csv").write_text("step,label\n0,7\n")
    with pytest.raises(ValueError, match="label"):
        read_labels(tmp_path / "bad.csv")
    rttm = tmp_path / "x.rttm"
    rttm.write_text("SPEAKER f 1 1.00 2.00 <NA> <NA> alice <NA> <NA>\nSPEAKER f 1 4.00 1.00 <NA> <NA> alice <NA> <NA>\n"
                    "SPEAKER f 1 5.50 2.00 <NA> <NA> bob <NA> <NA>\nSPEAKER f 1 20.0 1.00 <NA> <NA> bob <NA> <NA>\n")
    assert sessions_from_rttm(rttm, 400, max_gap_s=3.0) == [Session(12, 62), Session(69, 94), Session(250, 262)]


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    from egomem_ros.memory.synth import make_streams

    root = tmp_path_factory.mktemp("streams")
    make_streams(root / "train", 2, seed=5, split="train", workers=2)
    make_streams(root / "test", 1, seed=6, split="test", workers=1)
    return root


def test_synthesised_stream_folder(streams):
    s = load_stream(streams / "train" / "stream_0000")
    meta = json.loads((streams / "train" / "stream_0000" / "meta.json").read_text())
    truth = sessions_from_labels(s.labels)
    assert len(truth) == len(meta["sessions"]) >= 2 and s.speak is not None and len(s.speak) == len(s.listen)
    test_meta = json.loads((streams / "test" / "stream_0000" / "meta.json").read_text())
    from egomem_ros.memory.synth import VOICES

    assert {x["voice"] for x in test_meta["sessions"]} <= set(VOICES["test"])
    assert not set(VOICES["test"]) & set(VOICES["train"])


def test_baseline_segmenter_finds_the_sessions(streams):
    from egomem_ros.memory.trigger import BaselineSegmenter

    s = load_stream(streams / "test" / "stream_0000")
    pred = BaselineSegmenter(voice_engine=None).label(s)
    assert jaccard(pred, s.labels) > 0.85
    m, _, n = span_match(sessions_from_labels(pred), sessions_from_labels(s.labels), 10)
    assert m >= 1 and n >= 2


def test_tagger_trains_saves_and_loads(streams, tmp_path):
    from egomem_ros.memory.tagger import TaggerConfig, TaggerSegmenter, TrainConfig, train_tagger

    ckpt = tmp_path / "tagger.pt"
    summary = train_tagger(sorted((streams / "train").iterdir()), ckpt, model_cfg=TaggerConfig(d_model=32, layers=1),
                           train_cfg=TrainConfig(steps=30, batch=2, crop_steps=256))
    assert ckpt.is_file() and summary["parameters"] > 1000
    log = [json.loads(x) for x in ckpt.with_suffix(".log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"]
    seg = TaggerSegmenter.load(ckpt)
    labels = seg.label(load_stream(streams / "test" / "stream_0000"))
    assert set(np.unique(labels)) <= {0, 1, 2, 3} and len(labels) == load_stream(streams / "test" / "stream_0000").n_steps


def test_eval_trigger_cli(streams):
    r = subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", "eval", "trigger", str(streams / "test"), "--json",
                        "--no-speaker-change"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert set(res) >= {"jaccard", "span_match@0", "span_match@5", "span_match@10", "seconds_per_8192_steps"}
    assert res["streams"] == 1 and 0.0 <= res["span_match@5"]["f1"] <= 1.0


def test_tagger_with_speaker_features(streams, tmp_path):
    from egomem_ros.memory.tagger import AUDIO_FEATURES, TaggerConfig, TaggerSegmenter, TrainConfig, train_tagger

    ckpt = tmp_path / "tagger_voice.pt"
    train_tagger(sorted((streams / "train").iterdir()), ckpt, model_cfg=TaggerConfig(d_model=32, layers=1, voice_features=True),
                 train_cfg=TrainConfig(steps=5, batch=2, crop_steps=256))
    seg = TaggerSegmenter.load(ckpt)
    assert seg.model.cfg.voice_features and seg.model.inp.in_features == AUDIO_FEATURES + 16
    assert len(seg.label(load_stream(streams / "test" / "stream_0000"))) > 0

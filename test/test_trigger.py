"""Episodic trigger: labels, metrics, stream format, synthesis, baseline and tagger."""
import json
import shutil
import subprocess
import sys
from dataclasses import replace

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
    from egomem_ros.tools.datagen.synth import make_streams

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
    from egomem_ros.tools.datagen.synth import VOICES

    assert {x["voice"] for x in test_meta["sessions"]} <= set(VOICES["test"])
    assert not set(VOICES["test"]) & set(VOICES["train"])


def test_baseline_segmenter_finds_the_sessions(streams):
    from egomem_ros.memory.trigger import BaselineSegmenter

    s = load_stream(streams / "test" / "stream_0000")
    pred = BaselineSegmenter(voice_engine=None).label(s)
    assert jaccard(pred, s.labels) > 0.85
    m, _, n = span_match(sessions_from_labels(pred), sessions_from_labels(s.labels), 10)
    assert m >= 1 and n >= 2


def test_tagger_trains_tunes_saves_and_loads(streams, tmp_path):
    import torch

    from egomem_ros.memory.tagger import TaggerConfig, TaggerSegmenter
    from egomem_ros.tools.datagen.tagger_train import TrainConfig, train_tagger

    ckpt = tmp_path / "tagger.pt"
    seen_mid_run = []

    def watch(steps):  # the loss history is on disk while training goes (a killed run keeps it)
        for step in steps:
            if step == 55:
                seen_mid_run.append(len(ckpt.with_suffix(".log.jsonl").read_text().splitlines()))
            yield step

    summary = train_tagger(sorted((streams / "train").iterdir()), ckpt, model_cfg=TaggerConfig(d_model=32, layers=1),
                           train_cfg=TrainConfig(steps=60, batch=2, crop_steps=256, val_fraction=0.5), progress=watch)
    assert seen_mid_run == [2]                                  # steps 0 and 50 logged before step 55
    assert ckpt.is_file() and summary["parameters"] > 1000
    assert summary["streams"] == 1 and summary["validation_streams"] == 1
    assert summary["validation_voice_split_cosine"] == -1.0 or 0.0 <= summary["validation_voice_split_cosine"] <= 0.95
    log = [json.loads(x) for x in ckpt.with_suffix(".log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"]
    seg = TaggerSegmenter.load(ckpt)
    assert seg.decode_cfg.voice_split_cosine == summary["validation_voice_split_cosine"]
    assert seg.decode_cfg.voice_split_contrast == summary["validation_voice_split_contrast"]
    stream = load_stream(streams / "test" / "stream_0000")
    labels = seg.label(stream)
    assert set(np.unique(labels)) <= {0, 1, 2, 3} and len(labels) == stream.n_steps
    from egomem_ros.memory.sessions import Stream

    assert len(seg.label(Stream(tmp_path, np.zeros(600, np.float32), None, None))) == 0      # under one step
    # after a decoder change: the same held-out voices tune the saved weights again, without training
    from egomem_ros.tools.datagen.tagger_train import retune_tagger

    saved = torch.load(ckpt, weights_only=False)
    saved["decode"]["voice_split_cosine"] = 0.123
    torch.save(saved, ckpt)
    again = retune_tagger(ckpt, sorted((streams / "train").iterdir()))
    assert again["validation_streams"] == 1 and not list(tmp_path.glob("*.partial"))
    assert again["validation_voice_split_cosine"] == summary["validation_voice_split_cosine"]
    assert TaggerSegmenter.load(ckpt).decode_cfg == seg.decode_cfg
    silent = seg.label(Stream(tmp_path, np.zeros(5 * 16000, np.float32), np.zeros(5 * 16000, np.float32), None))
    assert len(silent) == 62 and not silent.any()
    old = torch.load(ckpt, weights_only=False)
    del old["decode"]
    torch.save(old, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="older tagger"):
        TaggerSegmenter.load(tmp_path / "old.pt")
    with pytest.raises(FileNotFoundError):
        TaggerSegmenter.load(tmp_path / "missing.pt")


def test_validation_holds_out_whole_voices(tmp_path):
    import random

    from egomem_ros.tools.datagen.tagger_train import split_by_voice

    dirs = []
    for i in range(20):
        d = tmp_path / f"stream_{i:02d}"
        d.mkdir()
        voices = [f"en-us+v{(i + k) % 10}" for k in range(3)]
        (d / "meta.json").write_text(json.dumps({"sessions": [{"voice": v} for v in voices]}))
        dirs.append(d)
    train, val = split_by_voice(dirs, 0.3, random.Random(0))
    assert len(val) >= 6 and len(train) + len(val) == 20 and train

    def heard(ds):
        return {s["voice"].split("+")[1] for d in ds for s in json.loads((d / "meta.json").read_text())["sessions"]}

    assert heard(val) - heard(train)                  # some validation voices were never heard in training
    (dirs[0] / "meta.json").unlink()                   # a real recording: no voices known, a random split
    train, val = split_by_voice(dirs, 0.3, random.Random(0))
    assert len(val) == 6 and len(train) == 14


def test_packaged_tagger_finds_unseen_voices_sessions(streams):
    """The shipped checkpoint on a test-split stream (voices and noise it never heard)."""
    from egomem_ros.memory.tagger import PACKAGED_CHECKPOINT, TaggerSegmenter

    assert PACKAGED_CHECKPOINT.is_file()
    s = load_stream(streams / "test" / "stream_0000")
    pred = TaggerSegmenter.load().label(s)
    truth = sessions_from_labels(s.labels)
    matched, _, n = span_match(sessions_from_labels(pred), truth, 5)
    assert jaccard(pred, s.labels) > 0.9 and n >= 2 and matched >= n - 1


def test_eval_trigger_cli(streams):
    r = subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", "eval", "trigger", str(streams / "test"), "--json",
                        "--no-speaker-change"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert set(res) >= {"jaccard", "span_match@0", "span_match@5", "span_match@10", "seconds_per_8192_steps"}
    assert res["streams"] == 1 and 0.0 <= res["span_match@5"]["f1"] <= 1.0


def test_train_trigger_retune_cli_needs_a_checkpoint(streams, tmp_path):
    r = subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", "train", "trigger", str(streams / "train"),
                        "--out", str(tmp_path / "none.pt"), "--retune"], capture_output=True, text=True)
    assert r.returncode != 0 and "no checkpoint to retune" in " ".join(r.stderr.split())   # rich wraps lines
    assert not (tmp_path / "none.pt").exists()


def test_stream_features_are_relative_to_the_noise_floor():
    from egomem_ros.memory.step_features import (ENERGY, FEATURES, LISTEN_FEATURES, SPEAK_FLOOR, stream_features, user_turns,
                                                 user_voiced)

    rng = np.random.default_rng(0)
    n = 100
    t = np.arange(n * 1280) / 16000
    listen = 0.01 * rng.normal(size=n * 1280)
    buzz = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 21))                 # a voiced "turn"
    listen[40 * 1280:60 * 1280] += 0.2 * buzz[40 * 1280:60 * 1280]
    speak = np.zeros(n * 1280)
    speak[70 * 1280:80 * 1280] = 0.3 * np.sin(2 * np.pi * 150 * t[:10 * 1280])               # the robot talks
    f = stream_features(listen.astype(np.float32), speak.astype(np.float32), n)
    assert f.shape == (n, FEATURES) and np.isfinite(f).all()
    assert abs(np.percentile(f[:, ENERGY], 10)) < 0.5           # energy measured from the floor
    assert f[45:55, ENERGY].min() > 5 and f[:30, ENERGY].max() < 2
    voiced = user_voiced(f)
    assert voiced[42:58].all() and not voiced[:38].any() and not voiced[70:80].any()
    (turn,) = user_turns(voiced, 0, n - 1)                     # frames overlap the next step by half a frame
    assert abs(turn[0] - 40) <= 1 and abs(turn[1] - 59) <= 1
    assert user_turns(voiced, 0, n - 1, min_steps=30) == []
    louder = stream_features((listen * 10).astype(np.float32), None, n)   # gain does not change the features
    assert np.allclose(louder[:, :LISTEN_FEATURES], f[:, :LISTEN_FEATURES], atol=0.05)
    assert (louder[:, -1] == SPEAK_FLOOR).all()
    assert stream_features(listen[:100].astype(np.float32), None, 0).shape == (0, FEATURES)


def test_the_robots_echo_tail_is_not_the_user():
    """The speak channel ends with the robot's voice; its echo on the microphone rings on after it."""
    from egomem_ros.memory.step_features import ECHO_TAIL_STEPS, stream_features, user_voiced

    rng = np.random.default_rng(2)
    n, hop = 60, 1280
    t = np.arange(n * hop) / 16000
    buzz = sum(np.sin(2 * np.pi * 130 * k * t) / k for k in range(1, 21))
    listen, speak = 0.01 * rng.normal(size=n * hop), np.zeros(n * hop)
    speak[10 * hop:30 * hop] = 0.3 * buzz[:20 * hop]                       # the robot talks, steps 10-29
    listen[10 * hop:36 * hop] += 0.1 * buzz[:26 * hop]                     # its echo, 0.5 s late and to step 35
    listen[40 * hop:55 * hop] += 0.2 * buzz[:15 * hop]                     # then the user
    voiced = user_voiced(stream_features(listen.astype(np.float32), speak.astype(np.float32), n))
    assert voiced[41:54].all() and not voiced[:30 + ECHO_TAIL_STEPS + 1].any()
    assert user_voiced(stream_features(listen[:hop].astype(np.float32), speak[:hop].astype(np.float32), 1)).shape == (1,)


def test_step_pitch_follows_f0_and_stays_off_in_noise():
    from egomem_ros.memory.step_features import PITCH, VOICING, stream_features

    rng = np.random.default_rng(1)
    n = 30
    t = np.arange(n * 1280) / 16000
    for f0 in (85.0, 120.0, 210.0, 330.0):
        voiced = sum(np.sin(2 * np.pi * f0 * k * t + k) / k for k in range(1, 30) if f0 * k < 7000)
        f = stream_features((0.2 * voiced + 0.01 * rng.normal(size=len(t))).astype(np.float32), None, n)
        assert np.all(np.abs(np.exp(f[:, PITCH]) * 150 - f0) < 0.03 * f0), f0   # no octave errors
        assert f[:, VOICING].min() > 0.6                      # integer lags: a period between two samples scores lower
    f = stream_features((0.2 * rng.normal(size=len(t))).astype(np.float32), None, n)
    assert np.median(f[:, VOICING]) < 0.5 and np.mean(f[:, PITCH] == 0.0) > 0.5   # noise has no pitch


def test_supervised_contrastive_loss_prefers_grouped_voices():
    import torch

    from egomem_ros.tools.datagen.tagger_train import session_ids, supervised_contrastive

    ids = torch.tensor([0, 0, 0, 1, 1, 1])
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    grouped = torch.stack([a, a, a, b, b, b])
    mixed = torch.stack([a, b, a, b, a, b])
    assert supervised_contrastive(grouped, ids, 0.1) < supervised_contrastive(mixed, ids, 0.1) - 1.0
    assert supervised_contrastive(grouped, torch.arange(6), 0.1) == 0.0   # no positives: no loss
    assert session_ids(np.array([0, 1, 2, 3, 0, 1, 3, 0])).tolist() == [-1, 0, 0, 0, -1, 1, 1, -1]


def _silent_stream(n: int, dialog: tuple[int, int]):
    """`n` steps of silence, no robot, no voice; the tagger hears a dialog in [start, end).
    Returns (probs, voice, feats)."""
    from egomem_ros.memory.step_features import FEATURES, SPEAK_FLOOR

    probs = np.zeros((n, 4), np.float32)
    probs[:, 0] = 1.0
    probs[dialog[0]:dialog[1]] = [0.0, 0.05, 0.9, 0.05]
    feats = np.zeros((n, FEATURES), np.float32)
    feats[:, -1] = SPEAK_FLOOR
    return probs, np.zeros((n, 2), np.float32), feats


def _decode_fixture(change_at: int):
    """A 200-step region of four user turns (each followed by a robot reply); the voice changes at turn
    `change_at`. Returns (probs, voice, feats, turn onsets)."""
    from egomem_ros.memory.step_features import LISTEN_FEATURES

    probs, voice, feats = _silent_stream(260, (20, 220))
    onsets = [20, 70, 120, 170]
    for k, s in enumerate(onsets):
        feats[s:s + 20, :LISTEN_FEATURES] = 5.0             # user speaks for 20 steps
        feats[s + 24:s + 44, -1] = 0.0                      # the robot answers for 20 steps
        voice[s:s + 20] = [1.0, 0.0] if k < change_at else [0.0, 1.0]
    probs[onsets[change_at] - 1, 1] = 0.5                   # the tagger's most likely start and end
    probs[onsets[change_at - 1] + 43, 3] = 0.5
    return probs, voice, feats, onsets


def test_decode_cuts_a_region_where_the_voice_changes():
    from egomem_ros.memory.tagger import DecodeConfig, decode

    probs, voice, feats, onsets = _decode_fixture(change_at=2)
    cfg = DecodeConfig(voice_split_cosine=0.5)
    # sessions end with their last word (the robot's reply), not where the tagger's region fades out
    assert decode(probs, voice, feats, cfg) == [Session(20, onsets[1] + 43), Session(onsets[2] - 1, onsets[3] + 43)]
    assert decode(probs, voice, feats, DecodeConfig(voice_split_cosine=-1.0)) == [Session(20, onsets[3] + 43)]
    assert decode(probs, np.ones_like(voice), feats, cfg) == [Session(20, onsets[3] + 43)]  # one voice: one session
    same = np.ones_like(voice)
    early = probs.copy()
    early[10:20] = [0.0, 0.05, 0.9, 0.05]     # noise switches the region on early: it starts at the first word
    assert decode(early, same, feats, cfg)[0].start == 20
    early[10, 1] = 0.6                        # unless the tagger is sure of its start
    assert decode(early, same, feats, cfg)[0].start == 10
    late = probs.copy()
    late[20:27] = [1.0, 0.0, 0.0, 0.0]        # the tagger misses the first second of a voice: the turn counts
    assert decode(late, same, feats, cfg)[0].start == 20
    # an identity change between two turns cuts there even when the voices match
    cut = decode(probs, same, feats, cfg, extra_cuts=[onsets[3] - 2])
    assert [s.start for s in cut] == [20, onsets[3]]
    # one timbre, but the pitch drops by a third from the third turn on: a new user when the gate is on
    from egomem_ros.memory.step_features import PITCH
    lower = feats.copy()
    for s in onsets[2:]:
        lower[s:s + 20, PITCH] = 5.0 - 0.4
    assert [s.start for s in decode(probs, same, lower, replace(cfg, voice_split_pitch=0.2))] == [20, onsets[2] - 1]
    assert len(decode(probs, same, lower, cfg)) == 1            # the gate is off by default
    assert len(decode(probs, same, lower, replace(cfg, voice_split_pitch=0.5))) == 1


def test_a_cut_starts_at_a_first_word_too_short_to_be_a_turn():
    """Back-to-back users: the second one's first word ("Thanks," then a pause) is shorter than a turn,
    so the voice cut lies at the next turn; the session starts at the word when it is heard (a voiced
    step up to `lead_steps` before the turn, after the robot's last word) or the tagger is sure of it."""
    from egomem_ros.memory.step_features import LISTEN_FEATURES
    from egomem_ros.memory.tagger import DecodeConfig, decode

    probs, voice, feats = _silent_stream(200, (20, 180))
    for start, who in [(20, 0), (70, 0), (130, 1)]:          # user A twice, then user B
        feats[start:start + 20, :LISTEN_FEATURES] = 5.0
        feats[start + 24:start + 44, -1] = 0.0                # the robot answers each turn (A's last: to 113)
        voice[start:start + 20, who] = 1.0
    cfg = DecodeConfig(voice_split_cosine=0.5)
    assert decode(probs, voice, feats, cfg) == [Session(20, 113), Session(130, 173)]
    word = feats.copy()
    word[120:125, :LISTEN_FEATURES] = 5.0                     # B's first word: 5 steps, then a pause
    assert decode(probs, voice, word, cfg) == [Session(20, 113), Session(120, 173)]
    assert decode(probs, voice, word, replace(cfg, lead_steps=5)) == [Session(20, 113), Session(130, 173)]
    probs[120, 1] = 0.9                                       # too quiet to hear, but the tagger is sure
    assert decode(probs, voice, feats, cfg) == [Session(20, 113), Session(120, 173)]
    probs[120, 1] = cfg.sure_start - 0.01                     # not sure: the cut stays at the turn
    assert decode(probs, voice, feats, cfg) == [Session(20, 113), Session(130, 173)]


def test_decode_keeps_a_turn_whole_when_the_tagger_loses_the_voice_inside_it():
    """An unfamiliar voice can read as non-dialog sound to the tagger halfway through a turn. The gap
    that splits regions is measured from the turns, so one user's turn does not split the session;
    the same gap with nobody speaking in it still does."""
    from egomem_ros.memory.step_features import FEATURES, LISTEN_FEATURES, SPEAK_FLOOR
    from egomem_ros.memory.tagger import DecodeConfig, decode

    n = 220
    probs = np.zeros((n, 4), np.float32)
    probs[:, 0] = 1.0
    probs[20:194] = [0.0, 0.05, 0.9, 0.05]
    probs[85:116] = [1.0, 0.0, 0.0, 0.0]                     # lost for 31 steps (merge gap: 15)
    feats = np.zeros((n, FEATURES), np.float32)
    feats[:, -1] = SPEAK_FLOOR
    for start, steps in [(20, 20), (70, 50), (150, 20)]:    # three user turns, the second a long one
        feats[start:start + steps, :LISTEN_FEATURES] = 5.0
        feats[start + steps + 4:start + steps + 24, -1] = 0.0   # each followed by the robot's reply
    voice = np.ones((n, 2), np.float32)
    cfg = DecodeConfig(voice_split_cosine=0.5)
    assert decode(probs, voice, feats, cfg) == [Session(20, 193)]
    silent = feats.copy()
    silent[85:116, :LISTEN_FEATURES] = 0.0                  # the user pauses there instead: two dialogs
    assert len(decode(probs, voice, silent, cfg)) == 2
    # two dialogs 46 steps apart; a noise fills the gap and runs into the second user's first words, so
    # the energy detector hears one long "turn": it does not bridge the gap
    probs[:] = [1.0, 0.0, 0.0, 0.0]
    probs[20:64] = probs[110:154] = [0.0, 0.05, 0.9, 0.05]
    feats[:, :LISTEN_FEATURES] = 0.0
    feats[:, -1] = SPEAK_FLOOR
    feats[20:40, :LISTEN_FEATURES] = feats[70:130, :LISTEN_FEATURES] = 5.0
    feats[44:64, -1] = feats[134:154, -1] = 0.0
    assert [s.end for s in decode(probs, voice, feats, cfg)] == [63, 153]


def test_voice_cuts_compare_with_the_session_centroid():
    from egomem_ros.memory.tagger import voice_cuts

    voice = np.array([[1, 0], [1, 0], [0.9, 0.44], [0, 1], [0, 1]], np.float32)
    turns = [(i, i) for i in range(5)]
    assert voice_cuts(turns, voice, 0.5) == [3]
    assert voice_cuts(turns, voice, 0.95) == [2, 3]
    assert voice_cuts(turns, voice, -1.0) == []
    pitch = np.log([100, 104, 98, 150, 148])                # one timbre, a pitch jump at turn 3
    same = np.ones_like(voice)
    assert voice_cuts(turns, same, 0.5, pitch=pitch, pitch_jump=0.2) == [3]
    assert voice_cuts(turns, same, 0.5, pitch=pitch) == []   # no gate by default
    unvoiced = pitch.copy()
    unvoiced[3:] = np.nan                                   # no pitch heard: the gate does not fire
    assert voice_cuts(turns, same, 0.5, pitch=unvoiced, pitch_jump=0.2) == []


def _voices_at(cosines: list[float]) -> np.ndarray:
    """Unit 3-d voices, one per turn, at the given cosine to (1, 0, 0) and alternating sides of it."""
    angles = np.arccos(cosines) * np.where(np.arange(len(cosines)) % 2, -1.0, 1.0)
    return np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], 1).astype(np.float32)


def test_voice_contrast_splits_two_close_voices_that_each_stay_steady():
    """Two unfamiliar voices can sit close in the embedding (cosine 0.97 here, above any cosine cut
    that keeps one wandering voice whole); each turn still sounds more like its own voice."""
    from egomem_ros.memory.tagger import voice_cuts

    turns = [(i, i) for i in range(6)]
    two = np.array([[1, 0, 0]] * 3 + [[0.97, np.sqrt(1 - 0.97 ** 2), 0]] * 3, np.float32)
    assert voice_cuts(turns, two, 0.85, lookahead=3) == []
    assert voice_cuts(turns, two, 0.85, lookahead=3, contrast=0.02) == [3]
    assert voice_cuts(turns, two, 0.85, lookahead=3, contrast=0.05) == []     # 0.03 apart: under this cut
    one = _voices_at([0.95] * 6)     # one voice wandering (turns 0.81 or 1 apart): whole under both cuts
    assert voice_cuts(turns, one, 0.8, lookahead=3) == []
    assert voice_cuts(turns, one, -1.0, lookahead=3, contrast=0.02) == []
    assert voice_cuts([], np.zeros((0, 3), np.float32), 0.5, contrast=0.02) == []


def test_binary_segmentation_finds_each_user_of_a_region():
    """Three users in a row, each voice wobbling turn to turn, then one voice alone: the best split is
    cut, each side searched again, and a side needs `min_side` turns."""
    from egomem_ros.memory.tagger import DecodeConfig, binary_voice_cuts

    rng = np.random.default_rng(0)
    centres = np.eye(8)[:3] * 0.5 + np.ones(8) / np.sqrt(8)
    voice = np.stack([centres[k // 4] + rng.normal(0, 0.07, 8) for k in range(12)]).astype(np.float32)
    turns = [(i, i) for i in range(12)]
    assert binary_voice_cuts(turns, voice, 0.06) == [4, 8]
    one = np.stack([centres[0] + rng.normal(0, 0.07, 8) for _ in range(12)]).astype(np.float32)
    assert binary_voice_cuts(turns, one, 0.06) == []                     # one wobbling voice stays whole
    assert binary_voice_cuts(turns[:3], voice[[0, 1, 4]], 0.06) == []    # a side needs 2 turns by default
    assert binary_voice_cuts(turns[:3], voice[[0, 1, 4]], 0.06, min_side=1) == [2]
    assert binary_voice_cuts([], voice, 0.06) == [] and binary_voice_cuts(turns[:1], voice, 0.06) == []
    with pytest.raises(ValueError, match="sequential or binary"):
        DecodeConfig(voice_split_search="bianry")


def test_pair_sums_match_the_direct_mean_cosines():
    from egomem_ros.memory.tagger import _PairSums, _unit

    unit = np.array([_unit(x) for x in np.random.default_rng(0).normal(size=(7, 5))])
    pairs = _PairSums(unit)
    for first, k, end in [(0, 3, 6), (1, 2, 5), (2, 5, 6), (0, 1, 2)]:
        before, after = unit[first:k], unit[k:end]
        within = [(g.sum() - np.trace(g)) / (len(g) ** 2 - len(g)) for g in (x @ x.T for x in (before, after))
                  if len(g) > 1]
        direct = (np.mean(within) if within else 0.9) - (before @ after.T).mean()
        assert abs(pairs.contrast(first, k, end, 0.9) - direct) < 1e-9


def test_tune_decode_picks_the_contrast_cut_when_no_cosine_cut_fits():
    from egomem_ros.memory.tagger import DecodeConfig
    from egomem_ros.tools.datagen.tagger_train import tune_decode

    close = np.array([[1, 0, 0]] * 2 + [[0.97, np.sqrt(1 - 0.97 ** 2), 0]] * 2, np.float32)   # two steady voices
    streams = []
    for voices, two_users in [(close, True), (_voices_at([0.95] * 4), False)]:                 # one wandering voice
        probs, _, feats, onsets = _decode_fixture(change_at=2)
        voice = np.zeros((len(probs), 3), np.float32)
        for s, v in zip(onsets, voices):
            voice[s:s + 20] = v
        truth = ([Session(20, onsets[1] + 43), Session(onsets[2] - 1, onsets[3] + 43)] if two_users
                 else [Session(20, onsets[3] + 43)])
        streams.append((feats, labels_from_sessions(truth, len(probs)), probs, voice))

    class Inferred:     # the tagger's outputs for each stream's features, as `TaggerSegmenter.infer` gives them
        decode_cfg = DecodeConfig()

        def infer(self, feats):
            return next((p, v) for f, _, p, v in streams if f is feats)

    cfg, info = tune_decode(Inferred(), [(f, y) for f, y, _, _ in streams])
    assert info["f1@5"] == 1.0 and cfg.voice_split_cosine == -1.0 and 0.0 < cfg.voice_split_contrast < 0.03
    assert info["voice_split_contrast"] == cfg.voice_split_contrast


@needs_espeak
def test_noise_kinds_are_unit_scale_and_splits_disjoint():
    from egomem_ros.tools.datagen.synth import NOISES, noise

    rng = np.random.default_rng(0)
    for kind in NOISES["train"] + NOISES["test"]:
        x = noise(kind, 16000, rng)
        assert x.dtype == np.float32 and np.isfinite(x).all() and 0.8 < x.std() < 1.2, kind
    assert not set(NOISES["train"]) & set(NOISES["test"])


@needs_espeak
def test_voice_warp_scales_the_voice_and_is_off_by_default(tmp_path):
    import random

    import torch

    from egomem_ros.memory.step_features import VOICED_STRENGTH, frame_pitch
    from egomem_ros.tools.datagen.synth import StreamSpec, Voice, make_stream, tts

    def median_f0(pcm):
        frames = torch.from_numpy(pcm[:len(pcm) // 512 * 512].reshape(-1, 512) * np.hanning(512).astype(np.float32))
        f0, strength = frame_pitch(torch.fft.rfft(frames).abs() ** 2)
        return float(f0[strength >= VOICED_STRENGTH].median())

    text = "My name is Anna and I love cooking."
    plain = tts(text, Voice("en-us+m1"), random.Random(0), tmp_path)
    high = tts(text, Voice("en-us+m1", warp=1.15), random.Random(0), tmp_path)
    assert len(high) / len(plain) == pytest.approx(1 / 1.15, rel=0.02)      # faster
    assert median_f0(high) / median_f0(plain) == pytest.approx(1.15, rel=0.06)  # and higher
    *_, meta = make_stream(StreamSpec(sessions=2, seed=3), tmp_path)
    assert [m["warp"] for m in meta] == [1.0, 1.0]
    *_, meta = make_stream(StreamSpec(sessions=2, seed=3, voice_warp=0.1), tmp_path)
    assert all(1 / 1.1 <= m["warp"] <= 1.1 for m in meta) and meta[0]["warp"] != meta[1]["warp"]


@needs_espeak
def test_random_voices_are_new_espeak_variants_for_training_only(tmp_path):
    import random

    from egomem_ros.tools.datagen.espeak_variants import data_path_with, is_synthetic, random_variant
    from egomem_ros.tools.datagen.synth import StreamSpec, Voice, make_stream, make_streams, tts

    texts = [random_variant(f"rv{i}", random.Random(i)) for i in range(2)]
    assert texts[0] == random_variant("rv0", random.Random(0)) and texts[0] != texts[1]
    assert "klatt" not in "".join(texts) and texts[0].startswith("language variant\nname rv0\n")
    root = data_path_with(dict(zip(["rv0", "rv1"], texts)), tmp_path / "espeak")
    text = "My name is Anna and I love cooking."
    pcm = [tts(text, Voice(f"en-us+rv{i}", data_path=str(root)), random.Random(0), tmp_path) for i in range(2)]
    plain = tts(text, Voice("en-us"), random.Random(0), tmp_path)
    spectra = [np.log(np.abs(np.fft.rfft(x[:16000])) + 1e-6) for x in (*pcm, plain)]
    assert min(np.abs(spectra[i] - spectra[j]).mean() for i, j in [(0, 1), (0, 2), (1, 2)]) > 0.1  # three voices

    *_, meta = make_stream(StreamSpec(sessions=2, seed=3, random_voices=1.0), tmp_path)
    assert all(is_synthetic(m["voice"]) and m["variant"].startswith("language variant") for m in meta)
    *_, meta = make_stream(StreamSpec(sessions=2, seed=3), tmp_path)      # off by default
    assert not any(is_synthetic(m["voice"]) or "variant" in m for m in meta)
    with pytest.raises(ValueError, match="training streams only"):
        make_streams(tmp_path / "x", 1, split="test", random_voices=0.5)


@needs_espeak
def test_klatt_voices_use_only_the_training_sources(tmp_path):
    """`klatt_voices` puts some generated variants on espeak-ng's Klatt synthesizer, with the voicing
    sources kept for training only (the test voice `klatt` is source 1, validation voices are 5-6); a
    variant drawn without it is unchanged, and the option is refused without generated voices."""
    import random
    import re

    from egomem_ros.tools.datagen.espeak_variants import KLATT_TRAIN_SOURCES, random_variant
    from egomem_ros.tools.datagen.synth import StreamSpec, make_stream, make_streams

    assert not {1, 5, 6} & set(KLATT_TRAIN_SOURCES)
    plain, klatt = random_variant("rv0", random.Random(4)), random_variant("rv0", random.Random(4), klatt=True)
    assert klatt.startswith(plain) and re.fullmatch(r"klatt (\d)\n", klatt[len(plain):])
    *_, meta = make_stream(StreamSpec(sessions=4, seed=3, random_voices=1.0, klatt_voices=1.0), tmp_path)
    sources = [re.search(r"^klatt (\d)$", m["variant"], re.M) for m in meta]
    assert all(s and int(s.group(1)) in KLATT_TRAIN_SOURCES for s in sources)
    *_, meta = make_stream(StreamSpec(sessions=4, seed=3, random_voices=1.0), tmp_path)
    assert not any("klatt" in m["variant"] for m in meta)
    with pytest.raises(ValueError, match="needs random_voices"):
        make_streams(tmp_path / "x", 1, klatt_voices=0.5)
    with pytest.raises(ValueError, match="klatt_voices must be in"):
        make_streams(tmp_path / "x", 1, random_voices=1.0, klatt_voices=1.5)


def test_streams_can_be_made_of_chosen_voices(tmp_path):
    """A validation set of voices neither training nor the test split uses: the users come from the
    list; a variant espeak-ng does not have (it would silently speak the base voice) is refused."""
    from egomem_ros.tools.datagen.synth import VOICES, StreamSpec, make_stream, make_streams

    chosen = ("en-us+m7", "en+adam")
    assert not set(chosen) & set(VOICES["train"] + VOICES["test"])
    *_, meta = make_stream(StreamSpec(sessions=3, seed=5, voices=chosen), tmp_path)
    assert {m["voice"] for m in meta} <= set(chosen) and len(meta) == 3
    for bad in ("en-us+nosuchvariant", "xx-nosuchlang"):
        with pytest.raises(ValueError, match="no voice"):
            make_streams(tmp_path / "x", 1, voices=["en-us+m7", bad])


@needs_espeak
def test_every_voice_we_synthesize_is_spoken_as_named():
    """espeak-ng ignores a variant silently on some bases: 1.51 speaks `en-gb+f5` exactly as plain `en-gb`,
    which made every `en-gb+...` user of the streams one voice, and a training voice a test voice. The
    check compares the speech with and without the variant, and no voice of ours may fail it."""
    import subprocess

    from egomem_ros.demo import VOICES as DEMO_VOICES
    from egomem_ros.tools.datagen.espeak_variants import unknown_voices
    from egomem_ros.tools.datagen.synth import FINETUNE_VOICES, ROBOT_VOICE, VOICES

    def speech(voice: str) -> bytes:
        return subprocess.run(["espeak-ng", "-v", voice, "--stdout", "one two"], capture_output=True).stdout

    ignored = speech("en-gb+f5") == speech("en-gb")
    assert unknown_voices(["en-gb+f5", "en+f5"]) == (["en-gb+f5"] if ignored else [])
    ours = [*VOICES["train"], *VOICES["test"], *FINETUNE_VOICES["train"], ROBOT_VOICE, *DEMO_VOICES.values()]
    assert unknown_voices(ours) == []


def test_validation_never_holds_out_generated_voices(tmp_path):
    import random

    from egomem_ros.tools.datagen.tagger_train import split_by_voice

    def stream(name: str, voices: list[str]):
        d = tmp_path / name
        d.mkdir()
        (d / "meta.json").write_text(json.dumps({"sessions": [{"voice": v} for v in voices]}))
        return d

    pooled = [stream(f"a{i:02d}", [f"en-us+v{i % 5}", f"en-us+v{(i + 1) % 5}"]) for i in range(10)]
    generated = [stream(f"b{i:02d}", [f"en-us+rv{i}_0", f"en-gb+rv{i}_1"]) for i in range(10)]
    alone = split_by_voice(pooled, 0.3, random.Random(0))
    train, val = split_by_voice(pooled + generated, 0.3, random.Random(0))
    assert (train, val) == (alone[0] + generated, alone[1])   # the same held-out voices, with or without
    assert len(val) >= 3                                        # 0.3 of the 10 pooled streams, not of all 20
    train, val = split_by_voice(generated, 0.3, random.Random(0))  # no pooled voices at all: a random split
    assert len(val) == 3 and len(train) == 7

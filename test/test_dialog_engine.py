"""DialogEngine and its runner thread on a tiny random moshi checkpoint (CPU)."""
from __future__ import annotations

import logging
import time

import numpy as np
import pytest


from egomem_ros.dialog import moshi_checkpoint as mc  # noqa: E402
from egomem_ros.dialog.engine import FRAME_SAMPLES, DialogEngine  # noqa: E402
from egomem_ros.dialog.engine_runner import EngineRunner  # noqa: E402
from egomem_ros.dialog.pinned_memory import RegionLayout  # noqa: E402
from egomem_ros.retrieval.retr_protocol import RetrQuery  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return mc.write_tiny_checkpoint(tmp_path_factory.mktemp("moshi_tiny"))


@pytest.fixture
def engine(checkpoint):
    return DialogEngine(mc.load_models(checkpoint), RegionLayout(64, 32), use_sampling=False)


def _noise(n: int = FRAME_SAMPLES, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def test_steps_return_robot_audio_after_the_delay(engine):
    outs = [engine.step(_noise(seed=i)) for i in range(6)]
    assert outs[0].pcm is None  # moshi's acoustic delay: the first step has no output yet
    produced = [o.pcm for o in outs if o.pcm is not None]
    assert produced and all(p.shape == (FRAME_SAMPLES,) and p.dtype == np.float32 for p in produced)


def test_bad_frames_are_refused_clearly(engine):
    with pytest.raises(ValueError, match="1920 mono samples"):
        engine.step(np.zeros(1600, dtype=np.float32))
    with pytest.raises(ValueError, match="must be float"):
        engine.step(np.zeros(FRAME_SAMPLES, dtype=np.int16))


def test_chunk_longer_than_region_loses_whole_lines_and_says_so(engine, caplog):
    lines = ["User: Alice Smith (id u1)"] + [f"- Alice likes green tea number {i}" for i in range(40)]
    with caplog.at_level(logging.WARNING):
        update = engine.set_memchunk(1, "\n".join(lines))
    assert update.dropped_lines > 0 and update.token_count <= 64
    assert update.text.split("\n") == lines[:len(update.text.split("\n"))]  # a prefix of whole lines
    assert "exceeds its 64-step region" in caplog.text
    engine.step(_noise())
    assert engine.bank.active[1] and engine.last_update[1].seconds > 0


def test_non_utf8_chunk_text_is_repaired(engine, caplog):
    with caplog.at_level(logging.WARNING):
        update = engine.set_memchunk(2, b"Carol likes swimming \xff\xfe")
        surrogate = engine.set_memchunk(2, "Carol \udcff")
    assert "\ufffd" in update.text and "\ufffd" in surrogate.text
    assert "not valid UTF-8" in caplog.text and "surrogates" in caplog.text
    engine.step(_noise())
    assert engine.bank.active[2]


def test_empty_chunk_fills_the_region_with_pads(engine):
    engine.set_memchunk(1, "")
    engine.apply_pending_chunks()
    assert engine.bank.active[1] and engine.last_update[1].token_count == 0


def _scripted_text(engine, pieces):
    it = iter(pieces)
    engine.text_piece = lambda token: next(it, " ok")


def test_retr_query_is_answered_into_level2_without_blocking(engine):
    asked = []

    def retrieve(query: RetrQuery) -> str:
        asked.append(query)
        return "Carol likes swimming every morning"

    _scripted_text(engine, [" hello", "<retr>", "\nmother", "\nexercise", "<answer>", " yes"])
    runner = EngineRunner(engine, lambda out: None, retrieve=retrieve, retrieve_timeout_s=5.0)
    for i in range(8):
        runner.step_once(_noise(seed=i))
    deadline = time.monotonic() + 5
    while runner.stats.retrievals < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    runner.step_once(_noise())
    assert asked == [RetrQuery(("mother",), ("exercise",))]
    assert engine.bank.active[2] and "swimming" in engine.last_update[2].text
    runner.stop()


def test_slow_retrieval_is_discarded_and_the_dialog_goes_on(engine, caplog):
    import threading

    release = threading.Event()

    def slow(query: RetrQuery) -> str:
        release.wait(10)  # held until the dialog has stepped on
        return "too late"

    _scripted_text(engine, ["<retr>\nmother\nexercise<answer>"])
    runner = EngineRunner(engine, lambda out: None, retrieve=slow, retrieve_timeout_s=0.05)
    with caplog.at_level(logging.WARNING):
        for i in range(4):
            runner.step_once(_noise(seed=i))
        assert runner.stats.frames_stepped == 4 and runner.stats.retrievals == 0  # stepped while it was pending
        time.sleep(0.1)
        release.set()
        deadline = time.monotonic() + 5
        while runner.stats.retrievals < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    runner.step_once(_noise())
    assert runner.stats.retrieval_timeouts == 1 and engine.last_update[2].text == ""  # never "too late"
    assert "answer discarded" in caplog.text
    runner.stop()


def test_runner_reframes_resamples_and_drops_oldest_when_full(engine):
    seen = []
    runner = EngineRunner(engine, seen.append, queue_frames=4)
    audio16k = (0.1 * np.random.default_rng(0).standard_normal(16_000)).astype(np.float32)  # 1 s at 16 kHz
    frames = sum(runner.push_audio(audio16k[i:i + 700], 16_000) for i in range(0, 16_000, 700))
    assert frames == 24_000 // FRAME_SAMPLES  # 12 whole frames, the remainder is carried over
    assert runner.stats.frames_in == 12 and runner.stats.dropped == 8  # nothing consumed yet: 4 kept
    runner.start()
    runner.drain(timeout=30)
    runner.stop()
    assert runner.stats.frames_stepped == 4 and len(seen) == 4
    with pytest.raises(Exception, match="NaN"):
        runner.push_audio(np.full(100, np.nan, dtype=np.float32), 24_000)


def test_runner_counts_late_steps(engine):
    runner = EngineRunner(engine, lambda out: None, step_budget_s=1e-6)
    runner.step_once(_noise())
    assert runner.stats.late == 1 and runner.stats.mean_step_ms > 0


def test_cli_dialog_run_on_a_random_checkpoint(tmp_path):
    import subprocess
    import sys

    import soundfile as sf

    def egomem(*args):
        return subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", *map(str, args)], capture_output=True,
                              text=True)

    ckpt = tmp_path / "ckpt"
    made = egomem("dialog", "make-random-checkpoint", ckpt)
    assert made.returncode == 0, made.stderr
    assert "not a trained model" in made.stdout
    sf.write(tmp_path / "user.wav", _noise(16_000, seed=2), 16_000)  # 1 s at 16 kHz
    r = egomem("dialog", "run", tmp_path / "user.wav", "--out", tmp_path / "robot.wav", "--checkpoint", ckpt,
               "--profile", "User: Alice\nFacts:\n- Alice is a nurse")
    assert r.returncode == 0, r.stderr
    robot, rate = sf.read(tmp_path / "robot.wav")
    assert rate == 24_000 and len(robot) == 12 * FRAME_SAMPLES and "12 steps" in r.stdout
    missing = egomem("dialog", "run", tmp_path / "user.wav", "--out", tmp_path / "x.wav", "--checkpoint",
                     tmp_path / "nope")
    assert missing.returncode == 2 and "cannot load moshi checkpoint" in missing.stderr


def test_runner_resamples_across_message_boundaries_without_clicks(engine):
    """A 440 Hz tone at 16 kHz in 20 ms messages must come out as a smooth tone at 24 kHz."""
    frames = []
    runner = EngineRunner(engine, lambda out: None, queue_frames=64)
    runner._put = frames.append  # look at the frames themselves
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(32_000) / 16_000)).astype(np.float32)
    for i in range(0, len(tone), 320):
        runner.push_audio(tone[i:i + 320], 16_000)
    out = np.concatenate(frames)[2000:]  # past the filter's start-up
    ideal_step = 0.5 * 2 * np.pi * 440 / 24_000  # the largest sample-to-sample change of the ideal tone
    assert np.max(np.abs(np.diff(out))) < 1.1 * ideal_step
    assert 0.45 < np.max(np.abs(out)) < 0.55

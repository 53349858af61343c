"""The memory process end to end without ROS: buffered stream -> sessions -> profiles."""
import logging
import re
import shutil

import numpy as np
import pytest

from egomem_ros.memory.buffer import IdentityObservation, StreamBuffer, TranscriptSegment
from egomem_ros.memory.consolidate import Consolidator
from egomem_ros.memory.spool import SessionSpool
from egomem_ros.memory.extraction import RuleExtractor
from egomem_ros.memory.attribution import SessionOwner
from egomem_ros.memory.manager import MemoryManager
from egomem_ros.memory.update_agent import RuleUpdateAgent


def test_buffer_is_bounded_and_aligned():
    buf = StreamBuffer(capacity_s=20)
    tone = (0.1 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    for i in range(100):  # 50 s of 0.5-s chunks into a 20-s buffer
        buf.add_listen(i * 0.5, tone, 16000)
    assert buf.start >= 29.5 and buf.memory_bytes() <= 20 * 16000 * 2 + 16000
    stream, _, _ = buf.window(40.0, 42.0)
    assert len(stream.listen) == 32000 and abs(stream.listen[:100] - tone[:100]).max() < 1e-3
    buf.add_transcript(TranscriptSegment(40.0, 41.0, "hello"))
    buf.add_transcript(TranscriptSegment(40.0, 41.0, "   "))
    buf.add_identity(IdentityObservation(40.5, "abcde"))
    _, segs, obs = buf.window(39.0, 42.0)
    assert [s.text for s in segs] == ["hello"] and obs[0].user_id == "abcde"
    buf.drop_before(45.0)
    assert buf.start >= 44.5 and buf.window(39.0, 42.0)[1] == []


def test_stream_shorter_than_a_step_and_silence(store, tmp_path):
    from egomem_ros.memory.trigger import BaselineSegmenter

    buf = StreamBuffer(60)
    mgr = MemoryManager(store, buf, BaselineSegmenter(), Consolidator(store, RuleExtractor(), RuleUpdateAgent(),
                                                                       lambda s: None), SessionSpool(tmp_path / "sp"))
    assert mgr.consolidate(0.0).outcomes == []
    buf.add_listen(0.0, np.full(160000, 1e-4, np.float32), 16000)   # 10 s of near-silence
    report = mgr.consolidate(10.0)
    # 10 s - max gap - ASR latency
    assert report.sessions_found == 0 and report.outcomes == [] and mgr.processed_until == pytest.approx(5.0)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_manager_turns_a_stream_into_profiles(store, tmp_path):
    from egomem_ros.tools.datagen.synth import StreamSpec, make_stream
    from egomem_ros.memory.trigger import BaselineSegmenter

    listen, speak, truth, meta = make_stream(StreamSpec(sessions=3, seed=11, split="test", p_back_to_back=0.0), tmp_path)
    buf = StreamBuffer(600)
    t0 = 1000.0
    for i in range(0, len(listen), 8000):  # what the ROS node does: 0.5-s audio messages
        buf.add_listen(t0 + i / 16000, listen[i:i + 8000], 16000)
        if np.any(speak[i:i + 8000]):
            buf.add_speak(t0 + i / 16000, speak[i:i + 8000], 16000)
    for k, m in enumerate(meta):  # an external ASR node's transcripts, one per user turn
        users = [t["text"] for t in m["turns"] if t["speaker"] == "user"]
        name = ['Alice', 'Bruno', 'Chen'][k]   # one name per session: two names are two people
        users = [re.sub(r"(my name is|I am|I'm) [A-Z]\w+", rf"\1 {name}", text) for text in users]
        users[0] = f"Hello, my name is {name}. " + users[0]
        span = (m["end_s"] - m["start_s"]) / len(users)
        for j, text in enumerate(users):
            buf.add_transcript(TranscriptSegment(t0 + m["start_s"] + j * span, t0 + m["start_s"] + (j + 0.5) * span, text))
    cons = Consolidator(store, RuleExtractor(), RuleUpdateAgent(), SessionOwner(None))
    mgr = MemoryManager(store, buf, BaselineSegmenter(), cons, SessionSpool(tmp_path / "spool"))
    report = mgr.consolidate(t0 + len(listen) / 16000 + 5.0)
    written = [o for o in report.outcomes if o.status == "written"]
    assert report.sessions_found == len(truth) == 3 and len(written) == 3
    names = sorted(u.name for u in store.list_users(include_placeholders=False))
    assert names == ["Alice", "Bruno", "Chen"]
    assert all(store.episodes(u.id) for u in store.list_users(include_placeholders=False))
    assert list((tmp_path / "spool").glob("*.json")) == []
    assert mgr.consolidate(t0 + len(listen) / 16000 + 6.0).outcomes == []  # nothing processed twice


class _RecordingASR:
    """An ASR that writes down the clips it is given (the recogniser itself is tested elsewhere)."""

    name = "recording"

    def __init__(self):
        self.clips: list[int] = []

    def transcribe(self, pcm16k):
        self.clips.append(len(pcm16k))
        return f"part{len(self.clips)}"


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_pocketsphinx_transcribes_speech(tmp_path):
    """The embedded ASR on a clean espeak-ng sentence: weak, but it hears some of the words."""
    import random

    from egomem_ros.memory.asr import PocketSphinxASR
    from egomem_ros.tools.datagen.synth import Voice, tts

    pcm = tts("Hello robot, my name is Emily. I really like tennis.", Voice("en-us"), random.Random(0), tmp_path)
    asr = PocketSphinxASR()
    assert {"robot", "really"} <= set(asr.transcribe(pcm).split())


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_pocketsphinx_in_worker_processes_matches_one_process(store, tmp_path, caplog):
    """A session's turns spread over worker processes give the same words (not always all of them: a
    decoder's noise normalisation carries over from the clips it heard before); workers that die fall
    back to this process, with a log line, and the turns are still transcribed."""
    import random

    from egomem_ros.memory.asr import PocketSphinxASR, ProcessPoolASR, make_asr
    from egomem_ros.tools.datagen.synth import Voice, tts

    rng = random.Random(0)
    clips = [tts(text, Voice("en-us"), rng, tmp_path) for text in
             ["Hello robot, my name is Emily.", "I really like tennis.", "I work as a nurse."]]
    one = [PocketSphinxASR().transcribe(c) for c in clips]
    pool = make_asr("pocketsphinx", workers=2)
    assert isinstance(pool, ProcessPoolASR) and isinstance(make_asr("pocketsphinx"), PocketSphinxASR)
    def alike(texts: list[str]) -> bool:
        return len(texts) == 3 and "robot" in texts[0] and all(set(a.split()) & set(b.split())
                                                                for a, b in zip(texts, one))
    try:
        assert alike(one) and alike(pool.transcribe_many(clips))
        for process in list(pool._pool._processes.values()):    # the workers die (out of memory, killed)
            process.kill()
            process.join()
        assert alike(pool.transcribe_many(clips))
        assert "transcribing in this process" in caplog.text
        pool.transcribe_many(clips)
        assert pool._pool is not None                            # new workers after the fallback
    finally:
        from egomem_ros.memory.trigger import BaselineSegmenter

        MemoryManager(store, StreamBuffer(60), BaselineSegmenter(), Consolidator(store, RuleExtractor(),
                      RuleUpdateAgent(), lambda s: None), SessionSpool(tmp_path / "sp"), pool).close()
        assert pool._pool is None                                # the manager stops its ASR's workers


def test_asr_reads_the_user_turns_only():
    from egomem_ros.memory.asr import transcribe_user_turns

    sr, rng = 16000, np.random.default_rng(0)
    t = np.arange(12 * sr) / sr
    buzz = 0.2 * sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 21))
    listen = 0.003 * rng.normal(size=len(t))
    speak = np.zeros_like(listen)
    listen[1 * sr:3 * sr] += buzz[1 * sr:3 * sr]          # the user, 2 s
    speak[4 * sr:7 * sr] = buzz[4 * sr:7 * sr]            # the robot answers, 3 s (its echo is in listen)
    listen[4 * sr:7 * sr] += 0.1 * buzz[4 * sr:7 * sr]
    listen[8 * sr:9 * sr] += buzz[8 * sr:9 * sr]          # the user again, 1 s
    asr = _RecordingASR()
    heard = transcribe_user_turns(asr, listen.astype(np.float32), speak.astype(np.float32))
    assert [text for _, _, text in heard] == ["part1", "part2"]
    # each turn (to the 80 ms step) plus 0.15 s either side; the robot's turn and its echo are skipped
    assert len(asr.clips) == 2 and abs(asr.clips[0] / sr - 2.3) < 0.2 and abs(asr.clips[1] / sr - 1.3) < 0.2
    assert abs(heard[0][0] - 0.85) < 0.2 and abs(heard[1][0] - 7.85) < 0.2
    quiet = _RecordingASR()                                            # no turn found: the whole clip
    assert transcribe_user_turns(quiet, np.zeros(3 * sr, np.float32), None) == [(0.0, 3.0, "part1")]
    assert quiet.clips == [3 * sr]
    assert transcribe_user_turns(_RecordingASR(), np.zeros(100, np.float32), None) == []

    class WordASR:  # one pass over the session; words timed in the clip it is given, as a recogniser does
        name = "words"

        def __init__(self):
            self.calls = 0

        def transcribe_words(self, pcm):
            from egomem_ros.memory.asr import Word

            self.calls += 1
            at = (np.flatnonzero(np.abs(pcm) > 0.1)[0] / sr) - 1.0   # where the session's 0 s is in this clip
            return [Word(at + 1.5, at + 1.9, "hello"), Word(at + 4.6, at + 5.0, "echo"), Word(at + 8.2, at + 8.5, "again")]

    words = WordASR()
    heard = transcribe_user_turns(words, listen.astype(np.float32), speak.astype(np.float32))
    assert words.calls == 1 and [text for _, _, text in heard] == ["hello", "again"]  # the robot's echo is dropped


def test_tagger_without_a_speak_channel_falls_back_and_says_so_once(caplog):
    """The tagger needs the robot's voice: a stream without it goes to the configured fallback, with one
    warning saying why and what to do (it used to find 0 sessions without a word)."""
    from egomem_ros.memory.sessions import Stream
    from egomem_ros.memory.trigger import FallbackSegmenter

    class Recording:
        def __init__(self, name):
            self.name, self.calls = name, 0

        def label(self, stream, identities=()):
            self.calls += 1
            return np.ones(stream.n_steps, np.int8)

    tagger, baseline = Recording("tagger"), Recording("baseline")
    seg = FallbackSegmenter(tagger, baseline)
    quiet_robot = Stream(None, np.ones(16000, np.float32) * 0.1, None, None)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert seg.label(quiet_robot).sum() == quiet_robot.n_steps
    assert (tagger.calls, baseline.calls) == (0, 3)
    assert caplog.text.count("needs the robot's voice on the speak channel") == 1
    assert "memory.segmenter_fallback" in caplog.text
    talking_robot = Stream(None, np.ones(16000, np.float32) * 0.1, np.ones(16000, np.float32) * 0.1, None)
    seg.label(talking_robot)
    assert tagger.calls == 1
    none = FallbackSegmenter(Recording("tagger"), None)
    assert none.label(quiet_robot).sum() == 0

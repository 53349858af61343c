"""Two people talking together in one session: where it is cut, and whose each part is."""
from pathlib import Path

import numpy as np
import pytest

from egomem_ros.memory.attribution import SessionOwner
from egomem_ros.memory.buffer import StreamBuffer, TranscriptSegment
from egomem_ros.memory.consolidate import Consolidator, SessionInput
from egomem_ros.memory.spool import SessionSpool
from egomem_ros.memory.extraction import RuleExtractor, Turn
from egomem_ros.memory.manager import MemoryManager
from egomem_ros.memory.sessions import labels_from_sessions
from egomem_ros.memory.speaker_change import TimedTurn, introductions, split_by_voice
from egomem_ros.memory.update_agent import RuleUpdateAgent
from egomem_ros.retrieval.face import FaceBox, FaceObservation
from egomem_ros.retrieval.poller import face_alone

A, B = np.array([1.0, 0.1, 0.0]), np.array([0.1, 1.0, 0.0])


def turns(*spec: tuple[str, str]) -> list[TimedTurn]:
    return [TimedTurn(2.0 * i, 2.0 * i + 2.0, Turn(speaker=who, text=text)) for i, (who, text) in enumerate(spec)]


def test_a_second_introduction_begins_another_persons_part():
    ts = turns(("user", "Hi robot, my name is Wendy."), ("user", "I run a bakery."),
               ("user", "Hi robot, my name is Jamal."), ("user", "I test banking apps."))
    assert introductions(ts) == [2]
    parts = split_by_voice(ts, lambda a, b: None, 0.0)
    assert [[t.turn.text for t in p] for p in parts] == [[t.turn.text for t in ts[:2]], [t.turn.text for t in ts[2:]]]
    # the same name again is the same person; "it's Tom's birthday" is no introduction
    same = turns(("user", "Hi, I'm Wendy."), ("user", "It's Tom's birthday."), ("user", "My name is Wendy, as I said."))
    assert introductions(same) == []


def test_a_turn_in_another_voice_begins_a_part_and_short_or_robot_turns_stay():
    ts = turns(("user", "one"), ("user", "two"), ("robot", "three"), ("user", "four"), ("user", "five"), ("user", "six"))
    voice = {0: A, 1: A, 2: B, 3: B, 4: None, 5: A}   # turn 4 is too short to embed
    parts = split_by_voice(ts, lambda a, b: voice[int(a // 2)], 0.65)
    assert [[t.turn.text for t in p] for p in parts] == [["one", "two", "three"], ["four", "five"], ["six"]]
    assert split_by_voice(ts, lambda a, b: voice[int(a // 2)], 0.0) == [ts]   # no threshold: no voice cut


def test_alike_known_voices_are_cut_apart_by_whose_keys_each_turn_is_nearer():
    """Two voices alike enough that no turn falls below the change threshold: each turn is still nearer
    its speaker's enrolled keys, and the part is cut where that changes (an unclear turn says nothing)."""
    wendy, jamal = np.array([1.0, 0.25, 0.0]), np.array([0.85, 0.5, 0.0])
    assert float(wendy @ jamal / np.linalg.norm(wendy) / np.linalg.norm(jamal)) > 0.9
    ts = turns(("user", "one"), ("user", "two"), ("user", "three"), ("user", "four"), ("user", "five"))
    voice = {0: wendy, 1: jamal, 2: (wendy + jamal) / 2, 3: jamal, 4: wendy}   # turn 2: half one, half the other
    keys = {"u-wendy": wendy / np.linalg.norm(wendy), "u-jamal": jamal / np.linalg.norm(jamal)}

    def known(e: np.ndarray) -> dict[str, float]:
        return {u: float(k @ e / np.linalg.norm(e)) for u, k in keys.items()}

    embed = lambda a, b: voice[int(a // 2)]  # noqa: E731
    assert split_by_voice(ts, embed, 0.65) == [ts]    # the change threshold alone cuts nothing
    parts = split_by_voice(ts, embed, 0.65, known, margin=0.01)
    assert [[t.turn.text for t in p] for p in parts] == [["one"], ["two", "three", "four"], ["five"]]
    assert split_by_voice(ts, embed, 0.65, known, margin=0.0) == [ts]     # margin 0: no such cuts
    assert split_by_voice(ts, embed, 0.0, known, margin=0.01) == [ts]     # no voice cuts at all


def _face(n: int) -> FaceObservation:
    return FaceObservation(FaceBox(0, 10, 10, 0), np.zeros(3, np.float32), n, "test")


def test_a_face_keys_a_new_person_only_when_it_is_the_only_unknown_one_in_view():
    alone, other = _face(1), _face(2)
    assert face_alone(alone, [(alone, {}, 0.0)])
    two = _face(2)
    assert not face_alone(two, [(two, {}, 0.0), (other, {}, 0.0)])              # two strangers: whose voice?
    assert face_alone(two, [(two, {}, 0.0), (other, {"ann": 0.9}, 0.0)])        # the other one is Ann
    assert not face_alone(_face(2), [(_face(2), {}, 0.0)])                      # the other face was never embedded
    assert not face_alone(None, [])


def test_a_speaker_who_names_themselves_is_never_given_to_someone_of_another_name(store):
    wendy = store.create_user("Wendy").id
    c = Consolidator(store, RuleExtractor(), RuleUpdateAgent(), lambda s: wendy, refresh=lambda: None)
    out = c.process(SessionInput("s1", 0, 5, [Turn(speaker="user", text="Hi robot, my name is Jamal. I love chess.")]),
                    owner=None)
    assert out.user_id != wendy and store.get_user(out.user_id).name == "Jamal"
    assert [f.text for f in store.facts(wendy)] == []


class _OneSession:
    """A segmenter that finds the sessions it is given (steps of 80 ms)."""
    name = "fixed"

    def __init__(self, *spans: tuple[int, int]):
        self.spans = spans

    def label(self, stream, identities=()):
        return labels_from_sessions(list(self.spans), stream.n_steps)


def test_a_transcript_stamped_after_the_next_session_began_is_written_once(store, tmp_path):
    buf = StreamBuffer(600)
    t0 = 1000.0
    buf.add_listen(t0, np.zeros(16000 * 40, np.float32), 16000)
    # session 1: 0-10 s, session 2: 11-20 s; the transcript of session 2's first turn comes at 11.5 s,
    # inside session 1's transcript latency (3 s) but after session 2 began
    buf.add_transcript(TranscriptSegment(t0 + 9.0, t0 + 9.0, "Hi robot, my name is Wendy."))
    buf.add_transcript(TranscriptSegment(t0 + 11.5, t0 + 11.5, "Hello, I'm Jamal. I love chess."))
    cons = Consolidator(store, RuleExtractor(), RuleUpdateAgent(), SessionOwner(None))
    mgr = MemoryManager(store, buf, _OneSession((0, 124), (137, 249)), cons, SessionSpool(tmp_path / "spool"))
    report = mgr.consolidate(t0 + 40.0)
    heard = [o.heard for o in report.outcomes if o.status == "written"]
    assert heard == ["Hi robot, my name is Wendy.", "Hello, I'm Jamal. I love chess."], heard


def test_two_real_voices_taking_turns_are_cut_apart(shared_data: Path, store, tmp_path):
    """Two LibriSpeech speakers alternating in one session, the resemblyzer voices the robot runs with."""
    from egomem_ros.identity_dirs import AUDIO_EXT, identity_files
    from egomem_ros.retrieval.media import load_audio
    from egomem_ros.retrieval.voice import VoiceEngine, make_voice_backend

    voices = identity_files(shared_data / "speech", AUDIO_EXT)
    libri = sorted(v for v in voices if v.startswith("librispeech"))[:2]
    if len(libri) < 2:
        pytest.skip("needs two LibriSpeech speakers in the shared data")
    clips = {v: np.concatenate([load_audio(f, 16000)[:16000 * 4] for f in voices[v][:2]]) for v in libri}
    order = [libri[0], libri[0], libri[1], libri[1], libri[0]]
    pcm = np.concatenate([clips[v][k % 2 * 16000 * 4:(k % 2 + 1) * 16000 * 4] for k, v in enumerate(order)])
    buf = StreamBuffer(600)
    t0 = 1000.0
    buf.add_listen(t0, pcm.astype(np.float32), 16000)
    for k in range(len(order)):
        buf.add_transcript(TranscriptSegment(t0 + 4.0 * (k + 1), t0 + 4.0 * (k + 1), f"I said thing number {k}."))
    engine = VoiceEngine(make_voice_backend("resemblyzer"))
    cons = Consolidator(store, RuleExtractor(), RuleUpdateAgent(), SessionOwner(None))
    mgr = MemoryManager(store, buf, _OneSession((0, int(4.0 * len(order) / 0.08) - 2)), cons,
                        SessionSpool(tmp_path / "spool"), voice_engine=engine)
    parts = mgr._session_inputs(buf.window(t0, t0 + 30)[0], t0, t0, t0 + 4.0 * len(order), buf.window(t0, t0 + 30)[1], [])
    assert [[t.text[-2] for t in p.turns] for p in parts] == [["0", "1"], ["2", "3"], ["4"]]

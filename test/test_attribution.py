"""Whose session it is, when a session ends, where it is cut: the pure logic, without models."""
import numpy as np
import pytest

from egomem_ros.memory.attribution import SessionOwner, user_speech
from egomem_ros.memory.buffer import IdentityObservation, StreamBuffer
from egomem_ros.memory.consolidate import Consolidator, SessionInput, SessionOutcome
from egomem_ros.memory.extraction import RuleExtractor, Turn
from egomem_ros.memory.manager import MemoryManager
from egomem_ros.memory.speaker_change import voice_changes
from egomem_ros.memory.trigger import snap_to_turn
from egomem_ros.memory.update_agent import RuleUpdateAgent
from egomem_ros.retrieval.poller import speaking_face

FACES = {"ann": np.array([1.0, 0, 0]), "bob": np.array([0, 1.0, 0]), "stranger": np.array([0, 0, 1.0])}


class FakeGallery:
    def __init__(self, keys: dict[str, int]):
        self.keys = keys

    def __len__(self) -> int:
        return sum(self.keys.values())

    def key_count(self, user: str) -> int:
        return self.keys.get(user, 0)


class FakePoller:
    """Scores a voice 'embedding' that is simply {user: confidence}, and faces by exact match."""
    face = voice = object()

    def __init__(self, voice_keys: dict[str, int]):
        self.voice_gallery = FakeGallery(voice_keys)
        self.face_gallery = FakeGallery({"ann": 3, "bob": 3})

    def match_voice(self, emb):
        return dict(emb.item()), 0.0

    def match_face(self, emb):
        return {u: 1.0 for u, f in FACES.items() if u != "stranger" and np.array_equal(f, emb)}, 0.0


def voice(**conf) -> np.ndarray:
    return np.array(conf, dtype=object)


def sess(observed=(), faces=(), speech=None, face_seen=True) -> SessionInput:
    return SessionInput("s1", 0.0, 10.0, [Turn(speaker="user", text="I love tea.")], [FACES[f] for f in faces],
                        observed_users=list(observed), speech_voice=speech, face_seen=face_seen)


OWNER = SessionOwner(FakePoller({"ann": 3, "bob": 3, "cat": 1}))


def test_the_voice_heard_owns_the_session_not_the_silent_face_in_view():
    assert OWNER(sess(observed=["ann"] * 4, speech=voice(ann=0.0, bob=0.93))) == "bob"


def test_a_new_voice_next_to_a_known_face_is_a_new_person():
    """Ann's voice is well known (3 keys) and this is not it: nothing goes to Ann."""
    assert OWNER(sess(observed=["ann"] * 4, speech=voice(ann=0.01, bob=0.2))) is None


def test_a_weakly_keyed_voice_does_not_reject_the_person_in_view():
    assert OWNER(sess(observed=["cat"] * 3, speech=voice(cat=0.04))) == "cat"
    assert OWNER(sess(observed=["ann"] * 3, speech=voice(ann=0.3))) == "ann"


def test_of_several_people_in_view_the_one_who_sounds_like_the_voice():
    assert OWNER(sess(observed=["ann", "ann", "bob"], speech=voice(ann=0.0, bob=0.4))) == "bob"


def test_a_strangers_face_is_a_new_person_even_if_the_voice_resembles_someone():
    assert OWNER(sess(faces=["stranger"] * 3, speech=voice(ann=0.86))) is None


def test_a_known_voice_whose_face_nobody_knows_owns_an_unknown_face():
    assert OWNER(sess(faces=["stranger"] * 2, speech=voice(cat=0.9))) == "cat"


def test_nobody_in_view_owns_nothing():
    assert OWNER(sess(speech=voice(ann=0.99), face_seen=False)) is None


def test_faces_of_a_person_enrolled_since_are_theirs_and_a_mix_is_nobodys():
    assert OWNER(sess(faces=["ann", "ann", "stranger"])) == "ann"
    assert OWNER(sess(faces=["ann", "bob"])) is None


def test_two_known_faces_seen_as_often_leave_it_to_a_known_voice_of_theirs():
    """Two people together: the polls named nobody, and each face was seen once. A known voice of one of
    them owns the session; a voice that is not clearly theirs does not."""
    assert OWNER(sess(faces=["ann", "bob"], speech=voice(ann=0.2, bob=0.97))) == "bob"
    assert OWNER(sess(faces=["ann", "bob"], speech=voice(ann=0.2, bob=0.3))) is None


def test_polls_not_settled_yet_let_a_known_voice_speak():
    assert OWNER(sess(speech=voice(bob=0.9))) == "bob"
    assert OWNER(sess(speech=voice(bob=0.3))) is None


def test_robot_speaking_time_is_not_the_users_voice():
    listen = np.ones(16000 * 4, np.float32)
    speak = np.zeros_like(listen)
    speak[16000:32000] = 0.5  # the robot talks in second 1-2
    kept = user_speech(listen, speak)
    assert 16000 * 4 - len(kept) == pytest.approx(16000 + 2 * 0.3 * 16000, abs=700)  # plus its echo tail
    assert user_speech(listen, None) is listen


def test_speaking_face_is_the_one_the_voice_names():
    faces = [("big", {"ann": 0.99}, 0.3), ("small", {"bob": 0.95}, 0.35)]
    assert speaking_face(faces, {"bob": 0.9, "ann": 0.0})[0] == "small"
    assert speaking_face(faces, {"bob": 0.2})[0] == "big"          # the voice is not sure: the policy's face
    assert speaking_face([], {"bob": 0.9})[0] is None


def _turn(start: int, user: str) -> tuple:
    emb = {"a": np.array([1.0, 0]), "b": np.array([0, 1.0]), "a2": np.array([0.9, 0.436])}[user]
    return start, start + 20, emb


def test_identity_change_snaps_to_the_turn_where_the_voice_changed():
    turns = [_turn(0, "a"), _turn(30, "a2"), _turn(60, "b"), _turn(90, "b")]
    assert snap_to_turn(100, turns, lag=75) == 60        # the poll saw b at step 100; b began at 60
    assert snap_to_turn(100, turns, lag=5) == 100        # no turn boundary in the lag: the poll's own time
    assert voice_changes(turns, 0.6) == [60]


class _NoSegmenter:
    name = "none"

    def label(self, stream, identities=()):
        return np.zeros(stream.n_steps, np.int8)


def test_a_session_ends_when_the_voice_stops_or_the_person_changes(store, tmp_path):
    from egomem_ros.memory.spool import SessionSpool

    buf = StreamBuffer(120)
    mgr = MemoryManager(store, buf, _NoSegmenter(), Consolidator(store, RuleExtractor(), RuleUpdateAgent(),
                                                                 lambda s: None), SessionSpool(tmp_path / "sp"),
                        session_end_s=5.0)
    for t in range(0, 12, 2):  # ann talks for 10 s
        buf.add_identity(IdentityObservation(float(t), "ann", track="ann", face_seen=True, voiced=True))
    assert not mgr.session_ended(12.0)                     # quiet for 2 s only
    buf.add_identity(IdentityObservation(12.0, "ann", track="ann", face_seen=True))
    assert mgr.session_ended(15.0)                         # quiet for 5 s: ended
    assert not mgr.session_ended(17.0)                     # said once
    for t in range(20, 30, 2):
        buf.add_identity(IdentityObservation(float(t), "ann" if t < 24 else "", track="ann" if t < 24 else "tmp-x",
                                             face_seen=True, voiced=True))
    assert not mgr.session_ended(26.0)                     # someone else came 2 s ago: transcripts may follow
    assert mgr.session_ended(29.5)                         # ...and ann's session is over


def test_no_profile_for_nothing_to_remember_or_nobody_in_view(store):
    c = Consolidator(store, RuleExtractor(), RuleUpdateAgent(), lambda s: None)
    hello = SessionInput("s1", 0, 5, [Turn(speaker="user", text="Hello again, I am back.")])
    tv = SessionInput("s2", 9, 15, [Turn(speaker="user", text="I love the weather tonight.")], face_seen=False)
    assert [c.process(s).status for s in (hello, tv)] == ["not-learned", "not-learned"]
    assert store.list_users() == []


def test_a_voice_confirms_its_owner_only_when_it_sounds_like_nobody_else():
    assert OWNER.voice_confirms(sess(speech=voice(ann=0.95, bob=0.1)), "ann")
    assert not OWNER.voice_confirms(sess(speech=voice(ann=0.95, bob=0.9)), "ann")   # two alike voices: no new key
    assert not OWNER.voice_confirms(sess(speech=voice(ann=0.7)), "ann")


def test_a_known_voice_learns_from_a_session_it_clearly_owned(store):
    ann = store.create_user("Ann")
    v = np.random.default_rng(0).normal(size=256).astype(np.float32)
    added = []
    c = Consolidator(store, RuleExtractor(), RuleUpdateAgent(), lambda s: ann.id, voice_model="m",
                     voice_confirms=lambda s, u: s.session_id == "sure", on_keys_added=lambda *k: added.append(k[:2]))
    for sid in ("sure", "unsure"):
        out: SessionOutcome = c.process(SessionInput(sid, 0, 5, [Turn(speaker="user", text="I love tea.")],
                                                     speech_voice=v))
        assert out.status == "written"
    assert len(store.user_keys(ann.id, "voice")) == 1 and added == [(ann.id, "voice")]


def test_a_known_person_s_voice_never_keys_a_new_person():
    """The newcomer's part may begin with the last speaker's words: those never become the newcomer's."""
    parts = [voice(ann=0.9), voice(ann=0.6, bob=0.1), voice()]
    assert [p.item() for p in OWNER.foreign_voices(parts)] == [{"ann": 0.6, "bob": 0.1}, {}]   # a look-alike stays


def test_a_new_person_is_keyed_only_with_the_voices_nobody_known_has(store):
    v = np.random.default_rng(1).normal(size=(2, 256)).astype(np.float32)
    c = Consolidator(store, RuleExtractor(), RuleUpdateAgent(), lambda s: None, voice_model="m",
                     new_person_voices=lambda embs: [e for e in embs if e is not embs[0]])
    s = SessionInput("new", 0, 5, [Turn(speaker="user", text="Hi, my name is Dana. I love tea.")],
                     voice_embeddings=list(v), face_seen=True)
    uid = c.process(s).user_id
    keys = store.user_keys(uid, "voice")
    assert len(keys) == 1

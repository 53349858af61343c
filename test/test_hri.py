"""The ROS4HRI (REP-155) view of a poll, without ROS: the ids the /humans/... topics carry agree."""
import numpy as np

from egomem_ros.hri import hri_view
from egomem_ros.msg_fields import candidate_matches
from egomem_ros.retrieval.face import FaceBox, FaceObservation
from egomem_ros.retrieval.poller import IdentityEvent
from egomem_ros.retrieval.fusion import Decision
from egomem_ros.retrieval.voice import VoiceObservation

FACE = FaceObservation(FaceBox(64, 48, 192, 240), np.zeros(3, np.float32), 1, "test", (480, 640))
VOICE = VoiceObservation(np.zeros(3, np.float32), 2.0, "test")


def event(status: str, user_id: str, face=FACE, voice=VOICE) -> IdentityEvent:
    return IdentityEvent(stamp=1.0, status=status, user_id=user_id, name="", confidence=0.9,
                         observed=Decision(status, user_id, 0.9), face=face, voice=voice)


def test_a_known_person_is_tracked_with_their_face_voice_and_region():
    view = hri_view(event("known", "abcde"))
    assert view.persons == ["abcde"] and view.voices == ["vabcde"]
    assert view.faces == {"fabcde": (0.1, 0.1, 0.3, 0.5, 0.9)}
    assert view.person_face == {"abcde": "fabcde"} and view.person_voice == {"abcde": "vabcde"}
    # the matches name exactly the ids that are tracked
    ids = {(m["id1"], m["id2"]) for m in candidate_matches(event("known", "abcde"), "")}
    assert ids == {("fabcde", "abcde"), ("vabcde", "abcde")}


def test_a_stranger_has_a_face_and_voice_but_no_person_and_nobody_has_nothing():
    view = hri_view(event("unknown", "tmp-xyz", voice=None))
    assert list(view.faces) == ["ftmp_xyz"]   # a valid ROS name token: /humans/faces/ftmp_xyz/roi
    assert view.voices == [] and view.persons == [] and view.person_face == {}
    assert hri_view(event("nobody", "", face=None, voice=None)) == hri_view(event("nobody", ""))
    assert hri_view(event("nobody", "")).faces == {}

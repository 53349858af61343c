"""What an identity poll says in ROS4HRI's terms (REP-155), ROS-free: the ids and regions that ROS4HRI
tools (hri_rviz, a person manager, pyhri) read from `/humans/...`.

- A face id is "f" + the poll's track (the user id of a known person, the temporary id of a stranger,
  with "-" as "_" so that it can name a topic), a voice id "v" + the track; so the ids that
  `/humans/candidate_matches` names are the ids that `/humans/faces/tracked` and `/humans/voices/tracked` list.
- A person id is the memory's user id: stable across runs and robots, the same one `egomem show` prints.
- A face's region is normalised to [0, 1] by the size of the frame it was found in.
The identity node turns an `HriView` into messages; the pure logic is tested without ROS.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

KNOWN, UNKNOWN = "known", "unknown"


def face_id(track: str) -> str:
    return "f" + _token(track)


def voice_id(track: str) -> str:
    return "v" + _token(track)


def _token(track: str) -> str:
    """A ROS topic name token: a stranger's "tmp-abcde" becomes "tmp_abcde" (`/humans/faces/<id>/roi`)."""
    return re.sub(r"\W", "_", track)


@dataclass(frozen=True)
class HriView:
    faces: dict[str, tuple[float, float, float, float, float]] = field(default_factory=dict)  # id -> roi, confidence
    voices: list[str] = field(default_factory=list)
    persons: list[str] = field(default_factory=list)            # persons tracked now (known users in view)
    person_face: dict[str, str] = field(default_factory=dict)   # person id -> face id
    person_voice: dict[str, str] = field(default_factory=dict)  # person id -> voice id


def hri_view(event) -> HriView:
    """The faces, voices and persons of one poll (`retrieval.poller.IdentityEvent`)."""
    track = event.user_id if event.status in (KNOWN, UNKNOWN) else ""
    if not track:
        return HriView()
    faces, voices = {}, []
    if event.face is not None:
        faces[face_id(track)] = (*normalised_box(event.face), float(event.confidence))
    if event.voice is not None:
        voices.append(voice_id(track))
    if event.status != KNOWN:
        return HriView(faces, voices)
    return HriView(faces, voices, [track], {track: face_id(track)} if faces else {},
                   {track: voice_id(track)} if voices else {})


def normalised_box(face) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) in [0, 1] of the frame the face was found in."""
    h, w = face.frame_size
    if not (h and w):
        return 0.0, 0.0, 0.0, 0.0
    b = face.box
    return _unit(b.left / w), _unit(b.top / h), _unit(b.right / w), _unit(b.bottom / h)


def _unit(v: float) -> float:
    return min(1.0, max(0.0, float(v)))

"""Enrolling a person from face images and voice clips: all keys in one transaction, or nothing."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..store.models import MemoryRepository, User
from .face import FaceEngine
from .media import MediaError, load_image
from .voice import VoiceEngine
from ..errors import EgomemError

log = logging.getLogger(__name__)


class EnrollmentError(EgomemError, ValueError):
    pass


@dataclass
class EnrollReport:
    user: User
    face_keys: int = 0
    voice_keys: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (input, reason)


def face_embedding(engine: FaceEngine, image: str | Path | np.ndarray) -> np.ndarray:
    rgb = load_image(image, max_side=engine.max_side) if isinstance(image, (str, Path)) else image
    obs = engine.observe(rgb)
    if obs is None:
        raise MediaError("no face found")
    if obs.faces_in_frame > 1:
        log.info("%d faces in enrolment image; using the %s one", obs.faces_in_frame, engine.policy)
    return obs.embedding


def voice_embedding(engine: VoiceEngine, clip: str | Path | tuple[np.ndarray, int]) -> np.ndarray:
    obs = engine.observe_file(clip) if isinstance(clip, (str, Path)) else engine.observe(*clip)
    if obs is None:
        raise MediaError(f"less than {engine.min_voiced_s:.1f} s of voiced audio")
    return obs.embedding


def enroll_person(store: MemoryRepository, name: str | None, *, faces: Sequence = (), voices: Sequence = (),
                  face_engine: FaceEngine | None = None, voice_engine: VoiceEngine | None = None,
                  user_id: str | None = None) -> EnrollReport:
    """Embed every input; unusable ones are reported, and with no usable key nothing is written.

    With `user_id`, keys are added to that existing user instead of a new one.
    """
    if faces and face_engine is None or voices and voice_engine is None:
        raise EnrollmentError("an engine is needed for each modality given")
    face_vecs, voice_vecs, rejected = [], [], []
    for src in faces:
        try:
            face_vecs.append(face_embedding(face_engine, src))
        except MediaError as err:
            rejected.append((str(src) if not isinstance(src, np.ndarray) else "<image>", str(err)))
    for src in voices:
        try:
            voice_vecs.append(voice_embedding(voice_engine, src))
        except MediaError as err:
            rejected.append((str(src) if not isinstance(src, tuple) else "<audio>", str(err)))
    if not face_vecs and not voice_vecs:
        reasons = "; ".join(f"{s}: {r}" for s, r in rejected) or "no inputs"
        raise EnrollmentError(f"nothing usable to enrol ({reasons})")
    with store.transaction():
        user = store.get_user(user_id) if user_id else store.create_user(name)
        for v in face_vecs:
            store.add_key(user.id, "face", face_engine.model, v)
        for v in voice_vecs:
            store.add_key(user.id, "voice", voice_engine.model, v)
    return EnrollReport(user, len(face_vecs), len(voice_vecs), rejected)

"""What memory management needs from the identity process: its engines, its key galleries, matching, and
a way to hand it new keys. `retrieval.poller.IdentityPoller` is one; the tests use small fakes. Typing
only: memory imports no retrieval module at run time for it."""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from ..retrieval.face import FaceEngine
    from ..retrieval.gallery import KeyGallery
    from ..retrieval.voice import VoiceEngine


class IdentityKeys(Protocol):
    face: FaceEngine | None
    voice: VoiceEngine | None
    face_gallery: KeyGallery | None
    voice_gallery: KeyGallery | None

    def match_face(self, embedding: np.ndarray) -> tuple[dict[str, float], float]:
        """Per-user confidence and the best distance for one face embedding."""

    def match_voice(self, embedding: np.ndarray) -> tuple[dict[str, float], float]:
        """Per-user confidence and the best score for one voice embedding."""

    def add_key_to_gallery(self, user_id: str, modality: str, vector: np.ndarray, key_id: int) -> None:
        """A key the store has just committed, made searchable now."""

    def sync(self) -> bool:
        """Re-read keys other processes wrote; True when something changed."""

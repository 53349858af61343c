"""Whose session is it: the person whose voice is heard in it (paper §3.1.1, memory management).

The identity polls say who is in view; a session's words belong to who is speaking. So a session's
owner is decided from its own audio first: the user's speech (the microphone with the robot's own
speaking time cut out) is embedded and matched against the enrolled voices. A known voice owns the
session. With no known voice, the person the polls saw owns it, unless that person's enrolled voice
clearly is not the one speaking (someone else talks while a known person stands in view): then the
speaker is a new person, and nothing is written to the silent bystander.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import numpy as np

from .identity_keys import IdentityKeys

log = logging.getLogger(__name__)
SR = 16_000
MAX_VOICE_PARTS = 3
CLEARLY_KNOWN_VOICE = 0.85   # a voice this close is that person's, not a look-alike's (voice_confirms too)
KNOWN_VOICE = 0.5    # voice confidence at which the voice alone names the speaker (the calibrated threshold)
WEAK_VOICE = 0.1     # below this for a person in view, the voice heard may not be theirs...
WELL_KNOWN_VOICE_KEYS = 3  # ...and is not, when their voice is known from this many keys


def user_speech(listen: np.ndarray, speak: np.ndarray | None, *, frame_s: float = 0.02, level: float = 1e-3,
                echo_s: float = 0.3) -> np.ndarray:
    """The microphone without the moments the robot itself was speaking (plus its echo tail)."""
    if speak is None or not np.any(speak):
        return listen
    hop = int(SR * frame_s)
    n = min(len(listen), len(speak)) // hop
    rms = np.sqrt(np.mean(speak[:n * hop].reshape(n, hop) ** 2, axis=1))
    active = rms > level
    tail = int(echo_s / frame_s)
    if tail:
        active = np.convolve(active.astype(np.int32), np.ones(2 * tail + 1, np.int32), "same") > 0
    keep = np.ones(len(listen), bool)
    keep[:n * hop] = np.repeat(~active, hop)
    return listen[keep]


def speech_embeddings(voice_engine, listen: np.ndarray, speak: np.ndarray | None, *, parts: bool = True
                      ) -> tuple[np.ndarray | None, list[np.ndarray]]:
    """(embedding of all the user's speech in a session, up to 3 embeddings of its parts for new keys;
    none with `parts=False`)."""
    if voice_engine is None:
        return None, []
    from ..retrieval.media import MediaError

    pcm = user_speech(listen, speak)
    if not np.any(pcm):
        return None, []
    try:
        whole = voice_engine.observe(pcm, SR)
    except MediaError as err:
        log.warning("session speech not embedded: %s", err)
        return None, []
    if whole is None or not parts:
        return (None if whole is None else whole.embedding), []
    keys = []
    for chunk in np.array_split(pcm, MAX_VOICE_PARTS) if len(pcm) > MAX_VOICE_PARTS * 2 * SR else [pcm]:
        try:
            obs = voice_engine.observe(chunk, SR)
        except MediaError:
            obs = None
        if obs is not None:
            keys.append(obs.embedding)
    return whole.embedding, keys or [whole.embedding]


class SessionOwner:
    """`owner(session) -> user id | None` (None: a new person), from the session's voice and the polls."""

    def __init__(self, poller: IdentityKeys | None) -> None:
        self.poller = poller

    def __call__(self, s) -> str | None:
        voice = self._voice_confidences(s.speech_voice)
        log.debug("session %s: voice %s, in view %s", s.session_id, {u: round(c, 2) for u, c in voice.items()},
                  dict(Counter(s.observed_users)))
        if not s.face_seen:
            return None  # nobody in view: a voice from another room, a TV
        best = max(voice, key=voice.get, default=None)
        votes = Counter() if s.observed_users else self._face_votes(s.face_embeddings)
        in_view = Counter(s.observed_users) or _most_matched(votes)
        if in_view:
            # of the people in view, the one who sounds most like the voice heard
            seen = max(in_view, key=lambda u: (voice.get(u, 0.0), in_view[u]))
            if s.speech_voice is None or voice.get(seen, 0.0) >= WEAK_VOICE:
                return seen
            seen = in_view.most_common(1)[0][0]
            if best is not None and voice[best] >= KNOWN_VOICE:
                return best  # a known voice talks next to a silent known face
            if self._voice_keys(seen) >= WELL_KNOWN_VOICE_KEYS:
                log.info("session %s: %s is in view but the voice heard is not theirs; a new person spoke",
                         s.session_id, seen)
                return None
            return seen
        if best is not None and voice[best] >= KNOWN_VOICE and best in votes:
            return best  # two known people in view as often, and the voice is one of theirs
        if s.face_embeddings and not (best is not None and voice[best] >= KNOWN_VOICE and not self._face_keys(best)):
            return None  # only a face nobody knows: a new person (unless a known voice whose face nobody knows)
        # a face was seen, but the polls had not settled on anyone yet: the voice says who
        return best if best is not None and voice[best] >= KNOWN_VOICE else None

    def _face_votes(self, faces: Sequence[np.ndarray]) -> Counter:
        """How many of the session's faces (from polls of a person unknown then, who may have been
        enrolled since) each known user's face matches: each face on its own (an average of two
        people's faces is nobody's)."""
        if not faces or self.poller is None or self.poller.face is None:
            return Counter()
        return Counter(u for u in map(self._known_face, faces) if u is not None)

    def voice_confirms(self, s, user_id: str, confidence: float = CLEARLY_KNOWN_VOICE) -> bool:
        """The session's speech is clearly `user_id`'s voice and nobody else's (its voice and the faces no
        poll recognised may then become their keys). Two people whose voices sound alike both match: a
        key learnt then would make the one sound more like the other with every session."""
        conf = self._voice_confidences(s.speech_voice)
        return conf.get(user_id, 0.0) >= confidence and all(c < KNOWN_VOICE for u, c in conf.items() if u != user_id)

    def foreign_faces(self, faces: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The faces that are no known user's (the keys a new person may get: never a known bystander's)."""
        if self.poller is None or self.poller.face is None:
            return list(faces)
        return [emb for emb in faces if self._known_face(emb) is None]

    def foreign_voices(self, voices: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The voice parts that are clearly no known user's (a known person's voice never keys a new one:
        else every later turn of theirs may go to the newcomer). A part that merely resembles someone
        (two synthetic voices, two siblings) stays: without it the newcomer would have no voice at all."""
        out = []
        for emb in voices:
            conf = self._voice_confidences(emb)
            known = max(conf, key=conf.get, default=None)
            if known is not None and conf[known] >= CLEARLY_KNOWN_VOICE:
                log.info("a voice part sounds like %s (%.2f): not a key of the new person", known, conf[known])
                continue
            out.append(emb)
        return out

    def voice_similarities(self, emb: np.ndarray) -> dict[str, float]:
        """Each known person's best cosine between `emb` and their voice keys: raw, for telling two known
        voices apart (the calibrated confidences of two alike voices both sit near 1)."""
        g = self.poller.voice_gallery if self.poller is not None else None
        if g is None or not len(g):
            return {}
        return {u: 1.0 - m.distance for u, m in g.best_per_user(emb, k=20).items()}

    def _known_face(self, emb: np.ndarray) -> str | None:
        """The known user this one face is, if any (confidence at least the calibrated threshold's 0.5)."""
        conf, _ = self.poller.match_face(emb)
        best = max(conf, key=conf.get, default=None)
        return best if best is not None and conf[best] >= 0.5 else None

    def _voice_confidences(self, emb: np.ndarray | None) -> dict[str, float]:
        if emb is None or self.poller is None or self.poller.voice is None or self.poller.voice_gallery is None:
            return {}
        if not len(self.poller.voice_gallery):
            return {}
        conf, _ = self.poller.match_voice(emb)
        return conf

    def _face_keys(self, user_id: str) -> int:
        g = self.poller.face_gallery if self.poller is not None else None
        return 0 if g is None else g.key_count(user_id)

    def _voice_keys(self, user_id: str) -> int:
        g = self.poller.voice_gallery if self.poller is not None else None
        return 0 if g is None else g.key_count(user_id)


def _most_matched(votes: Counter) -> Counter:
    """The user most faces match, when no other user matches as many (else nobody)."""
    top = votes.most_common(2)
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return Counter()
    return Counter({top[0][0]: top[0][1]})

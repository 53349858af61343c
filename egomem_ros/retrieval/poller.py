"""EgoMem's polling retrieval process (paper §3.1.1), without ROS.

Feed it timestamped frames and audio; every `poll_period_s` it looks at the last `window_s` seconds,
scores face and voice against the enrolled keys, fuses them, and returns an Identity event. A Level-1
MemChunk comes with the event only when the stable identity changes (nobody or an unknown person get
an empty chunk, so one user's profile is never shown to somebody else).
"""
from __future__ import annotations

import collections
import logging
import math
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..config import IdentityConfig
from ..memchunk import LEVEL1, MemChunk, TokenCounter, render_user_profile
from ..store.models import MemoryRepository
from .face import FaceEngine, FaceObservation
from .fusion import KNOWN, NOBODY, UNKNOWN, Decision, SwitchHysteresis, distance_confidence, fuse, score_confidence
from .gallery import KeyGallery
from .media import MediaError, clean_audio
from .snorm import AdaptiveSNorm
from .voice import SAMPLE_RATE, VoiceEngine, VoiceObservation

log = logging.getLogger(__name__)
MAX_FACES = 3  # faces embedded per frame by the `speaker` policy


@dataclass(frozen=True)
class IdentityEvent:
    stamp: float
    status: str                      # stable identity: known | unknown | nobody
    user_id: str                     # store id, temporary id (unknown) or ""
    name: str
    confidence: float
    observed: Decision               # this poll's own decision, before hysteresis
    face: FaceObservation | None = None
    voice: VoiceObservation | None = None
    face_distance: float = math.nan
    voice_score: float = math.nan
    learnable: bool = False          # an unknown person that memory management may enrol
    timings_ms: dict[str, float] = field(default_factory=dict)
    face_alone: bool = True          # no other unknown face in view: this face is the unknown person's

    @property
    def learnable_face(self) -> FaceObservation | None:
        """The face memory management may key a new person with: never one of two strangers in view
        (which of them is talking, the camera alone cannot tell)."""
        return self.face if self.learnable and self.face_alone else None

    @property
    def learnable_voice(self) -> VoiceObservation | None:
        return self.voice if self.learnable else None


@dataclass(frozen=True)
class PollResult:
    event: IdentityEvent
    chunk: MemChunk | None           # only on a switch of the stable identity


class IdentityPoller:
    def __init__(self, store: MemoryRepository, face: FaceEngine | None, voice: VoiceEngine | None,
                 config: IdentityConfig, counter: TokenCounter, *, l1_max_tokens: int = 512,
                 cohort: np.ndarray | None = None, parallel: bool = True):
        self.store, self.face, self.voice, self.cfg = store, face, voice, config
        self.counter, self.l1_max_tokens = counter, l1_max_tokens
        self._frames: collections.deque[tuple[float, np.ndarray]] = collections.deque()
        self._audio: collections.deque[tuple[float, np.ndarray]] = collections.deque()
        self._hyst = SwitchHysteresis(config.switch_after_polls, config.instant_switch_confidence)
        self._stranger: tuple[str, np.ndarray | None, np.ndarray | None, float] | None = None
        self._chunk_version = 0
        self._last_poll = -math.inf
        self._extra_cohort = cohort
        self._buffer_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="egomem-voice") if parallel else None
        self.reload()

    # -- keys ----------------------------------------------------------------------------------
    def reload(self) -> None:
        """(Re)build the galleries and the s-norm cohort from the store."""
        self._revision_seen = self.store.revision
        self._keys_seen = self.store.keys_revision()
        self.face_gallery = self._gallery("face", self.face)
        self.voice_gallery = self._gallery("voice", self.voice)
        self._rebuild_snorm()

    def sync(self) -> bool:
        """Reload when anyone changed the keys since (another robot sharing the store enrolled or forgot
        someone): called every poll, so a fleet's galleries agree within one poll period. The store's
        revision is free to read; the key tables are counted only after some commit."""
        revision = self.store.revision
        if revision == self._revision_seen:
            return False
        self._revision_seen = revision
        if self.store.keys_revision() == self._keys_seen:
            return False
        self.reload()
        return True

    def _rebuild_snorm(self) -> None:
        """The cohort is every user's voice keys (+ the extra cohort): rebuilt when voice keys change."""
        self.snorm = None
        if self.voice is not None and self.cfg.voice.snorm:
            keys = self.store.keys("voice", self.voice.model)
            rows = [k.vector for k in keys]
            labels: list[str | None] = [k.user_id for k in keys]
            if self._extra_cohort is not None and len(self._extra_cohort):
                rows += list(self._extra_cohort)
                labels += [None] * len(self._extra_cohort)
            if len(rows) >= self.cfg.voice.min_cohort:
                self.snorm = AdaptiveSNorm(np.stack(rows), labels, top_n=self.cfg.voice.cohort_top_n)
            else:
                log.info("s-norm off until the cohort has %d voices (now %d): scoring raw cosine",
                         self.cfg.voice.min_cohort, len(rows))

    def _gallery(self, modality: str, engine) -> KeyGallery | None:
        if engine is None:
            return None
        metric = engine.backend.metric if modality == "face" else "cosine"
        gallery = KeyGallery(engine.backend.dim, metric, exact_max_keys=self.cfg.exact_search_max_keys,
                             ann_dim=self.cfg.ann_dim, ann_candidates=self.cfg.ann_candidates,
                             hnsw_m=self.cfg.ann_m, hnsw_ef=self.cfg.ann_ef)
        keys = self.store.keys(modality, engine.model)  # type: ignore[arg-type]
        other = len(self.store.keys(modality)) - len(keys)  # type: ignore[arg-type]
        if other:
            log.warning("%d %s keys come from another model than %s and are ignored; re-enrol those users",
                        other, modality, engine.model)
        if keys:
            gallery.add([k.id for k in keys], [k.user_id for k in keys], np.stack([k.vector for k in keys]))
        return gallery

    def add_key(self, user_id: str, modality: str, vector: np.ndarray) -> int:
        engine = self.face if modality == "face" else self.voice
        if engine is None:
            raise ValueError(f"no {modality} engine configured")
        key_id = self.store.add_key(user_id, modality, engine.model, vector)  # type: ignore[arg-type]
        self.add_key_to_gallery(user_id, modality, vector, key_id)
        return key_id

    def add_key_to_gallery(self, user_id: str, modality: str, vector: np.ndarray, key_id: int) -> None:
        """A key already committed to the store (e.g. by memory management) joins the live search."""
        gallery = self.face_gallery if modality == "face" else self.voice_gallery
        if gallery is None:
            return
        gallery.add([key_id], [user_id], np.asarray(vector)[None, :])
        if modality == "voice":
            self._rebuild_snorm()  # the new key joins everybody else's cohort; the galleries are current

    def forget(self, user_id: str) -> None:
        for gallery in (self.face_gallery, self.voice_gallery):
            if gallery is not None:
                gallery.remove_user(user_id)
        if self.snorm is not None:
            self.snorm.forget_user(user_id)

    # -- input ---------------------------------------------------------------------------------
    def add_frame(self, stamp: float, image: np.ndarray) -> None:
        with self._buffer_lock:
            self._frames.append((stamp, image))
            self._trim(stamp)

    def add_audio(self, stamp: float, pcm: np.ndarray, sample_rate: int) -> None:
        """`stamp` is the time of the chunk's first sample. Bad audio is logged and dropped; digital silence
        (a muted or idle microphone) is kept as the silence it is."""
        try:
            pcm16k = clean_audio(pcm, sample_rate, SAMPLE_RATE, allow_silence=True)
        except MediaError as err:
            log.warning("audio chunk at %.2f rejected: %s", stamp, err)
            return
        with self._buffer_lock:
            self._audio.append((stamp, pcm16k))
            self._trim(stamp)

    def _trim(self, now: float) -> None:
        horizon = now - max(self.cfg.window_s, self.cfg.poll_period_s) - 1.0
        for buf in (self._frames, self._audio):
            while buf and buf[0][0] < horizon:
                buf.popleft()

    def close(self) -> None:
        if self._pool:
            self._pool.shutdown(wait=True)
        if hasattr(self.face, "close"):
            self.face.close()

    def due(self, now: float) -> bool:
        return now - self._last_poll >= self.cfg.poll_period_s

    # -- polling -------------------------------------------------------------------------------
    def poll(self, now: float) -> PollResult:
        self.sync()
        self._last_poll = now
        t: dict[str, float] = {}
        start = now - self.cfg.window_s
        # face (dlib, holds the GIL) on this thread while voice (torch, releases it) runs beside it
        tv: dict[str, float] = {}
        voice_job = self._pool.submit(self._score_voice, start, now, tv) if self._pool else None
        faces = self._score_faces(start, now, t)
        voice_obs, voice_conf, voice_score = voice_job.result() if voice_job else self._score_voice(start, now, tv)
        t.update(tv)
        t0 = time.perf_counter()
        face_obs, face_conf, face_dist = speaking_face(faces, voice_conf)
        decision = fuse(face_conf, voice_conf, self.cfg.face_weight)
        key = decision.user_id
        if decision.status == UNKNOWN:
            key = self._stranger_id(now, face_obs, voice_obs)
        switched = self._hyst.update(key, decision.confidence, decision.corroborated)
        stable = self._hyst.current
        t["fusion"] = (time.perf_counter() - t0) * 1e3
        status = NOBODY if not stable else (UNKNOWN if stable.startswith("tmp-") else KNOWN)
        name = ""
        if status == KNOWN:
            try:
                name = self.store.get_user(stable).name or ""
            except KeyError:  # forgotten meanwhile
                status, stable = NOBODY, ""
        chunk = self._chunk(status, stable, now, t) if switched else None
        event = IdentityEvent(
            stamp=now, status=status, user_id=stable, name=name,
            confidence=decision.confidence if key == stable else 0.0, observed=decision,
            face=face_obs, voice=voice_obs, face_distance=face_dist, voice_score=voice_score,
            learnable=status == UNKNOWN and self.cfg.learn_new_users, timings_ms=t,
            face_alone=face_alone(face_obs, faces))
        return PollResult(event, chunk)

    def _score_faces(self, start: float, now: float, t: dict[str, float]) -> list[tuple]:
        """(observation, per-user confidence, best distance) of the faces in the newest frame, the
        policy's choice first; several only with the `speaker` policy."""
        if self.face is None:
            return []
        with self._buffer_lock:  # sensor callbacks append from other executor threads
            frames = [img for ts, img in self._frames if start < ts <= now]
        t0 = time.perf_counter()
        found: list = []
        most = MAX_FACES if self.face.policy == "speaker" else 1
        for img in reversed(frames[-2:]):  # newest first; one retry on an older frame
            try:
                found = self.face.observe_all(img, most)
            except MediaError as err:
                log.warning("frame rejected: %s", err)
                continue
            if found:
                break
        t["face_embed"] = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        scored = [(obs, *self.match_face(obs.embedding)) for obs in found]
        t["face_match"] = (time.perf_counter() - t0) * 1e3
        return scored

    def match_face(self, embedding: np.ndarray) -> tuple[dict[str, float], float]:
        """Per-user confidence and the best distance for one face embedding."""
        best = self.face_gallery.best_per_user(embedding, k=20)
        conf = {u: distance_confidence(m.distance, self.face.threshold) for u, m in best.items()}
        return conf, min((m.distance for m in best.values()), default=math.nan)

    def _score_voice(self, start: float, now: float, t: dict[str, float]):
        if self.voice is None:
            return None, None, math.nan
        with self._buffer_lock:
            parts = [pcm for ts, pcm in self._audio if ts + pcm.size / SAMPLE_RATE > start and ts <= now]
        window = np.concatenate(parts) if parts else None
        if window is None or not np.any(window):  # nothing heard, or digital silence: no voice, no error
            return None, None, math.nan
        t0 = time.perf_counter()
        try:
            obs = self.voice.observe(window, SAMPLE_RATE)
        except MediaError as err:
            log.warning("audio window rejected: %s", err)
            obs = None
        t["voice_embed"] = (time.perf_counter() - t0) * 1e3
        if obs is None:
            return None, None, math.nan
        t0 = time.perf_counter()
        conf, best_score = self.match_voice(obs.embedding)
        t["voice_match"] = (time.perf_counter() - t0) * 1e3
        return obs, conf, best_score

    def match_voice(self, embedding: np.ndarray) -> tuple[dict[str, float], float]:
        """Per-user confidence and the best (s-normalised when enabled) score for one voice embedding."""
        cands = list(self.voice_gallery.search(embedding, k=20))
        if not cands:
            return {}, math.nan
        vcfg, backend = self.cfg.voice, self.voice.backend
        if self.snorm is not None:
            keys = np.stack([self.voice_gallery.vector(m.key_id) for m in cands])
            scores = self.snorm.normalise(embedding, keys, [m.user_id for m in cands], [m.key_id for m in cands])
            thr = vcfg.threshold if vcfg.threshold > 0 else backend.default_threshold_snorm
            scale = 0.5
        else:
            scores = np.array([1.0 - m.distance for m in cands])
            thr = vcfg.threshold if vcfg.threshold > 0 else backend.default_threshold_cosine
            scale = 0.03
        conf: dict[str, float] = {}
        for m, s in zip(cands, scores):
            conf[m.user_id] = max(conf.get(m.user_id, 0.0), score_confidence(float(s), thr, scale))
        return conf, float(np.max(scores))

    def _stranger_id(self, now: float, face: FaceObservation | None, voice: VoiceObservation | None) -> str:
        """A temporary id that stays stable while the same unknown person stays in view/earshot."""
        femb = face.embedding if face else None
        vemb = voice.embedding if voice else None
        if self._stranger is not None:
            sid, sf, sv, last = self._stranger
            recent = now - last <= 3 * self.cfg.poll_period_s
            same_face = femb is not None and sf is not None and \
                self.face.distances(femb, sf[None, :])[0] < self.face.threshold
            same_voice = vemb is not None and sv is not None and \
                float(np.dot(vemb, sv) / (np.linalg.norm(vemb) * np.linalg.norm(sv) + 1e-12)) > \
                self.voice.backend.default_threshold_cosine
            if recent and (same_face or same_voice or (femb is None and vemb is None)):
                self._stranger = (sid, femb if femb is not None else sf, vemb if vemb is not None else sv, now)
                return sid
        sid = "tmp-" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(5))
        self._stranger = (sid, femb, vemb, now)
        return sid

    def _chunk(self, status: str, user_id: str, now: float, t: dict[str, float]) -> MemChunk:
        t0 = time.perf_counter()
        self._chunk_version += 1
        if status != KNOWN:
            chunk = MemChunk(LEVEL1, "", "", 0, self._chunk_version, self.counter.name)
        else:
            packed = render_user_profile(self.store, user_id, self.l1_max_tokens, self.counter)
            chunk = MemChunk(LEVEL1, user_id, packed.text, packed.token_count, self._chunk_version,
                             self.counter.name)
            self.store.touch_user(user_id, now)
        t["render"] = (time.perf_counter() - t0) * 1e3
        return chunk


def face_alone(face: FaceObservation | None, faces: list[tuple]) -> bool:
    """`face` is the only face in view that no known person has (every other one was embedded and
    matched someone): then it is the unknown person's own."""
    if face is None:
        return False
    others = [conf for obs, conf, _ in faces if obs is not face]
    return face.faces_in_frame <= len(faces) and all(max(conf.values(), default=0.0) >= 0.5 for conf in others)


def speaking_face(faces: list[tuple], voice_conf: dict[str, float] | None) -> tuple:
    """Of the faces in view, the one whose person the voice names (the one talking); else the first,
    the policy's choice. Returns (observation, per-user confidence, best distance), or no face."""
    if not faces:
        return None, None, math.nan
    if voice_conf and len(faces) > 1:
        speaker = max(voice_conf, key=voice_conf.get)
        if voice_conf[speaker] >= 0.5:
            for face in faces:
                if face[1].get(speaker, 0.0) >= 0.5:
                    return face
    return faces[0]

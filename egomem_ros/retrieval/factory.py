"""Building the identity pipeline from the validated config (shared by the CLI, replay and the nodes)."""
from __future__ import annotations

from ..config import EgomemConfig, IdentityConfig
from ..memchunk import make_token_counter
from ..store.models import MemoryRepository
from .face import FaceEngine, make_face_backend
from .poller import IdentityPoller
from .voice import VoiceEngine, make_voice_backend


def make_face_engine(cfg: IdentityConfig) -> FaceEngine:
    f = cfg.face
    return FaceEngine(make_face_backend(f.backend, upsample=f.upsample), policy=f.multi_face_policy,
                      max_side=f.max_image_side, threshold=f.threshold)


def make_voice_engine(cfg: IdentityConfig) -> VoiceEngine:
    v = cfg.voice
    return VoiceEngine(make_voice_backend(v.backend), use_vad=v.use_vad, min_voiced_s=v.min_voiced_s)


def make_poller(store: MemoryRepository, cfg: EgomemConfig, *, face: bool = True, voice: bool = True) -> IdentityPoller:
    counter = make_token_counter(cfg.memchunk.tokenizer, cfg.memchunk.tokenizer_path)
    return IdentityPoller(store, make_face_engine(cfg.identity) if face else None,
                          make_voice_engine(cfg.identity) if voice else None, cfg.identity, counter,
                          l1_max_tokens=cfg.memchunk.l1_max_tokens)

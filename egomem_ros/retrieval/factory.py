"""Building the identity pipeline from the validated config (shared by the CLI, replay and the nodes)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import EgomemConfig, IdentityConfig
from ..memchunk import make_token_counter
from ..store.models import MemoryRepository
from .face import FaceEngine, ProcessFaceEngine, make_face_backend
from .level2 import Level2Service
from .poller import IdentityPoller
from .rerank import shared_reranker
from .text_retrieval import TextRetriever
from .voice import VoiceEngine, make_voice_backend


def make_face_engine(cfg: IdentityConfig, *, worker_process: bool | None = None) -> FaceEngine:
    """`worker_process` overrides the config (one-shot tools like `enroll` stay in-process)."""
    f = cfg.face
    if f.worker_process if worker_process is None else worker_process:
        return ProcessFaceEngine(f.backend, upsample=f.upsample, policy=f.multi_face_policy,
                                 max_side=f.max_image_side, threshold=f.threshold)
    return FaceEngine(make_face_backend(f.backend, upsample=f.upsample), policy=f.multi_face_policy,
                      max_side=f.max_image_side, threshold=f.threshold)


def make_voice_engine(cfg: IdentityConfig) -> VoiceEngine:
    import os

    import torch

    torch.set_num_threads(cfg.torch_threads or max(1, (os.cpu_count() or 2) - 1))
    v = cfg.voice
    return VoiceEngine(make_voice_backend(v.backend, v.model), use_vad=v.use_vad, min_voiced_s=v.min_voiced_s)


def load_cohort(path: str) -> np.ndarray | None:
    if not path:
        return None
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"voice cohort file not found: {p}")
    cohort = np.load(p)
    if cohort.ndim != 2 or not np.all(np.isfinite(cohort)):
        raise ValueError(f"{p}: cohort must be a finite N x dim array")
    return cohort.astype(np.float32)


def make_poller(store: MemoryRepository, cfg: EgomemConfig, *, face: bool = True, voice: bool = True,
                face_worker_process: bool | None = None) -> IdentityPoller:
    """`face_worker_process` overrides the config (False: keys and galleries only, no polling). What can
    fail on a bad config (the cohort file, the tokenizer) is read before any worker process starts, and a
    face worker is stopped if what follows fails: none is left for the interpreter's exit to trip over."""
    counter = make_token_counter(cfg.memchunk.tokenizer, cfg.memchunk.tokenizer_path)
    cohort = load_cohort(cfg.identity.voice.cohort_path)
    face_engine = make_face_engine(cfg.identity, worker_process=face_worker_process) if face else None
    try:
        return IdentityPoller(store, face_engine, make_voice_engine(cfg.identity) if voice else None, cfg.identity,
                              counter, l1_max_tokens=cfg.memchunk.l1_max_tokens, cohort=cohort)
    except BaseException:
        if face_engine is not None and hasattr(face_engine, "close"):
            face_engine.close()
        raise


def make_level2(store: MemoryRepository, cfg: EgomemConfig) -> Level2Service:
    """`<retr>` answering over `store` with the configured rerank backend and MemChunk budget."""
    r = cfg.retrieval
    reranker = shared_reranker(r.rerank_backend, r.bge_model, r.rerank_precision)
    counter = make_token_counter(cfg.memchunk.tokenizer, cfg.memchunk.tokenizer_path)
    return Level2Service(TextRetriever(store, reranker, hop_limit=r.hop_limit), counter,
                         max_tokens=cfg.memchunk.l2_max_tokens, default_k=r.top_k)

"""The CPU proof that the mechanism works: a tiny random moshi LM learns to answer from its L1 chunk.

Held-out profiles (names, cities, jobs... recombined: no held-out profile was seen in training) ask
about themselves; the answer's fact is in the Level-1 chunk and nowhere in the dialog. The whole
pipeline runs: template transcripts -> streams (Mimi tokens of a random tiny Mimi) -> L1 masks ->
`DialogTrainer` -> `fact_accuracy` with the chunk, blanked and swapped. Used by
`test/test_finetune_proof.py` and `bench/bench_finetune_proof.py`.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ...dialog import moshi_checkpoint as mc
from ...dialog.pinned_memory import RegionLayout
from ...memchunk import ApproxTokenCounter
from ..text_bench import NAMES
from .chunks import ChunkTexts
from .dataset import SampleSet
from .evaluate import fact_accuracy
from .loss import LossWeights
from .streams import StreamConfig, make_streams, word_tones_tts
from .trainer import DialogTrainer, TrainConfig
from .transcripts import CITIES, HOBBIES, JOBS, make_transcripts


@dataclass
class ProofConfig:
    train_profiles: int = 1500  # about one dialog per profile: little to memorise
    train_dialogs: int = 1500
    test_profiles: int = 30
    test_dialogs: int = 80
    steps: int = 1200
    batch_size: int = 16
    lr: float = 1e-3
    dim: int = 128
    layers: int = 4
    l1_steps: int = 88   # the whole template profile fits (at most 82 tokens)
    espeak: bool = False   # real espeak-ng speech instead of word tones (slower)
    seed: int = 0


def run_proof(workdir: Path, cfg: ProofConfig | None = None, progress=None) -> dict[str, Any]:
    workdir, cfg = Path(workdir), cfg or ProofConfig()
    t0 = time.perf_counter()
    common = dict(n_level2=0, connected=(0, 0), turns=(1, 1), self_question_rate=1.0)
    train = make_transcripts(n_profiles=cfg.train_profiles, n_level1=cfg.train_dialogs, seed=cfg.seed * 2 + 1, **common)
    test = make_transcripts(n_profiles=cfg.test_profiles, n_level1=cfg.test_dialogs, seed=cfg.seed * 2 + 2, **common)
    layout = RegionLayout(cfg.l1_steps, 16)
    # a tokenizer that knows this domain's words, as the real 32k one does
    corpus = [t.user + " " + t.robot for d in train.dialogs + test.dialogs for t in d.turns]
    for data in (train, test):
        texts = ChunkTexts(data, ApproxTokenCounter(), RegionLayout())
        corpus += [texts.level1(p.id) for p in data.profiles]
    corpus += [" ".join(words) for words in (NAMES, CITIES, JOBS, HOBBIES)] * 5
    lm_cfg = mc.lm_config(dim=cfg.dim, num_layers=cfg.layers, num_heads=4, text_card=512, card=64, context=512,
                          depformer_dim=32)
    checkpoint = mc.write_tiny_checkpoint(workdir / "checkpoint", lm_cfg=lm_cfg, vocab_size=512, corpus=corpus,
                                          seed=cfg.seed)
    models = mc.load_models(checkpoint)
    stream_cfg = StreamConfig(max_steps=512, layout=layout, dialogs_per_stream=(1, 1))
    tts = None if cfg.espeak else word_tones_tts
    make_streams(train, models, workdir / "train", stream_cfg, seed=cfg.seed, tts_fn=tts)
    make_streams(test, models, workdir / "test", stream_cfg, seed=cfg.seed + 1, tts_fn=tts)
    t_data = time.perf_counter() - t0
    train_cfg = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, grad_accum=1, lr=cfg.lr, lr_min=cfg.lr / 10,
                            warmup_steps=20, weight_decay=0.0, tasks=("l1",), l1_steps=cfg.l1_steps, l2_steps=16,
                            loss=LossWeights(audio=0.1), save_every=max(1, cfg.steps // 4), log_every=20,
                            seed=cfg.seed)
    trainer = DialogTrainer(checkpoint, [workdir / "train"], workdir / "run", train_cfg)
    t1 = time.perf_counter()
    last = trainer.train(progress=progress)
    t_train = time.perf_counter() - t1
    held_out = fact_accuracy(trainer.lm, SampleSet([workdir / "test"], ("l1",)), trainer.chunks, layout)
    return {"config": asdict(cfg), "parameters_m": sum(p.numel() for p in trainer.lm.parameters()) / 1e6,
            "train_samples": len(trainer.samples), "final_loss": last.get("loss"), "data_seconds": t_data,
            "train_seconds": t_train, "held_out": held_out}

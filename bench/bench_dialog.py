"""Dialog runtime benchmark: pinned MemChunk overhead, chunk-switch latency, steady-state memory.

Random-weight moshi LMs (real moshi code, real 3000-step context and 17-channel layout) at chosen sizes.
All configurations of one size are measured side by side in one stream: blocks of steps rotate through
no chunk / L1 / L1+L2, so CPU frequency drift hits all three alike. On CUDA moshi captures the step in
a CUDA graph and the pinned step is graph-safe (always attended, inactive regions masked in place), so
stock moshi ("none", the layers detached from the bank) needs a session of its own: `--rounds` stock
sessions alternate with "masked" (the runtime with no chunk) / L1 / L1+L2 sessions.

On an H200 the first CUDA graph capture of a process gave a faster replay than any later one (7B step
14.4 vs 16.6 ms), so the first timed session (`--first-session`, before any other capture) is reported
on its own: run once with `--first-session none` and once with `L1+L2` to compare that regime, the one a
robot's single long dialog runs in. `--check-graph` (run last) checks on a tiny model that the graphed
pinned step gives the eager step's greedy tokens across a chunk switch, and the graphed prefill the
eager one's keys.

    python bench/bench_dialog.py                      # tiny (~8M) and ~40M on CPU
    python bench/bench_dialog.py --sizes 7b --device cuda --dtype bf16 --check-graph  # full-size moshi, GPU
    python bench/bench_dialog.py --memory-steps 20000 # steady-state RSS over a long stream
    python bench/bench_dialog.py --sizes 7b --device cuda --engine-steps 200 [--eager-prefill]  # Mimi + LM step
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_TORCH_COMPILE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from moshi.models import loaders  # noqa: E402
from moshi.models.lm import LMGen  # noqa: E402
from tqdm import tqdm  # noqa: E402

from egomem_ros.dialog import moshi_checkpoint as mc  # noqa: E402
from egomem_ros.dialog.pinned_memory import MemoryBank, RegionLayout, cuda_graph_of  # noqa: E402

SIZES = {  # name: LM kwargs overrides of moshi's 7B config
    "8m": dict(dim=192, num_layers=4, num_heads=4, text_card=2000, card=512, depformer_dim=96,
               depformer_layers=2),
    "40m": dict(dim=512, num_layers=8, num_heads=8, text_card=4000, card=512, depformer_dim=128,
                depformer_layers=1),
}


def build_lm(size: str, device: str, dtype: torch.dtype) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = dict(loaders._lm_kwargs)  # noqa: SLF001 - moshi keeps the 7B config private if size == "7b" else mc.lm_config(**SIZES[size])
    return loaders.get_moshi_lm(None, lm_kwargs=cfg, device=device, dtype=dtype)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def region_ids(lm, steps: int) -> list[int]:
    return torch.randint(4, lm.text_card, (steps,)).tolist()  # a full region: the worst case


# (joint_softmax, fused_attention) of the MemoryBank: one softmax over both key sets, or one attention per
# set merged by log-sum-exp with the CPU flash kernel or plain math (on CUDA both split variants are math)
ATTENTION_VARIANTS = {"joint": (True, True), "split": (False, True), "split-math": (False, False)}
CPU_CONFIGS = {"none": (False, False), "L1": (True, False), "L1+L2": (True, True)}
# CUDA: the pinned step is graph-safe (always attended, inactive regions masked), so "masked" is the
# runtime with no chunk, and stock moshi ("none") is measured in sessions of its own (`--rounds`).
CUDA_CONFIGS = {"masked": (False, False), "L1": (True, False), "L1+L2": (True, True)}
CONFIG_REGIONS = {"none": (False, False), **CUDA_CONFIGS}


def check_finite(lm) -> None:
    """Random weights at this size and dtype must give finite logits, or sampling would fail mid-run."""
    tokens = torch.randint(0, lm.card, (1, lm.num_codebooks, 4), device=lm.device)
    with torch.no_grad():
        logits = lm.forward_text(tokens)[1]
    if not torch.isfinite(logits).all():
        raise SystemExit("random weights give non-finite logits at this size/dtype: nothing to time")


def measure_steps(lm, bank: MemoryBank | None, device: str, blocks: int, block_steps: int, warmup: int,
                  configs: dict[str, tuple[bool, bool]]) -> dict[str, list[float]]:
    """Seconds per step of every block, per configuration, over interleaved blocks of one continuous
    stream (`bank` None: no region switching). A block's time is its steps' wall time over the block."""
    times: dict[str, list[float]] = {name: [] for name in configs}
    gen = LMGen(lm, use_sampling=True)
    user = torch.randint(0, lm.card, (1, 8, 1), device=device)
    with gen.streaming(1):
        for _ in tqdm(range(warmup), desc="warm-up (ring fill)", leave=False):
            gen.step(user)
        for _ in tqdm(range(blocks), desc="step blocks", leave=False):
            for name, (l1, l2) in configs.items():
                if bank is not None:
                    bank.set_active(1, l1)
                    bank.set_active(2, l2)
                sync(device)
                start = time.perf_counter()
                for _ in range(block_steps):
                    gen.step(user)
                sync(device)
                times[name].append((time.perf_counter() - start) / block_steps)
    return times


def check_cuda_graph(device: str, steps: int = 300) -> dict[str, float]:
    """The CUDA-graphed pinned step (graph-safe bank, joint softmax) against the eager one (span mode,
    split attention), greedy, with a chunk switch half-way: equal tokens show the graph reads every
    in-place region and mask update."""
    from moshi.utils.compile import no_cuda_graph

    lm = build_lm("8m", device, torch.float32)
    ids_a, ids_b = region_ids(lm, 200), region_ids(lm, 200)
    user = torch.randint(0, lm.card, (steps, 1, 8, 1), device=device)

    def run(graph: bool, switch: bool) -> torch.Tensor:
        bank = MemoryBank(lm, RegionLayout(), graph_safe=graph, joint_softmax=graph)  # vs split, eager
        bank.graph_prefill = graph
        bank.write(1, ids_a)
        gen, out = LMGen(lm, use_sampling=False), []
        with gen.streaming(1), (contextlib.nullcontext() if graph else no_cuda_graph()):
            for t in range(steps):
                if switch and t == steps // 2:
                    bank.write(1, ids_b)
                tokens = gen.step(user[t])
                out.append(tokens.flatten() if tokens is not None else torch.full((lm.dep_q + 1,), -9, device=device))
        return torch.stack(out)

    graphed, eager, unswitched = run(True, True), run(False, True), run(False, False)
    bank = MemoryBank(lm, RegionLayout())  # the update as a CUDA graph: capture on a, replay on b, a
    bank.graph_prefill = True
    for ids in (ids_a, ids_b, ids_a):
        bank.write(1, ids)
    replayed = bank.keys.clone()
    bank.graph_prefill = False
    bank.write(1, ids_a)
    half = steps // 2
    return {"steps": steps, "graph_vs_eager_equal_steps": float((graphed == eager).all(1).float().mean()),
            "prefill_graph_vs_eager_max_abs": float((replayed - bank.keys).abs().max()),
            "switch_changes_tokens_after": float((eager[half:] != unswitched[half:]).any(1).float().mean()),
            "equal_before_switch": float((eager[:half] == unswitched[:half]).all(1).float().mean())}


def measure_switch(lm, bank: MemoryBank, device: str, repeats: int) -> dict[str, float]:
    """The switch as the runtime does it (CUDA: the graphed prefill unless `bank.graph_prefill` is off),
    the eager switch too where that differs, and a bare forward over the same tokens, side by side."""
    out: dict[str, float] = {}
    modes = {"switch": bank.graph_prefill, **({"eager_switch": False} if bank.graph_prefill else {})}
    for level, steps in ((1, bank.layout.l1_steps), (2, bank.layout.l2_steps)):
        ids = region_ids(lm, steps)
        tokens = bank.region_tokens(level, ids)
        times: dict[str, list[float]] = {name: [] for name in [*modes, "forward"]}
        for _ in range(repeats):
            for name, graphed in modes.items():
                bank.graph_prefill = graphed
                sync(device)
                t0 = time.perf_counter()
                bank.write(level, ids)
                sync(device)
                times[name].append(time.perf_counter() - t0)
            sync(device)
            t0 = time.perf_counter()
            with torch.no_grad():
                lm.forward_text(tokens)
            sync(device)
            times["forward"].append(time.perf_counter() - t0)
        bank.graph_prefill = modes["switch"]
        out.update({f"{name}_L{level}_{steps}_ms": statistics.median(t) * 1e3 for name, t in times.items()})
        if device.startswith("cuda"):  # one whole forward as a CUDA graph too: the graphed reference
            with torch.no_grad():
                graph, replays = cuda_graph_of(lambda tokens=tokens: lm.forward_text(tokens)), []
            for _ in range(repeats):
                sync(device)
                t0 = time.perf_counter()
                graph.replay()
                sync(device)
                replays.append(time.perf_counter() - t0)
            out[f"graph_forward_L{level}_{steps}_ms"] = statistics.median(replays) * 1e3
        if device == "cpu" and repeats:  # the step-by-step prefill the switch replaces, once
            t0 = time.perf_counter()
            bank.write(level, ids, method="stepwise")
            out[f"stepwise_L{level}_{steps}_ms"] = (time.perf_counter() - t0) * 1e3
    return out


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def build_engine(device: str, size: str | None = None, dtype: torch.dtype = torch.float32):
    """A `DialogEngine` with both chunks set, and a noise frame. The tiny checkpoint's LM and Mimi, or
    (`size`) a random LM of that size with a Mimi of its codebook size (7b: moshi's full-size Mimi) swapped
    in; the engine keeps the tiny checkpoint's tokenizer."""
    from dataclasses import replace

    from egomem_ros.dialog.engine import FRAME_SAMPLES, DialogEngine

    with tempfile.TemporaryDirectory() as tmp:
        models = mc.load_models(mc.write_tiny_checkpoint(Path(tmp)), device=device)
    if size is not None:
        lm = build_lm(size, device, dtype)
        mimi_cfg = loaders._mimi_config if size == "7b" else mc.mimi_config(bins=lm.card)  # noqa: SLF001 - moshi keeps it private
        mimi = loaders.get_mimi(None, mimi_cfg, device=device)
        mimi.set_num_codebooks(lm.dep_q)
        models = replace(models, lm=lm, mimi=mimi)
    engine = DialogEngine(models)
    engine.set_memchunk(1, "User: Alice\nFacts:\n- Alice is a nurse")
    engine.set_memchunk(2, "Related memory:\n- Carol likes swimming")
    return engine, (0.05 * np.random.default_rng(0).standard_normal(FRAME_SAMPLES)).astype(np.float32)


def measure_memory(steps: int, device: str) -> dict[str, object]:
    """Full engine (Mimi + LM + both chunks) on the tiny model; RSS sampled every 1000 steps."""
    engine, frame = build_engine(device)
    samples = []
    start = time.perf_counter()
    for i in tqdm(range(steps), desc="memory run", leave=False):
        engine.step(frame)
        if i % 1000 == 999:
            samples.append(round(rss_mb(), 1))
        if i == 4999:  # chunk switches during the run must not leak either
            engine.set_memchunk(1, "User: Bob\nFacts:\n- Bob is a doctor")
    return {"steps": steps, "rss_mb_every_1000": samples, "growth_after_3000_steps_mb":
            round(samples[-1] - samples[min(2, len(samples) - 1)], 1),
            "engine_step_ms": round((time.perf_counter() - start) / steps * 1e3, 2)}


def measure_engine(size: str, device: str, dtype: torch.dtype, steps: int, eager_prefill: bool) -> dict[str, float]:
    """The whole `DialogEngine` step (Mimi encode + LM + Mimi decode, both chunks), before and after an L1
    switch half-way: Mimi's own CUDA graphs are in this process too, which is how a robot runs."""
    engine, frame = build_engine(device, size, dtype)
    if eager_prefill:
        engine.bank.graph_prefill = False

    def timed(n: int) -> float:
        sync(device)
        start = time.perf_counter()
        for _ in range(n):
            engine.step(frame)
        sync(device)
        return (time.perf_counter() - start) / n * 1e3

    timed(max(1, steps // 4))                      # warm-up: graphs captured, ring filling
    before = timed(steps)
    engine.set_memchunk(1, "User: Bob\nFacts:\n- Bob is a doctor")
    switch = timed(1)                              # the step that applies the new chunk
    return {"engine_step_ms_before_switch": before, "engine_switch_step_ms": switch,
            "engine_step_ms_after_switch": timed(steps), "graph_prefill": float(engine.bank.graph_prefill)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="8m,40m", help="comma list of 8m, 40m, 7b")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default=None)
    ap.add_argument("--blocks", type=int, default=15)
    ap.add_argument("--block-steps", type=int, default=20)
    ap.add_argument("--switch-repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1,
                    help="CUDA: alternating stock / pinned sessions (medians over all their blocks)")
    ap.add_argument("--warmup", type=int, default=3100, help="steps before timing (3100 fills the ring)")
    ap.add_argument("--attention", help="comma list of " + ", ".join(ATTENTION_VARIANTS) + " timed side by "
                    "side (default: the runtime's, joint); the first gives the headline")
    ap.add_argument("--check-graph", action="store_true",
                    help="CUDA: graphed vs eager pinned step (greedy) and graphed vs eager region prefill")
    ap.add_argument("--first-session", choices=list(CONFIG_REGIONS), default="L1+L2",
                    help="CUDA: time this configuration first, before any other CUDA graph capture in the "
                    "process (first size only; see docs/dialog.md); run once per configuration to compare")
    ap.add_argument("--eager-prefill", action="store_true",
                    help="CUDA: the engine's switch without the CUDA-graph prefill (MemoryBank.graph_prefill)")
    ap.add_argument("--memory-steps", type=int, default=0, help="0 skips the memory run")
    ap.add_argument("--engine-steps", type=int, default=0,
                    help="time the whole DialogEngine step (first size; Mimi + LM) this many steps before and after "
                         "a switch, instead of the LM-only runs (--eager-prefill: without the CUDA-graph prefill)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype or ("bf16" if args.device != "cpu" else "fp32")]
    results: dict[str, object] = {"device": args.device, "dtype": str(dtype), "torch_threads": torch.get_num_threads()}
    variants = (args.attention or "joint").split(",")
    if args.engine_steps:  # its own process: the first CUDA graph captures are the engine's
        size = args.sizes.split(",")[0]
        results[f"engine_{size}"] = {k: round(v, 3) for k, v in measure_engine(
            size, args.device, dtype, args.engine_steps, args.eager_prefill).items()}
        print(json.dumps(results, indent=1))
        if args.out:
            args.out.write_text(json.dumps(results, indent=1))
        return
    for size in args.sizes.split(","):
        lm = build_lm(size, args.device, dtype)
        check_finite(lm)
        row: dict[str, float] = {"params_m": sum(p.numel() for p in lm.parameters()) / 1e6}
        run = dict(device=args.device, blocks=args.blocks, block_steps=args.block_steps, warmup=args.warmup)
        bank = MemoryBank(lm, RegionLayout(), graph_prefill=False)  # no capture before the first session
        bank.write(1, region_ids(lm, 512))
        bank.write(2, region_ids(lm, 256))
        blocks: dict[str, list[float]] = {}
        if args.device.startswith("cuda") and size == args.sizes.split(",")[0]:
            # nothing captured a CUDA graph in this process yet: the regime of a robot's one long dialog
            name = args.first_session
            with bank.stock_attention() if name == "none" else contextlib.nullcontext():
                got = measure_steps(lm, None if name == "none" else bank, configs={name: CONFIG_REGIONS[name]},
                                    **run)
            row[f"first_session_step_ms_{name}"] = statistics.median(got[name]) * 1e3
        for _ in range(args.rounds):  # CUDA: stock and pinned sessions alternate, so drift hits both
            if args.device.startswith("cuda"):
                with bank.stock_attention():
                    got = measure_steps(lm, None, configs={"none": (False, False)}, **run)
                    blocks.setdefault("none", []).extend(got["none"])
            for i, variant in enumerate(variants):  # the first is the runtime's default: the headline
                bank.joint_softmax, bank.fused_attention = ATTENTION_VARIANTS[variant]
                got = measure_steps(lm, bank, configs=CUDA_CONFIGS if bank.graph_safe else CPU_CONFIGS, **run)
                for k, v in got.items():
                    blocks.setdefault(k if i == 0 else f"{k}[{variant}]", []).extend(v)
        steps = {k: statistics.median(v) * 1e3 for k, v in blocks.items()}
        bank.joint_softmax, bank.fused_attention = ATTENTION_VARIANTS[variants[0]]
        row.update({f"step_ms_{k}": v for k, v in steps.items()})
        row.update({f"steps_per_s_{k}": 1e3 / v for k, v in steps.items()})
        for name in [k for k in steps if k.startswith("L1")]:  # against stock moshi of the same session
            variant = name[name.index("["):] if "[" in name else ""
            row[f"overhead_{name}_pct"] = 100 * (steps[name] / steps.get(f"none{variant}", steps["none"]) - 1)
        bank.graph_prefill = args.device.startswith("cuda")  # the runtime's switch: captured at the first one
        row.update(measure_switch(lm, bank, args.device, args.switch_repeats))
        if args.device.startswith("cuda"):
            row["gpu_peak_mem_gb"] = torch.cuda.max_memory_allocated() / 2**30
        results[size] = {k: round(v, 3) for k, v in row.items()}
        print(size, json.dumps(results[size]), flush=True)
        if args.out:  # after every size: a run cut short keeps what it measured
            args.out.write_text(json.dumps(results, indent=1))
        del lm, bank
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
    if args.check_graph and args.device.startswith("cuda"):  # last: its captures would end the first session
        results["cuda_graph_check"] = check_cuda_graph(args.device)
        print("cuda_graph_check", json.dumps(results["cuda_graph_check"]), flush=True)
    if args.memory_steps:
        results["memory"] = measure_memory(args.memory_steps, args.device)
        print("memory", json.dumps(results["memory"]), flush=True)
    text = json.dumps(results, indent=1)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

"""Does the model answer from its MemChunk? Fact accuracy on held-out streams (paper §5.3, simplified).

For every turn whose answer holds a fact only the Level-1 chunk supplies (`fact_steps`, and the fact
is in the chunk as cut to its region: turns whose fact was cut off are counted apart), the model
reads the stream up to the fact and its greedy text tokens at the fact's steps are compared with the
truth. Teacher forcing makes "every fact token is the argmax" the same as "greedy decoding from the
true prefix writes the fact". Three conditions:

- `chunk`: the dialog's own user profile in L1 (what the runtime pushes);
- `blank`: an empty L1 (no user recognised): the fact is now nowhere in the model's input;
- `swap`: another user's profile, for turns whose question that user was also asked: the first fact
  token should now be the other user's (a swapped chunk swaps the answer).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from ...dialog.pinned_memory import RegionLayout
from .dataset import ChunkEncoder, SampleSet
from .masks import L1
from .region_forward import batch_regions, forward_with_regions


@dataclass(frozen=True)
class FactTurn:
    sample: int            # index of the dialog's L1 sample in the SampleSet
    question: str
    fact: tuple[int, int]  # steps of the fact tokens
    tokens: tuple[int, ...]


def fact_turns(samples: SampleSet) -> tuple[list[FactTurn], int]:
    """Turns whose fact the dialog's L1 chunk holds, and how many more have a fact the chunk lost
    (a profile longer than the region loses its last lines: no model can answer those from memory)."""
    out, lost = [], 0
    for i, s in enumerate(samples.samples):
        if s.kind != L1:
            continue
        stream = samples.streams[s.stream]
        dialog = next(d for d in stream.meta["dialogs"] if d["dialog"] == s.dialog)
        for turn in dialog["turns"]:
            if turn.get("fact_steps") and turn["fact_text"] not in s.l1:
                lost += 1
            elif turn.get("fact_steps"):
                a, b = turn["fact_steps"]
                out.append(FactTurn(i, turn["user_text"], (a, b), tuple(int(x) for x in stream.codes[0, a:b])))
    return out, lost


@torch.no_grad()
def _predictions(lm, samples: SampleSet, chunks: ChunkEncoder, layout: RegionLayout, index: int,
                 l1_text: str) -> torch.Tensor:
    batch = samples.batch([index], chunks, l1_override=[l1_text])
    regions = batch_regions(lm, layout, batch.l1_ids, batch.l2_ids).to(lm.device)
    out = forward_with_regions(lm, batch.codes.to(lm.device), regions, layout)
    return out.text_logits[0, 0].argmax(-1).cpu()


def fact_accuracy(lm, samples: SampleSet, chunks: ChunkEncoder, layout: RegionLayout,
                  progress: Callable[[Iterable], Iterable] | None = None) -> dict[str, float | int]:
    turns, lost = fact_turns(samples)
    if not turns:
        raise ValueError("no turn with a MemChunk-only fact (fact_steps) in these streams")
    lm.eval()
    hits = {"chunk": 0, "blank": 0, "swap": 0, "swap_kept_own": 0}
    swaps = 0
    by_question: dict[str, list[FactTurn]] = {}
    for t in turns:
        by_question.setdefault(t.question, []).append(t)
    for t in progress(turns) if progress else turns:
        sample = samples.samples[t.sample]
        a, b = t.fact
        own = _predictions(lm, samples, chunks, layout, t.sample, sample.l1)
        hits["chunk"] += int(tuple(own[a:b].tolist()) == t.tokens)
        blank = _predictions(lm, samples, chunks, layout, t.sample, "")
        hits["blank"] += int(tuple(blank[a:b].tolist()) == t.tokens)
        partner = next((o for o in by_question[t.question]
                        if o.tokens[0] != t.tokens[0] and samples.samples[o.sample].l1 != sample.l1), None)
        if partner is not None:
            swaps += 1
            swapped = _predictions(lm, samples, chunks, layout, t.sample, samples.samples[partner.sample].l1)
            hits["swap"] += int(int(swapped[a]) == partner.tokens[0])
            hits["swap_kept_own"] += int(int(swapped[a]) == t.tokens[0])
    n = len(turns)
    return {"turns": n, "turns_fact_not_in_chunk": lost, "accuracy_with_chunk": hits["chunk"] / n,
            "accuracy_blank_chunk": hits["blank"] / n,
            "swap_turns": swaps, "swap_follows_chunk": hits["swap"] / swaps if swaps else 0.0,
            "swap_keeps_old_answer": hits["swap_kept_own"] / swaps if swaps else 0.0}

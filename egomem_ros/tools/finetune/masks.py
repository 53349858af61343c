"""Supervision masks (paper §4.1, Figure 4): one token stream becomes many training samples.

Step spans are half-open `[start, end)` over the dialog part of a stream (step 0 = the first step after
the MemChunk slots). A stream's metadata (`streams.StreamBuilder`) gives, per dialog, its span, user,
Level-1 text and turns; per turn, where the user's audio starts, the `<retr>` query words
`[q_start, q_end)`, where the response text starts and where the turn ends, plus the Level-2 text held
before the turn (`l2_before`) and the one its ground-truth query retrieves (`l2`).

- **L1**: per dialog, its user's profile in L1, L2 empty; text and speak tokens supervised only inside
  the dialog. N dialogs -> N samples.
- **L2**, per turn of a Level-2 dialog, two samples:
  - query words: L1 + the previous turn's L2, supervised from the turn's audio start to the end of the
    query words (to the response's first text step when the turn has no query: the model learns not to ask);
  - response: L2 refilled with the retrieved text, supervised from the end of the query words to the
    end of the turn.
- **Trigger**: per-step labels 0/1/2/3 from the dialog spans.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...memory.sessions import labels_from_sessions

L1, L2_QUERY, L2_RESPONSE = "l1", "l2_query", "l2_response"
TASKS = (L1, L2_QUERY, L2_RESPONSE)


@dataclass(frozen=True)
class Sample:
    stream: str
    kind: str
    dialog: str
    turn: int | None
    l1: str
    l2: str
    spans: tuple[tuple[int, int], ...]


def query_end(turn: dict[str, Any]) -> int:
    """Where the query-words sample stops and the response sample starts."""
    return turn["query"][1] if turn["has_query"] else turn["text_start"]


def level1_samples(stream_id: str, meta: dict[str, Any]) -> list[Sample]:
    return [Sample(stream_id, L1, d["dialog"], None, d["l1"], "", ((d["start"], d["end"]),))
            for d in meta["dialogs"]]


def level2_samples(stream_id: str, meta: dict[str, Any]) -> list[Sample]:
    out = []
    for d in meta["dialogs"]:
        if d["level"] != 2:
            continue
        for i, turn in enumerate(d["turns"]):
            q_end = query_end(turn)
            out.append(Sample(stream_id, L2_QUERY, d["dialog"], i, d["l1"], turn["l2_before"],
                              ((turn["audio_start"], q_end),)))
            out.append(Sample(stream_id, L2_RESPONSE, d["dialog"], i, d["l1"], turn["l2"], ((q_end, turn["end"]),)))
    return out


def samples_for(stream_id: str, meta: dict[str, Any], tasks: Iterable[str] = TASKS) -> list[Sample]:
    tasks = set(tasks)
    unknown = tasks - set(TASKS)
    if unknown:
        raise ValueError(f"unknown task(s) {sorted(unknown)}; choose from {TASKS}")
    samples = level1_samples(stream_id, meta) if L1 in tasks else []
    samples += [s for s in level2_samples(stream_id, meta) if s.kind in tasks]
    return samples


def mask_array(spans: Sequence[tuple[int, int]], steps: int) -> np.ndarray:
    """Boolean [steps] supervision mask: True inside the spans."""
    mask = np.zeros(steps, dtype=bool)
    for start, end in spans:
        mask[max(0, start):max(0, min(end, steps))] = True
    return mask


def trigger_labels(meta: dict[str, Any], steps: int) -> np.ndarray:
    """Episodic-trigger labels: 1 at a dialog's first step, 3 at its last, 2 between, 0 elsewhere."""
    return labels_from_sessions([(d["start"], d["end"] - 1) for d in meta["dialogs"]], steps)

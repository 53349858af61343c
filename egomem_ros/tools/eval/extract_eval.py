"""`egomem eval extract FILE.json`: precision and recall of the memory extractor per kind.

Format: a JSON list of dialogs,

    [{"transcript": [{"speaker": "user", "text": "..."}, {"speaker": "robot", "text": "..."}],
      "expected": {"name": "Emily", "facts": ["works as a nurse"], "preferences": ["loves tennis"],
                   "events": [], "relations": [{"name": "Sarah", "relation": "colleague"}]}}]

Matching (documented so numbers are comparable): both sides are lower-cased, articles and punctuation
removed, words Snowball-stemmed, and simple paraphrases mapped to one word (likes/loves/enjoys → like;
hates/dislikes/cannot stand/does not like → dislike; "works as" → "is"). Two items match when their
word sets overlap with Jaccard ≥ 0.6, one-to-one. Relations match on name (case-insensitive) and the
canonical relation (mum = mother). Names match case-insensitively.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter

from ...memory.extraction import ExtractedItems, Extraction, Turn
from ...memory.update_agent import normalise
from ...relations import relation_lexicon
from ...retrieval.rerank import _stemmer

KINDS = ("name", "facts", "preferences", "events", "relations")
_PARAPHRASE = [(r"\b(really |also )?(likes|loves|enjoys|adores|prefers)\b", "like"),
               (r"\b(hates|dislikes|cannot stand|can t stand|does not like|doesn t like)\b", "dislike"),
               (r"\bworks as\b", "is")]


class Expected(ExtractedItems):
    """What a dialog should yield: the extractor's own schema (its summary is not scored)."""

    model_config = ConfigDict(extra="forbid")


class Dialog(BaseModel):
    model_config = ConfigDict(extra="forbid")
    transcript: list[Turn]
    expected: Expected
    note: str = ""


def load_dialogs(path: str | Path) -> list[Dialog]:
    return TypeAdapter(list[Dialog]).validate_json(Path(path).read_text(encoding="utf-8"))


def words(text: str) -> frozenset[str]:
    t = normalise(text)
    for pattern, repl in _PARAPHRASE:
        t = re.sub(pattern, repl, t)
    return frozenset(_stemmer().stemWords(t.split()))


def _match(got: list[frozenset], want: list[frozenset]) -> int:
    used, n = set(), 0
    for w in want:
        best = max(((len(w & g) / len(w | g), j) for j, g in enumerate(got) if j not in used and (w | g)),
                   default=(0.0, -1))
        if best[0] >= 0.6:
            used.add(best[1])
            n += 1
    return n


def compare(ex: Extraction, exp: Expected) -> dict[str, tuple[int, int, int]]:
    """kind -> (matched, extracted, expected)."""
    lex = relation_lexicon()
    out: dict[str, tuple[int, int, int]] = {}
    got_name = [ex.name.lower()] if ex.name else []
    want_name = [exp.name.lower()] if exp.name else []
    out["name"] = (int(bool(got_name) and got_name == want_name), len(got_name), len(want_name))
    for kind in ("facts", "preferences", "events"):
        g, w = [words(x) for x in getattr(ex, kind)], [words(x) for x in getattr(exp, kind)]
        out[kind] = (_match(g, w), len(g), len(w))
    rel = lambda r: (r.name.lower(), lex.canonical(r.relation))  # noqa: E731
    g, w = [rel(r) for r in ex.relations], [rel(r) for r in exp.relations]
    out["relations"] = (sum(min(g.count(x), w.count(x)) for x in set(w)), len(g), len(w))
    return out


def evaluate_extraction(path: str | Path, extractor, *, progress=None) -> dict[str, Any]:
    dialogs = load_dialogs(path)
    totals = {k: [0, 0, 0] for k in KINDS}
    t0 = time.perf_counter()
    for d in progress(dialogs) if progress else dialogs:
        for kind, (m, g, w) in compare(extractor.extract(d.transcript), d.expected).items():
            totals[kind][0] += m
            totals[kind][1] += g
            totals[kind][2] += w
    result: dict[str, Any] = {"dialogs": len(dialogs), "extractor": extractor.name}
    all_m = all_g = all_w = 0
    for kind, (m, g, w) in totals.items():
        result[kind] = {"precision": m / g if g else None, "recall": m / w if w else None,
                        "extracted": g, "expected": w}
        all_m, all_g, all_w = all_m + m, all_g + g, all_w + w
    result["overall"] = {"precision": all_m / all_g if all_g else None, "recall": all_m / all_w if all_w else None}
    result["ms_per_dialog"] = (time.perf_counter() - t0) * 1e3 / max(1, len(dialogs))
    return result

"""Memory update agent (paper §3.1.2): reconcile a known user's profile with newly extracted items.

Operations: ADD a new item; UPDATE an existing one (it is superseded, keeping `invalid_at` and
`superseded_by`: history is never lost); INVALIDATE one that is no longer true; NOOP.
`RuleUpdateAgent` is the offline default; `LLMUpdateAgent` asks an OpenAI-compatible model, and an
answer that touches items outside this user's profile is refused as a whole.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..store.models import Fact
from .extraction import Extraction, content_stems, stems, supported
from .llm import ChatClient, LLMError

log = logging.getLogger(__name__)


class MemoryOp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    op: Literal["ADD", "UPDATE", "INVALIDATE", "NOOP"]
    kind: Literal["fact", "preference", "event", "summary"] = "fact"
    text: str = ""
    target: str | None = Field(None, description="id of the existing item for UPDATE / INVALIDATE")


class OpList(BaseModel):
    """The update agent's answer: `operations` must be there (an empty list is a valid "nothing to do"),
    and nothing else may be."""
    model_config = ConfigDict(extra="forbid")
    operations: list[MemoryOp]


def extracted_items(ex: Extraction) -> list[tuple[str, str]]:
    return ([("fact", t) for t in ex.facts] + [("preference", t) for t in ex.preferences]
            + [("event", t) for t in ex.events])


_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalise(text: str) -> str:
    """Lower case, no articles or punctuation, single spaces: the key for duplicates and matching."""
    text = re.sub(r"[^\w\s]", " ", text.lower())
    return re.sub(r"\s+", " ", _ARTICLES.sub(" ", text)).strip()


_SLOTS = [r"^works (as|at|for|in)\b", r"^lives (in|near|at)\b", r"^is from\b", r"^is an? \w+$", r"^birthday is\b"]
_PREF_VERB = re.compile(r"^(likes|loves|enjoys|adores|prefers|hates|dislikes|cannot stand|does not like) ")


def slot(text: str) -> str | None:
    """Facts that can hold one value at a time: job, home, origin, birthday."""
    t = normalise(text)
    for pattern in _SLOTS:
        if re.search(pattern, t):
            return pattern
    return None


def preference_object(text: str) -> str | None:
    m = _PREF_VERB.match(normalise(text))
    return normalise(text)[m.end():] if m else None


SAME_THING = 0.6   # content-word overlap (Jaccard) above which two items say the same thing


def same_thing(valid: Sequence[Fact], kind: str, text: str) -> Fact | None:
    """The existing item of the same kind that the new one says again ("adopted a beagle" and "adopted a
    beagle named Biscuit"): the new one merges into it, superseding it, so history is kept and Level-1
    counts it as mentioned once more. Different days of an event differ in their dates' words."""
    new = content_stems(text)
    best, score = None, SAME_THING
    for f in valid:
        if f.kind != kind:
            continue
        old = content_stems(f.text)
        if len(new & old) < 2:   # one shared word ("loves tennis", "loves tenerife") is not the same thing
            continue
        nested = new <= old or old <= new   # one says more of the other
        overlap = 1.0 if nested else len(new & old) / len(new | old)
        if overlap >= score:
            best, score = f, overlap
    return best


class RuleUpdateAgent:
    name = "rules"

    def decide(self, existing: Sequence[Fact], ex: Extraction) -> list[MemoryOp]:
        valid = [f for f in existing if f.valid]
        known = {normalise(f.text) for f in valid}
        ops: list[MemoryOp] = []
        for kind, text in extracted_items(ex):
            if normalise(text) in known:
                ops.append(MemoryOp(op="NOOP", kind=kind, text=text))
                continue
            target = None
            if kind == "fact" and slot(text):
                target = next((f for f in valid if f.kind == "fact" and slot(f.text) == slot(text)), None)
            elif kind == "preference" and preference_object(text):
                obj = preference_object(text)
                target = next((f for f in valid if f.kind == "preference" and preference_object(f.text) == obj), None)
            if target is None:
                target = same_thing(valid, kind, text)
                if target is not None and content_stems(text) <= content_stems(target.text):
                    ops.append(MemoryOp(op="NOOP", kind=kind, text=text))   # said again, nothing new
                    continue
            if target is not None:
                ops.append(MemoryOp(op="UPDATE", kind=kind, text=text, target=target.id))
                valid.remove(target)   # replaced once: another new item of the same slot is added beside it
            else:
                ops.append(MemoryOp(op="ADD", kind=kind, text=text))
            known.add(normalise(text))
        return ops


UPDATE_SYSTEM = """You maintain the long-term profile of ONE user of a home robot. You get the user's
current profile items (each with an id) and items newly extracted from a conversation. Decide, for each
new item, one operation: "ADD" (new information), "UPDATE" (it replaces an existing item that is no
longer true: give that item's id as "target" and the new text), "INVALIDATE" (an existing item is no
longer true and nothing replaces it: give its id as "target"), or "NOOP" (already known). Never target
an id that is not in the profile. Return {"operations": [{"op", "kind", "text", "target"}]} with kind
one of fact, preference, event, summary."""


class LLMUpdateAgent:
    name = "llm"

    def __init__(self, client: ChatClient):
        self.client = client

    def decide(self, existing: Sequence[Fact], ex: Extraction) -> list[MemoryOp]:
        profile = [{"id": f.id, "kind": f.kind, "text": f.text} for f in existing if f.valid]
        new = [{"kind": k, "text": t} for k, t in extracted_items(ex)]
        answer = self.client.ask_json(UPDATE_SYSTEM, json.dumps({"profile": profile, "new_items": new}), OpList)
        ids = {p["id"] for p in profile}
        stray = [op.target for op in answer.operations if op.op in ("UPDATE", "INVALIDATE") and op.target not in ids]
        if stray:
            raise LLMError(f"update agent targeted items outside this user's profile: {stray}")
        said = stems(" ".join(t for _, t in extracted_items(ex)))
        ops = [op for op in answer.operations if op.op not in ("ADD", "UPDATE") or supported(op.text, said)]
        for op in answer.operations:
            if op not in ops:
                log.warning("update agent: %s of text no new item supports dropped: %r", op.op, op.text)
        return ops

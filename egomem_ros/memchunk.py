"""MemChunk text: token counting and whole-line packing shared by Level-1, Level-2, the dialog
runtime and fine-tuning data, so every place truncates the same way (never mid-token).
"""
from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .store.visits import visits
from .store.models import Episode, Fact, User

LEVEL1, LEVEL2 = 1, 2
log = logging.getLogger(__name__)


class TokenCounter(Protocol):
    name: str

    def count(self, text: str) -> int: ...


class ApproxTokenCounter:
    """Conservative stand-in for moshi's 32k sentencepiece when its model file is absent.

    Every punctuation mark counts 1 and every word ceil(len/4) (at least 1). On English text it
    over-counts sentencepiece by roughly 10-30%, so a chunk that fits here also fits the real tokenizer.
    """

    name = "approx-v1"
    _pieces = re.compile(r"\w+|[^\w\s]", re.UNICODE)

    def count(self, text: str) -> int:
        return sum(max(1, math.ceil(len(p) / 4)) if p[0].isalnum() or p[0] == "_" else 1
                   for p in self._pieces.findall(text))


class SentencePieceTokenCounter:
    """The dialog model's own tokenizer (moshi ships `tokenizer_spm_32k_3.model`)."""

    def __init__(self, model_path: str | Path, processor=None):
        """`processor`: the already loaded SentencePieceProcessor of `model_path`, if the caller has one."""
        if processor is None:
            import sentencepiece  # optional dependency, only for this counter

            processor = sentencepiece.SentencePieceProcessor(model_file=str(model_path))
        self._sp = processor
        self.name = f"sentencepiece:{Path(model_path).name}"

    def count(self, text: str) -> int:
        return len(self._sp.encode(text))


def make_token_counter(kind: str = "auto", path: str = "") -> TokenCounter:
    if kind == "sentencepiece" or (kind == "auto" and path and Path(path).is_file()):
        if not path or not Path(path).is_file():
            raise FileNotFoundError(f"sentencepiece tokenizer not found: {path!r}")
        return SentencePieceTokenCounter(path)
    return ApproxTokenCounter()


@dataclass(frozen=True)
class PackedText:
    text: str
    token_count: int
    dropped: int


def pack_lines(header: Sequence[str], items: Sequence[tuple[str, str]], max_tokens: int,
               counter: TokenCounter) -> PackedText:
    """Keep `header` lines, then items (section, line) in priority order while they fit.

    Items that do not fit are dropped whole; kept items are printed under their section titles in
    first-appearance order. Returns the text and its exact token count under `counter`.
    """
    kept: list[tuple[str, str]] = []
    dropped = 0

    def render(chosen: Iterable[tuple[str, str]]) -> str:
        lines = [h for h in header if h]
        sections: dict[str, list[str]] = {}
        for section, line in chosen:
            sections.setdefault(section, []).append(line)
        for section, body in sections.items():
            lines.append(f"{section}:" if section else "")
            lines.extend(f"- {one_line(b)}" for b in body)
        return "\n".join(line for line in lines if line)

    text = render(kept)
    if counter.count(text) > max_tokens:  # even the header is too long: cut it line by line
        header = list(header)
        while header and counter.count(render([])) > max_tokens:
            header.pop()
            dropped += 1
        text = render([])
    for item in items:
        candidate = render(kept + [item])
        if counter.count(candidate) <= max_tokens:
            kept.append(item)
            text = candidate
        else:
            dropped += 1
    return PackedText(text, counter.count(text), dropped)


def clean_text(text: str | bytes) -> str:
    """MemChunk text as valid UTF-8: invalid bytes and lone surrogates become U+FFFD, with a log line."""
    if isinstance(text, bytes):
        decoded = text.decode("utf-8", errors="replace")
        if "\ufffd" in decoded and b"\xef\xbf\xbd" not in text:
            log.warning("MemChunk text was not valid UTF-8; invalid bytes replaced")
        return decoded
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        log.warning("MemChunk text held unpaired surrogates; replaced")
        return text.encode("utf-8", errors="surrogatepass").decode("utf-8", errors="replace")


def one_line(text: str) -> str:
    """Stored text as one MemChunk line: what people said can never start a line of its own."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def truncate_lines(text: str, max_tokens: int, counter: TokenCounter) -> PackedText:
    """Fit already rendered text into `max_tokens` by dropping whole lines from the end.

    Chunks are rendered most important first, so the tail is what goes. The dialog runtime and the
    fine-tuning data both cut MemChunks here; `dropped` counts the lines removed.
    """
    lines = text.split("\n")
    dropped = 0
    while lines and counter.count("\n".join(lines)) > max_tokens:
        lines.pop()
        dropped += 1
    kept = "\n".join(lines)
    return PackedText(kept, counter.count(kept), dropped)


# what defines a person (job, home, family, health): first in Level-1, whatever its age
IDENTITY_WORDS = frozenset(
    "work works worked job nurse teacher engineer doctor retired student live lives moved home house flat "
    "apartment born married wife husband partner son daughter kids children child baby brother sister mother "
    "father mum mom dad parents grandson granddaughter grandchildren pregnant allergic diabetes diabetic "
    "vegetarian vegan surgery sick hospital named".split())
_SECTION = {"fact": "Facts", "preference": "Preferences", "event": "Events", "summary": "Recent conversations"}


def identity_defining(text: str) -> bool:
    return bool(set(re.findall(r"[a-z]+", text.lower())) & IDENTITY_WORDS)


def mentions(facts: Sequence[Fact]) -> dict[str, int]:
    """How often each valid item was said: 1 plus the versions it superseded (a repeat merges into the item)."""
    by_id = {f.id: f for f in facts}
    count = {f.id: 1 for f in facts if f.valid}
    for f in facts:
        seen, node = set(), f
        while not node.valid and node.superseded_by in by_id and node.id not in seen:
            seen.add(node.id)
            node = by_id[node.superseded_by]
        if node is not f and node.valid:
            count[node.id] = count.get(node.id, 1) + 1
    return count


def render_profile(user: User, facts: Sequence[Fact], episodes: Sequence[Episode],
                   relations: Sequence[tuple[str, str]], max_tokens: int,
                   counter: TokenCounter) -> PackedText:
    """Level-1 text for one user. `relations` are (relation, other person's name) pairs; `facts` may
    hold superseded versions too (they count as mentions, and are not shown).

    When everything does not fit the budget, the most useful items are kept, whole: what defines the
    person (job, home, family, health), the summaries of the last three visits (store/visits.py: two
    people taking turns make a session of every turn), the people they named, then the other items, most
    often mentioned and newest first.
    """
    header = [f"User: {one_line(user.name or 'unknown name')} (id {user.id})"]
    said = mentions(facts)
    valid = sorted((f for f in facts if f.valid), key=lambda f: (said.get(f.id, 1), f.valid_from), reverse=True)
    defining = [f for f in valid if f.kind != "summary" and identity_defining(f.text)]
    summaries = [latest.summary for latest in sorted((_visit_summary(v) for v in visits(episodes)),
                                                     key=lambda e: e.end, reverse=True) if latest.summary]
    summaries += [f.text for f in valid if f.kind == "summary"]
    items: list[tuple[str, str]] = [(_SECTION[f.kind], f.text) for f in defining]
    items += [("Recent conversations", t) for t in dict.fromkeys(summaries[:3])]
    items += [("People", f"{name} is their {rel}") for rel, name in relations]
    items += [(_SECTION[f.kind], f.text) for f in valid if f not in defining and f.kind != "summary"]
    items += [("Recent conversations", t) for t in dict.fromkeys(summaries[3:])]
    return pack_lines(header, items, max_tokens, counter)


def _visit_summary(visit: Sequence[Episode]) -> Episode:
    """The visit's episode whose summary speaks for it: its latest with a summary (store/visits.py)."""
    return next((e for e in reversed(visit) if e.summary), visit[-1])


@dataclass(frozen=True)
class MemChunk:
    """What the dialog model attends to; the ROS layer turns it into egomem_msgs/MemChunk."""

    level: int
    user_id: str
    text: str
    token_count: int
    version: int
    tokenizer: str

    @property
    def empty(self) -> bool:
        return not self.text


def render_user_profile(store, user_id: str, max_tokens: int, counter: TokenCounter) -> PackedText:
    """Level-1 text for a stored user: their facts, episodes and the relations they stated themselves.

    An edge that came from another person's session ("Emily is my mother", said by Sarah) stays in
    Sarah's graph but does not reach Emily's Level-1 until Emily says it too."""
    user = store.get_user(user_id)
    names = {u.id: u.display_name for u in store.list_users()}
    episodes = store.episodes(user_id)
    own = {e.id for e in episodes} | {None}
    rels = [(r.relation, names.get(r.dst, r.dst)) for r in store.relations(user_id)
            if r.src == user_id and r.source_episode in own]
    facts = [f for f in store.facts(user_id, include_invalid=True) if f.source_episode in own]
    return render_profile(user, facts, episodes, rels, max_tokens, counter)

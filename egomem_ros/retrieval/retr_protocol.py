"""The `<retr>` protocol on the dialog model's text monologue (paper §3.2.2):

    <retr>\\n<relation words, comma-separated>\\n<keywords, comma-separated><answer>

The parser takes text pieces as they stream (tokens or characters), fires once per complete query,
and drops malformed or unterminated blocks with a log line. It never raises into the dialog loop.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

OPEN, CLOSE = "<retr>", "<answer>"


@dataclass(frozen=True)
class RetrQuery:
    relation_query: tuple[str, ...]
    keyword_query: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.relation_query and not self.keyword_query

    def block(self) -> str:
        """The text the dialog model emits for this query (what `parse_block` reads back)."""
        return f"{OPEN}\n{', '.join(self.relation_query)}\n{', '.join(self.keyword_query)}{CLOSE}"


# a query block, also one cut by the message it arrived in (its <answer> in the next one, or its <retr> in
# the one before)
_QUERY_TEXT = re.compile(rf"{OPEN}.*?(?:{CLOSE}|$)|^(?:(?!{OPEN}).)*?{CLOSE}", re.S)


def spoken_text(text: str) -> str:
    """What the dialog model said in `text`, without its `<retr>` queries: the robot's turn as memory keeps it."""
    return " ".join(_QUERY_TEXT.sub(" ", text).split())


RetrieveFn = Callable[[RetrQuery], str]  # a query -> the Level-2 MemChunk text that answers it


def _words(group: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in group.split(",") if w.strip())


def parse_block(body: str) -> RetrQuery | None:
    """Parse what stands between `<retr>` and `<answer>`; None when it is malformed."""
    if not body.startswith("\n"):
        return None
    parts = body[1:].split("\n")
    if len(parts) == 3 and not parts[2].strip():  # tolerate a newline right before <answer>
        parts = parts[:2]
    if len(parts) != 2:
        return None
    return RetrQuery(_words(parts[0]), _words(parts[1]))


class RetrStreamParser:
    """Feed text pieces; get back the queries they complete.

    `max_block_chars` bounds an open block: a `<retr>` that never closes is dropped once it grows past
    that, so a model that forgets `<answer>` cannot make the parser buffer forever.
    """

    def __init__(self, max_block_chars: int = 512):
        self.max_block_chars = max_block_chars
        self._buf = ""
        self._open = False
        self.dropped = 0

    def reset(self) -> None:
        self._buf, self._open = "", False

    def feed(self, piece: str | bytes | None) -> list[RetrQuery]:
        try:
            return self._feed(piece)
        except Exception:  # noqa: BLE001 - the dialog loop must never see an exception from here
            log.exception("<retr> parser failed on %r; state reset", piece)
            self.reset()
            return []

    def _drop(self, why: str) -> None:
        self.dropped += 1
        log.warning("dropping malformed <retr> block (%s): %r", why, self._buf[:80])

    def _feed(self, piece: str | bytes | None) -> list[RetrQuery]:
        if not piece:
            return []
        if isinstance(piece, bytes):
            piece = piece.decode("utf-8", errors="replace")
        self._buf += piece
        found: list[RetrQuery] = []
        while True:
            if not self._open:
                start = self._buf.find(OPEN)
                if start < 0:
                    # keep only a tail that could still become "<retr>"
                    keep = max((i for i in range(1, len(OPEN)) if self._buf.endswith(OPEN[:i])), default=0)
                    self._buf = self._buf[len(self._buf) - keep:] if keep else ""
                    return found
                self._buf = self._buf[start + len(OPEN):]
                self._open = True
            end = self._buf.find(CLOSE)
            reopen = self._buf.find(OPEN)
            if reopen >= 0 and (end < 0 or reopen < end):
                self._drop("a new <retr> before <answer>")
                self._buf = self._buf[reopen:]
                self._open = False
                continue
            if end < 0:
                if len(self._buf) > self.max_block_chars:
                    self._drop("unterminated")
                    self._buf, self._open = "", False
                return found
            body, self._buf = self._buf[:end], self._buf[end + len(CLOSE):]
            self._open = False
            query = parse_block(body)
            if query is None:
                self.dropped += 1
                log.warning("dropping malformed <retr> block (expected two newline-separated groups): %r",
                            body[:80])
            else:
                found.append(query)

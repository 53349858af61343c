"""The Level-2 retrieval service: a `<retr>` query in, a versioned Level-2 MemChunk out.

ROS-free; the memory node wraps `Level2Service.retrieve` as the RetrieveText service.
"""
from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..memchunk import LEVEL2, MemChunk, TokenCounter, pack_lines
from .text_retrieval import ScoredDoc, TextRetriever

log = logging.getLogger(__name__)

NOTHING_FOUND = "No related memory found."


@dataclass(frozen=True)
class Level2Result:
    chunk: MemChunk
    docs: list[ScoredDoc] = field(default_factory=list)
    message: str = ""
    withheld: int = 0   # items of the requester's neighbourhood they may not be told: counted, never shown


class Level2Service:
    def __init__(self, retriever: TextRetriever, counter: TokenCounter, *, max_tokens: int = 256,
                 default_k: int = 5):
        self.retriever = retriever
        self.counter = counter
        self.max_tokens = max_tokens
        self.default_k = default_k
        self._versions = itertools.count(1)
        self._lock = threading.Lock()

    def retrieve(self, user_id: str | None, relation_query: Sequence[str], keyword_query: Sequence[str],
                 k: int | None = None) -> Level2Result:
        k = k or self.default_k
        docs = self.retriever.retrieve(user_id, relation_query, keyword_query, k)
        if not user_id:
            message = "no current user: Level-2 retrieval returns nothing"
        elif not docs:
            message = "nothing found"
        else:
            message = f"{len(docs)} item(s)"
        header = [f"Retrieved for: relation={', '.join(relation_query) or '-'}; "
                  f"keywords={', '.join(keyword_query) or '-'}"]
        items = [("Related memory", d.doc.rendered) for d in docs] or [("", NOTHING_FOUND)]
        packed = pack_lines(header, items, self.max_tokens, self.counter)
        kept = packed.text.count("\n- ") if docs else 0
        if packed.dropped and docs:
            log.info("Level-2 chunk: dropped %d of %d items to fit %d tokens", packed.dropped, len(docs),
                     self.max_tokens)
        with self._lock:
            version = next(self._versions)
        chunk = MemChunk(LEVEL2, user_id or "", packed.text, packed.token_count, version, self.counter.name)
        withheld = self.retriever.withheld.get(user_id or "", 0)
        return Level2Result(chunk, docs[:kept] if docs else [], message, withheld)

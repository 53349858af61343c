"""MemChunk texts for training samples, made by the runtime's own code paths.

The transcripts' profiles and graph go into an in-memory store; Level-1 text is `render_user_profile`
(what the identity process pushes), Level-2 text is the real retrieval (`Level2Service`) run with the
turn's ground-truth query (paper §4.1). Both are cut to their region by the runtime's token counter.
"""
from __future__ import annotations

from ...dialog.pinned_memory import RegionLayout
from ...memchunk import TokenCounter, render_user_profile
from ...retrieval.level2 import Level2Service
from ...retrieval.rerank import make_reranker
from ..text_bench import Tick
from ...retrieval.text_retrieval import TextRetriever
from ...store import SqliteStore
from .schema import Transcripts, Turn


class ChunkTexts:
    def __init__(self, data: Transcripts, counter: TokenCounter, layout: RegionLayout, rerank: str = "lexical"):
        self.counter, self.layout = counter, layout
        self.store = SqliteStore(":memory:", clock=Tick())
        with self.store.transaction():
            for p in data.profiles:
                self.store.create_user(p.name, user_id=p.id)
                for text in p.facts:
                    self.store.add_fact(p.id, "fact", text)
                for text in p.preferences:
                    self.store.add_fact(p.id, "preference", text)
                for i, summary in enumerate(p.history):
                    self.store.add_episode(p.id, float(i), float(i) + 1.0, summary=summary)
            for g in data.graphs:
                for e in g.edges:
                    self.store.add_relation(g.main, e.dst, e.relation)
        retriever = TextRetriever(self.store, make_reranker(rerank))
        self.retrieval = Level2Service(retriever, counter, max_tokens=layout.l2_steps)
        self._level1: dict[str, str] = {}

    def level1(self, user_id: str) -> str:
        if user_id not in self._level1:  # the store does not change: render each profile once
            self._level1[user_id] = render_user_profile(self.store, user_id, self.layout.l1_steps, self.counter).text
        return self._level1[user_id]

    def level2(self, user_id: str, turn: Turn) -> str:
        """The Level-2 chunk the turn's ground-truth query retrieves ('' for a turn without a query)."""
        if not turn.has_query:
            return ""
        return self.retrieval.retrieve(user_id, turn.relation_query, turn.keyword_query).chunk.text

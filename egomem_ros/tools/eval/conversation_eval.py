"""Scoring what the memory kept of long conversations (`bench/bench_conversation_memory.py`).

A question about X is answered when one of X's items holds every content word of the answer (by a
4-letter stem, so "hiking" meets "hike"). Reported per conversation and summed:
- answer recall, and items kept per 100 user sentences (the memory's size against the talk's);
- answers on the wrong person: found in the other person's memory though that person never said them;
- answers absent from the other person's memory (the goal is >= 98 %);
- memorable items kept (every keyword in one item), profiles named, and whether each person's
  Level-1 "Recent conversations" names a topic of each of their last three sessions (of the session's
  annotated topics, those the person spoke of).
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from ..datagen.conversations import Conversation, intro
from ...memory.item_budget import ITEM_KINDS
from ...memory.extraction import Turn, content_stems



def sentences(text: str) -> int:
    return len([s for s in re.split(r"[.!?]+", text) if re.search(r"[A-Za-z]", s)])


def holds(answer: str, items: list[str]) -> bool:
    """One item holds every content word of the answer."""
    want = content_stems(answer)
    if not want:
        return any(answer.lower() in t.lower() for t in items)
    return any(want <= content_stems(t) for t in items)


def memory_lines(store, user_id: str) -> list[str]:
    """A person's memory as the dialog model gets it: their items, and the people they named."""
    names = {u.id: u.display_name for u in store.list_users()}
    rels = [f"{names.get(r.dst, r.dst)} is their {r.relation}" for r in store.relations(user_id) if r.src == user_id]
    return [f.text for f in store.facts(user_id) if f.kind in ITEM_KINDS] + rels


def said_about_others(store, user_id: str) -> list[str]:
    """What the person said about the people they named, kept on those people ("my friend Jack hates
    football" is Jack's): the speaker's Level-2 reaches it."""
    own = {e.id for e in store.episodes(user_id)}
    return [f.text for u in store.list_users() if u.id != user_id for f in store.facts(u.id)
            if f.source_episode in own and f.kind in ITEM_KINDS]


def person_users(store, conv: Conversation) -> dict[str, str | None]:
    """Each person's profile: the one non-placeholder user with their name."""
    users = store.list_users(include_placeholders=False)
    out = {}
    for p in conv.people:
        named = [u.id for u in users if u.name and u.name.lower() == p.lower()]
        out[p] = named[0] if len(named) == 1 else None
    return out


def score_conversation(conv: Conversation, store, level1: dict[str, str]) -> dict[str, Any]:
    """`level1`: each person's Level-1 text (empty when they have no profile)."""
    ids = person_users(store, conv)
    items = {p: memory_lines(store, uid) if uid else [] for p, uid in ids.items()}
    named = {p: items[p] + said_about_others(store, uid) if uid else [] for p, uid in ids.items()}
    said = {p: " ".join(t.text for s in conv.sessions for t in s.turns if t.speaker == p) for p in conv.people}
    n_sent = sum(sentences(said[p]) for p in conv.people)
    answered = wrong = in_other = with_named = 0
    misses = []
    for q in conv.questions:
        other = next(p for p in conv.people if p != q.about)
        ok = holds(q.answer, items[q.about])
        answered += ok
        with_named += holds(q.answer, named[q.about])
        if not ok:
            misses.append({"question": q.question, "answer": q.answer})
        if holds(q.answer, items[other]):
            in_other += 1
            wrong += not holds(q.answer, [said[other]])
    memorable = sum(all(holds(k, items[m.person]) for k in m.keywords) for m in conv.memorable)
    topics_named = topics_total = 0
    for p in conv.people:
        recent = [k for k, s in enumerate(conv.sessions) if any(t.speaker == p for t in s.turns)][-3:]
        section = level1.get(p, "").split("Recent conversations:")[-1] if "Recent conversations:" in level1.get(p, "") else ""
        for k in recent:   # the session's topics that this person spoke of
            theirs = [w for w in (conv.topics[k] if k < len(conv.topics) else [])
                      if holds(w, [" ".join(conv.said(k, p))])]
            if theirs:
                topics_total += 1
                topics_named += any(holds(w, [section]) for w in theirs)
    n_items = sum(len(v) for v in items.values())
    return {"id": conv.id, "questions": len(conv.questions), "answered": answered,
            "answer_recall": answered / max(1, len(conv.questions)), "answered_with_named": with_named,
            "user_sentences": n_sent, "items": n_items,
            "items_per_100_sentences": 100 * n_items / max(1, n_sent), "answers_on_wrong_person": wrong,
            "answers_in_other_memory": in_other, "memorable": len(conv.memorable), "memorable_kept": memorable,
            "profiles_named": sum(v is not None for v in ids.values()), "l1_topics_named": topics_named,
            "l1_topics_total": topics_total, "misses": misses}


def level1_texts(store, conv: Conversation, max_tokens: int = 512) -> dict[str, str]:
    from ...memchunk import ApproxTokenCounter, render_user_profile

    return {p: render_user_profile(store, uid, max_tokens, ApproxTokenCounter()).text
            for p, uid in person_users(store, conv).items() if uid}


def run_text(conv: Conversation, store, extractor, agent, *, per_turn: bool = False) -> dict[str, Any]:
    """The memory process alone on the conversation's words: each person's part of each session is one
    session of theirs, owned by who said it (no faces, voices or segmentation: the extractor and the
    update agent under test). `per_turn`: every turn is a session of its speaker, in the real order, as
    the cut at each change of voice makes them when both people are in view, but with no cut misplaced
    and no turn on the wrong person."""
    from ...memory.consolidate import Consolidator, SessionInput

    owner: dict[str, str] = {}
    current = [""]
    c = Consolidator(store, extractor, agent, lambda s: owner.get(current[0]))
    t0 = time.perf_counter()
    for sid, person, lines, start, end in _text_sessions(conv, per_turn):
        current[0] = person
        outcome = c.process(SessionInput(sid, start, end, [Turn(speaker="user", text=line) for line in lines]))
        if outcome.user_id:
            owner[person] = outcome.user_id
    seconds = time.perf_counter() - t0
    return {**score_conversation(conv, store, level1_texts(store, conv)), "consolidation_s": seconds}


def _text_sessions(conv: Conversation, per_turn: bool):
    """(session id, speaker, lines, start, end) in time order, on each session's day."""
    introduced: set[str] = set()
    for k, session in enumerate(conv.sessions):
        start = conv.start(k)
        if not per_turn:
            for j, p in enumerate(conv.people):
                if conv.said(k, p):
                    yield f"{conv.id}-{k}-{j}", p, conv.said(k, p), start + 600 * j, start + 600 * j + 300
            continue
        for i, turn in enumerate(session.turns):
            lines = [turn.text] if turn.speaker in introduced else [intro(turn.speaker), turn.text]
            introduced.add(turn.speaker)
            seconds = sum(len(line.split()) for line in lines) / 2.5   # speech at 2.5 words a second
            yield f"{conv.id}-{k}-t{i}", turn.speaker, lines, start, start + seconds
            start += seconds + 1.0


def run_replay(conv: Conversation, workdir: Path, cfg, faces: Path, voices: Path, mode: str, *, seed: int = 0,
               keep_bags: bool = False) -> dict:
    """Write the conversation as a bag (`mode`: separate or together), replay it with `cfg`, score it.
    The bags (hundreds of MB: camera frames and debug images) are deleted unless `keep_bags`."""
    import shutil

    from ..datagen.conversations import write_conversation_bag
    from ...replay import replay
    from ...store import open_store

    work = Path(workdir) / f"{conv.id}-{mode}"
    truth = write_conversation_bag(conv, work, faces, voices, mode, seed=seed)
    t0 = time.perf_counter()
    summary = replay(work / "bag", work / "out", cfg, db=work / "memory.db")
    seconds = time.perf_counter() - t0
    speech_s = sum(len(line.split()) / 2.5 for k in range(len(conv.sessions)) for p in conv.people
                   for line in conv.said(k, p))
    with open_store(work / "memory.db") as store:
        result = score_conversation(conv, store, level1_texts(store, conv, cfg.memchunk.l1_max_tokens))
        result["profiles"] = len(store.list_users(include_placeholders=False))
    if not keep_bags:
        for bag in (work / "bag", work / "out"):
            shutil.rmtree(bag, ignore_errors=True)
    return {**result, "mode": mode, "replay_s": seconds, "bag_s": truth["end"] - conv.start(0),
            "sessions_written": summary.sessions_written,
            "speech_min_estimate": speech_s / 60}

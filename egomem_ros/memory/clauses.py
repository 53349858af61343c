"""Clauses of a parsed user sentence, and each one rewritten as a short third-person memory item.

Works on a spaCy `Doc` (the dependency parse of `en_core_web_sm`). A clause is a verb with a subject
of its own, with the words that hang from it but not the clauses nested in it: "we finally adopted a
beagle, his name is Biscuit" is two clauses, "I think I left my keys" is "I think" and "I left my
keys". Who a clause is about comes from its subject: the speaker (I, we, "me and my husband"), the
speaker's own people and things ("my sister", "our car"), a named third person ("my friend Jack"),
or something else (you, it, that), which is not a disclosure.
"""
from __future__ import annotations

from dataclasses import dataclass, field

CLAUSE_DEPS = {"ROOT", "conj", "ccomp", "parataxis", "advcl"}
SUBJECT_DEPS = {"nsubj", "nsubjpass", "csubj", "expl"}
SELF = {"i", "we", "me", "us"}
OWN = {"my", "our"}
PRONOUNS = {"i": "they", "we": "they", "me": "them", "us": "them", "my": "their", "our": "their",
            "mine": "theirs", "ours": "theirs", "myself": "themself", "ourselves": "themselves"}
CONTRACTIONS = {"'m": "am", "'re": "are", "'ve": "have", "'ll": "will", "'d": "would", "n't": "not",
                "ca": "can", "wo": "will", "gon": "going", "na": "to", "wan": "want"}
# the person's verb after the subject is dropped: "I am" -> "is"
AGREE = {"am": "is", "are": "is", "were": "was", "have": "has", "do": "does"}
FILLERS = {"oh", "ah", "um", "uh", "hmm", "haha", "hahaha", "lol", "yeah", "yep", "well", "honestly", "actually",
           "basically", "literally", "seriously", "totally", "really", "just", "anyway", "anyways", "like",
           "so", "super", "kinda", "sorta", "okay", "ok", "omg", "wow", "also", "though", "too"}
LEADING = {"and", "but", "so", "because", "cause", "'cause", "or", "then", "plus", "since", "although", "though",
           "while", "when", "if", "that", "why", "where", "how", ",", "-", "—", ";", ":"}
# words that carry no memory on their own: "I'm good", "I know, right", "I think so"
TRIVIAL = set("be have do get go think know guess mean feel say tell see look thing stuff lot bit way time "
              "day week today tonight moment one good great nice fine okay ok sure glad happy sorry right true "
              "cool awesome amazing fun crazy wait bad lucky wonderful lovely fantastic excited busy tired "
              "hope wish thank thanks let make love like idea yes no kind sort much many little hear remember "
              "forget try want need can will would could should might must morning evening afternoon night "
              "hello hey hi bye congrats congratulations cheers robot name".split())


@dataclass
class Clause:
    """One clause of a user sentence, about `about` ("self", "own", a name, or "other")."""
    about: str
    tokens: list = field(default_factory=list)      # spaCy tokens in sentence order
    head: object = None
    subject: object = None
    question: bool = False


def split_clauses(sent) -> list[Clause]:
    """The clauses of a spaCy sentence span, each with its own subject."""
    heads = [t for t in sent if t.dep_ in CLAUSE_DEPS and t.pos_ in ("VERB", "AUX")
             and (t.dep_ == "ROOT" or any(c.dep_ in SUBJECT_DEPS for c in t.children))]
    if not heads:
        heads = [sent.root]
    head_set = {h.i for h in heads}
    owner: dict[int, int] = {}
    for t in sent:
        node = t
        while node.i not in head_set and node.head.i != node.i:
            node = node.head
        owner[t.i] = node.i if node.i in head_set else sent.root.i
    question = sent[-1].text == "?" or (sent[0].tag_ in ("WDT", "WP", "WRB") and sent[-1].text != ".")
    out = []
    for h in heads:
        toks = [t for t in sent if owner[t.i] == h.i]
        subj = next((c for c in h.children if c.dep_ in SUBJECT_DEPS), None)
        if subj is None and h.dep_ in ("conj", "advcl", "xcomp"):
            subj = _inherited_subject(h)
        first = next((t for t in toks if not t.is_punct), toks[0])
        inverted = subj is not None and (any(c.dep_ == "aux" and c.i < subj.i for c in h.children)
                                         or (h.i == first.i and h.pos_ == "AUX" and h.i < subj.i))  # "Is Chloe home."
        about = who_is(subj)
        # a statement said with a rising "?" ("I'm in San Diego for the wedding?", "..., you know?") is
        # still the speaker's; a question asks about someone else, or inverts, or starts with a wh-word
        asks = question and toks[-1].i >= sent[-1].i - 1 and about == "other"
        # who/what/which ask, "?" or not (Whisper: "which one of my colleagues plays tennis."); why/where/
        # how/when ask only in a sentence that is asked, not in "that's why we moved to Leeds"
        wh = first.tag_ in ("WP", "WDT") or (question and first.tag_ == "WRB")
        is_q = asks or inverted or wh
        out.append(Clause(about, toks, h, subj, is_q))
    return out


def _inherited_subject(head):
    """A conjoined verb without a subject shares its first conjunct's ("I cooked and cleaned")."""
    node = head
    while node.dep_ in ("conj", "advcl", "xcomp") and node.head.i != node.i:
        node = node.head
        subj = next((c for c in node.children if c.dep_ in SUBJECT_DEPS), None)
        if subj is not None:
            return subj
    return None


def who_is(subj) -> str:
    """Whom a subject names: "self", "own" (my sister, our car), a third person's name, or "other"."""
    if subj is None:
        return "other"
    words = {t.lower_ for t in subj.subtree}
    low = subj.lower_
    if low in SELF or (words & {"me", "i"} and any(t.dep_ == "cc" for t in subj.subtree)):
        return "self"
    name = named(subj)
    if name and any(c.lower_ in OWN for c in subj.children if c.dep_ == "poss") and kin_word(subj):
        return name
    if any(c.lower_ in OWN for c in subj.children if c.dep_ == "poss"):
        return "own"
    if subj.pos_ == "PROPN" and subj.text[:1].isupper():
        return name or subj.text
    return "other"


def kin_word(subj) -> bool:
    """"my friend Jack", "my sister Lena": a relation word names a person ("our red Volvo" does not)."""
    from ..relations import relation_lexicon

    lex = relation_lexicon()
    words = [subj] + [c for c in subj.children if c.dep_ in ("compound", "appos", "amod")]
    return any(lex.canonical(w.lemma_) in lex.inverses or lex.canonical(w.lower_) in lex.inverses for w in words)


def named(subj) -> str | None:
    """The name in "my friend Jack" / "Jack, my friend" (an apposition or compound proper noun)."""
    if subj.pos_ == "PROPN":
        parts = [t.text for t in subj.subtree if t.pos_ == "PROPN" and t.dep_ in ("compound", "flat") or t is subj]
        return " ".join(parts)
    for c in subj.children:
        if c.dep_ in ("appos", "compound") and c.pos_ == "PROPN":
            return " ".join(t.text for t in c.subtree if t.pos_ == "PROPN")
    return None


def third_singular(verb: str) -> str:
    """"go" -> "goes", "carry" -> "carries": the verb once its subject "I" is gone."""
    v = verb.lower()
    if v in AGREE:
        return AGREE[v]
    if v.endswith(("s", "sh", "ch", "x", "z", "o")):
        return v + "es"
    if v.endswith("y") and len(v) > 1 and v[-2] not in "aeiou":
        return v[:-1] + "ies"
    return v + "s"


def rewrite(clause: Clause, drop_subject: bool) -> str:
    """The clause as a third-person item: the speaker's subject dropped, first-person words as
    their/them, the first verb agreeing, fillers, contractions and leading conjunctions mended."""
    subject_toks = {t.i for t in clause.subject.subtree} if (drop_subject and clause.subject is not None) else set()
    with_whom: list[tuple[str, bool]] = []
    if subject_toks:   # "me and my husband Ken got a puppy" -> "got a puppy with their husband Ken"
        for t in clause.subject.subtree:
            if t.dep_ == "conj" and t.lower_ not in SELF:
                with_whom = [(_word(x), False) for x in t.subtree]
    words: list[str] = []
    glue: list[bool] = []    # written without a space before it, as said ("one-day", "Mary's")
    prev = None
    agreed = not subject_toks
    for t in clause.tokens:
        if t.i in subject_toks or t.pos_ == "INTJ" or t.dep_ == "intj" or exclamation(t) or exclamation(t, -1):
            continue
        low = t.lower_
        if low in FILLERS and t.dep_ in ("advmod", "intj", "discourse", "dep", "punct", "prep", "cc") \
                and not (low == "like" and t.pos_ == "VERB") and not (low == "so" and t.dep_ != "advmod"):
            continue
        if low == "you" and t.i + 1 < len(t.doc) and t.nbor().lower_ == "know":
            continue
        if low == "know" and t.i > 0 and t.nbor(-1).lower_ == "you" and t.dep_ in ("parataxis", "dep", "intj", "ccomp"):
            continue
        w = _word(t)
        if not agreed and t.pos_ in ("AUX", "VERB"):
            agreed = True
            if t.tag_ == "VBP" or low in ("'m", "am", "'re", "are", "were"):
                w = third_singular(CONTRACTIONS.get(low, low))
        if low == "n't" and words and words[-1] in ("do", "does"):
            words[-1] = "does"
        glue.append(prev is not None and prev.i == t.i - 1 and not prev.whitespace_ and w == t.text
                    and words[-1] == prev.text)
        words.append(w)
        prev = t
    pairs = list(zip(words, glue))
    kept_subject = clause.subject is not None and not subject_toks   # "that" of "that's serious" stays
    while pairs and pairs[0][0].lower() in LEADING and not (kept_subject and pairs[0][0] == clause.subject.text):
        pairs.pop(0)
    while pairs and pairs[-1][0] in LEADING | {".", "!", "?", ","}:
        pairs.pop()
    if with_whom:
        pairs += [("with", False)] + with_whom
    return _join(pairs)


def exclamation(t, shift: int = 0) -> bool:
    """"my" of "oh my god" (shift 0), or its "god" (shift -1): not the speaker's."""
    i = t.i + shift
    if i < 0 or i + 1 >= len(t.doc):
        return False
    return t.doc[i].lower_ == "my" and t.doc[i + 1].lower_ in ("god", "gosh", "goodness", "lord", "word")


def _word(t) -> str:
    low = t.lower_
    if low in PRONOUNS:
        return PRONOUNS[low]
    if low in CONTRACTIONS and (t.pos_ in ("AUX", "PART", "VERB") or low == "n't"):
        return CONTRACTIONS[low]
    return t.text


def _join(pairs: list[tuple[str, bool]]) -> str:
    text = ""
    for w, glued in pairs:
        if glued or w in (",", ".", "!", "?", ";", ":", "'s", "%") or not text:
            text += w
        else:
            text += " " + w
    text = text.replace("can not", "cannot").replace("will not", "will not")
    return " ".join(text.split()).strip(" ,;:-")


def content_words(clause: Clause) -> list:
    """The tokens that carry memory: names, numbers, nouns and verbs that are not small talk."""
    subj = {t.i for t in clause.subject.subtree} if clause.subject is not None else set()
    return [t for t in clause.tokens if t.i not in subj and t.pos_ in ("NOUN", "PROPN", "NUM", "VERB", "ADJ")
            and t.lemma_.lower() not in TRIVIAL and t.lower_ not in FILLERS and t.is_alpha | t.like_num]


def second_person(clause: Clause) -> bool:
    """A clause about the listener ("I'm so happy for you", "I loved your photos")."""
    return any(t.lower_ in ("you", "your", "yours", "yourself") and not _filler_you(t) for t in clause.tokens)


def _filler_you(t) -> bool:
    return t.i + 1 < len(t.doc) and t.nbor().lower_ in ("know", "see") and t.nbor().dep_ != "ROOT"

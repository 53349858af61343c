"""A session's main topics, for its summary (the Level-1 "Recent conversations", `egomem show`, the
report): the nouns the person came back to, said the way they said them."""
from __future__ import annotations

CALENDAR = set("monday tuesday wednesday thursday friday saturday sunday january february march april may june "
               "july august september october november december".split())
NOT_TOPICS = set("thing things lot bit way stuff time times day days week weeks weekend month months year years "
                 "morning evening night today tonight tomorrow yesterday moment hour hours minute minutes god gosh "
                 "goodness people guy guys one ones kind sort idea question news robot name".split()) | CALENDAR


def session_topics(docs: list, most: int = 4) -> list[str]:
    """The session's main topics: the nouns the user came back to most (names and objects weigh more), each
    as the noun phrase it was first said in ("evening Spanish classes"). Names said to someone ("Morning,
    Oscar!") are not topics."""
    count: dict[str, float] = {}
    phrase: dict[str, str] = {}
    for doc in docs:
        for chunk in doc.noun_chunks:
            root = chunk.root
            key = root.lemma_.lower()
            if root.pos_ not in ("NOUN", "PROPN") or key in NOT_TOPICS or not root.is_alpha or len(key) < 3 \
                    or _vocative(chunk) or _own_name(chunk) or chunk.sent[-1].text == "?" \
                    or any(t.lower_ == "your" for t in chunk):
                continue   # what they ask about, the listener's things and who they are, are not what they talked of
            weight = (1.5 if root.dep_ in ("dobj", "pobj", "attr", "oprd") else 1.0) * (2.0 if root.pos_ == "PROPN" else 1.0)
            count[key] = count.get(key, 0.0) + weight
            if key not in phrase:
                words = [t for t in chunk if not (t.i == chunk.start and t.pos_ in ("DET", "PRON", "CCONJ", "INTJ", "ADP", "ADV"))
                         and t.lower_ not in ("this", "that", "these", "those") and not t.is_punct]
                phrase[key] = "".join(("their" if t.lower_ in ("my", "our") else t.text) + t.whitespace_
                                      for t in words).strip()
    chosen: list[str] = []
    for key in sorted(count, key=lambda k: -count[k]):
        _add_topic(chosen, phrase[key])
        if len(chosen) == most:
            break
    return chosen


def _add_topic(chosen: list[str], topic: str) -> None:
    """Add `topic` unless a chosen one says it already: "Best" and "Best Bakery" are one topic, said the
    longer way, so the summary has room for another."""
    words = set(topic.lower().split())
    if not words:
        return
    for i, other in enumerate(chosen):
        known = set(other.lower().split())
        if words <= known:
            return
        if known <= words:
            chosen[i] = topic
            return
    chosen.append(topic)


def _vocative(chunk) -> bool:
    """A name said to the listener at the start or end of a sentence: "Oscar, ...", "..., Hiro!"."""
    doc, sent = chunk.doc, chunk.sent
    if chunk.root.pos_ != "PROPN" and chunk.root.dep_ != "npadvmod":
        return False
    before = doc[chunk.start - 1].text if chunk.start > sent.start else ""
    after = doc[chunk.end].text if chunk.end < sent.end else ""
    return chunk.root.dep_ in ("npadvmod", "intj") or (before in ("", ",") and after in ("", ",", "!", ".", "?")
                                                       and (chunk.start == sent.start or chunk.end >= sent.end - 1))


def _own_name(chunk) -> bool:
    """The name in "my name is Wendy" or "I'm Wendy": who the speaker is, not a topic."""
    head = chunk.root.head
    return chunk.root.pos_ == "PROPN" and chunk.root.dep_ == "attr" and head.lemma_ == "be" and \
        any(c.dep_ == "nsubj" and c.lower_ in ("name", "i") for c in head.children)

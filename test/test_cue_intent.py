"""The privacy cue classifier (memory/cue_intent.py): requests in words the patterns do not hold, by
meaning, and ordinary talk left alone. Phrasings here are in neither its training examples nor the
benchmark's phrase sets."""
import numpy as np
import pytest

from egomem_ros.memory import privacy
from egomem_ros.memory.cue_intent import CueIntent, clauses, shipped_cue_intent, skeleton
from egomem_ros.memory.extraction import Turn, content_stems


def said(text: str) -> list[Turn]:
    return [Turn(speaker="user", text=text)]


def test_clauses_and_the_skeleton_of_a_request():
    assert clauses("Whatever you do, my dad can't find out: I lost my job.") == [
        "Whatever you do", "my dad can't find out", "I lost my job"]
    known = content_stems("is training for a marathon")
    assert skeleton("Bin all that stuff about the marathon training", known) == ("Bin all that stuff about it",
                                                                                  "the marathon training")
    assert skeleton("Please delete the eggs from the shopping list", known) == (
        "Please delete the eggs from the shopping list", "")


def test_the_classifier_takes_the_likely_intent_only():
    """A clause near no intent, or between two, is `none`: a false "forget" erases."""
    def embed(texts):
        return np.array([[1.0, 0.0] if "hush" in t else [0.0, 1.0] if "wipe" in t else [0.5, 0.5] for t in texts],
                        np.float32)
    c = CueIntent(["forget", "none", "public", "secret"], np.array([[0, 9], [0, 0], [-9, -9], [9, 0]], np.float32),
                  np.zeros(4, np.float32), embed, min_probability=0.8)
    assert c.intent("hush now") == "secret" and c.intent("wipe it") == "forget"
    assert c.intent("something else") == "none"             # secret and forget equally likely
    assert abs(sum(c.probabilities("hush now").values()) - 1) < 1e-6


@pytest.fixture(scope="module")
def shipped():
    intent = shipped_cue_intent()
    if intent is None:
        pytest.fail("the shipped cue classifier did not load (data/cue_intent.npz and the MiniLM encoder ship)")
    return intent


def test_discretion_said_in_other_words_makes_the_item_private(shipped):
    cues = privacy.privacy_cues(said("I have been offered a job in Berlin. I would hate for this to get around."))
    assert [c.level for c in cues] == ["private"], cues


def test_a_secret_from_one_person_in_other_words_names_them(shipped):
    cues = privacy.privacy_cues(said("My sister must not hear about it: I have been offered a job in Berlin."))
    assert [(c.level, c.who) for c in cues] == [("exclude", "my sister")], cues


def test_forgetting_in_other_words_takes_its_topic_from_what_was_told(shipped):
    known = content_stems("is training for a marathon")
    assert privacy.forget_requests(said("Would you kindly wipe the bit about the marathon from your memory?"), known) \
        == ["the marathon"]


@pytest.mark.parametrize("text", ["Please take the eggs off the shopping list.", "I always lose my glasses.",
                                  "My cousin told the whole village about her engagement.",
                                  "The detective kept the evidence locked away.", "I love the marathon."])
def test_ordinary_sentences_raise_no_cue(shipped, text):
    known = content_stems("is training for a marathon; buys eggs")
    assert privacy.privacy_cues(said(text)) == [] and privacy.forget_requests(said(text), known) == []

"""The conversation-memory benchmark's replay path on a small conversation: two people in view together,
turns in their own real voices (LibriSpeech) and faces (LFW), every turn's words on the transcript topic.
Each person's words land in their own memory, and the newcomer's introduction names the newcomer."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from egomem_ros.config import EgomemConfig
from egomem_ros.tools.datagen.conversations import Conversation, load_conversations

pytest.importorskip("spacy")

SMALL = {
    "id": "small", "people": ["Rosa", "Arjun"],
    "sessions": [
        {"date": "2024-05-06", "turns": [
            {"speaker": "Rosa", "text": "Oh it's been a crazy week. We finally adopted a beagle, his name is Biscuit."},
            {"speaker": "Arjun",
             "text": "No way, that's lovely! I signed up for evening pottery classes at the community centre."},
            {"speaker": "Rosa", "text": "Pottery, how fun. How was your weekend?"},
            {"speaker": "Arjun", "text": "Busy, honestly. I drove my daughter Meera to her violin exam in Leeds."}]},
        {"date": "2024-05-20", "turns": [
            {"speaker": "Arjun", "text": "Hey Rosa! Meera passed her exam with a distinction, we were so proud."},
            {"speaker": "Rosa", "text": "Amazing! Biscuit chewed through my new running shoes on Saturday."}]}],
    "questions": [
        {"about": "Rosa", "question": "What breed is Rosa's dog?", "answer": "beagle", "session": 0, "turn": 0},
        {"about": "Rosa", "question": "What is the name of Rosa's dog?", "answer": "Biscuit", "session": 0, "turn": 0},
        {"about": "Arjun", "question": "What classes did Arjun sign up for?", "answer": "pottery classes",
         "session": 0, "turn": 1},
        {"about": "Arjun", "question": "Which instrument does Arjun's daughter play?", "answer": "violin",
         "session": 0, "turn": 3},
        {"about": "Rosa", "question": "What did Biscuit chew?", "answer": "running shoes", "session": 1, "turn": 1}],
}


def test_the_shipped_conversations_load_and_are_consistent():
    data = Path(__file__).resolve().parents[1] / "bench" / "data" / "conversations"
    dev, held = load_conversations(data), load_conversations(data / "heldout")
    assert len(dev) >= 6 and len(held) >= 3
    assert all(len(c.sessions) >= 12 and len(c.questions) >= 30 for c in dev + held)


def test_a_question_pointing_at_the_wrong_person_is_refused():
    bad = json.loads(json.dumps(SMALL))
    bad["questions"][0]["about"] = "Arjun"
    with pytest.raises(ValueError, match="not in Arjun's turn"):
        Conversation.model_validate(bad)


def test_two_people_together_in_front_of_the_robot(shared_data, tmp_path):
    from egomem_ros.tools.eval.conversation_eval import run_replay

    r = run_replay(Conversation.model_validate(SMALL), tmp_path, EgomemConfig(), shared_data / "faces",
                   shared_data / "speech", "together")
    assert r["profiles_named"] == 2 and r["profiles"] == 2, r
    assert r["answers_on_wrong_person"] == 0
    assert r["answered"] >= 4, r["misses"]
    assert not (tmp_path / "small-together" / "out").exists()   # the bags go after scoring

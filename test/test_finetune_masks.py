"""Supervision masks on a hand-built stream whose correct masks are worked out by hand (paper Figure 4)."""
from __future__ import annotations

import numpy as np
import pytest

from egomem_ros.tools.finetune.masks import (L1, L2_QUERY, L2_RESPONSE, mask_array, samples_for, trigger_labels)


def _turn(audio_start, user_end, query, has_query, text_start, end, l2_before, l2):
    return {"user_text": "q", "robot_text": "a", "audio_start": audio_start, "user_end": user_end, "query": query,
            "has_query": has_query, "text_start": text_start, "audio_step": text_start + 2, "end": end,
            "l2_before": l2_before, "l2": l2, "fact_steps": None, "response_ids": 3}


# A 40-step stream: a Level-1 dialog of Ann over steps 2..11, then a Level-2 dialog of Bob over 15..36 with
# two turns: turn 0 asks the graph (query words at 20..23), turn 1 does not (L2 stays what turn 0 fetched).
STREAM = {"steps": 40, "dialogs": [
    {"dialog": "dA", "user": "ann", "level": 1, "start": 2, "end": 12, "l1": "User: Ann",
     "turns": [_turn(2, 5, [6, 6], False, 6, 12, "", "")]},
    {"dialog": "dB", "user": "bob", "level": 2, "start": 15, "end": 37, "l1": "User: Bob",
     "turns": [_turn(15, 19, [20, 24], True, 24, 29, "", "mother: likes swimming"),
               _turn(30, 33, [34, 34], False, 35, 37, "mother: likes swimming", "mother: likes swimming")]},
]}


def test_level1_one_sample_per_dialog_supervised_inside_it_only():
    samples = samples_for("s", STREAM, [L1])
    assert [(s.dialog, s.l1, s.l2) for s in samples] == [("dA", "User: Ann", ""), ("dB", "User: Bob", "")]
    mask = mask_array(samples[0].spans, 40)
    expected = np.zeros(40, bool)
    expected[2:12] = True  # steps 2..11
    assert np.array_equal(mask, expected)
    assert np.flatnonzero(mask_array(samples[1].spans, 40)).tolist() == list(range(15, 37))


def test_level2_two_samples_per_turn_with_their_own_chunks_and_spans():
    samples = samples_for("s", STREAM, [L2_QUERY, L2_RESPONSE])
    got = [(s.kind, s.turn, s.l2, s.spans) for s in samples]
    assert got == [
        # turn 0, query words: the previous L2 (none yet), audio start 15 to the end of the query words (24)
        (L2_QUERY, 0, "", ((15, 24),)),
        # turn 0, response: L2 refilled by retrieval, end of query words to the end of the turn
        (L2_RESPONSE, 0, "mother: likes swimming", ((24, 29),)),
        # turn 1 has no query: the query sample runs to where the response text starts (35) and teaches
        # the model not to ask; the response keeps the L2 chunk it already held
        (L2_QUERY, 1, "mother: likes swimming", ((30, 35),)),
        (L2_RESPONSE, 1, "mother: likes swimming", ((35, 37),)),
    ]
    assert all(s.l1 == "User: Bob" for s in samples)  # L1 always follows the dialog's user
    assert len(samples_for("s", STREAM)) == 2 + 2 * 2  # N dialogs + 2 x turns of Level-2 dialogs


def test_trigger_labels_by_hand():
    labels = trigger_labels(STREAM, 40)
    expected = [0] * 2 + [1] + [2] * 8 + [3] + [0] * 3 + [1] + [2] * 20 + [3] + [0] * 3
    assert labels.tolist() == expected


def test_unknown_task_and_spans_past_the_end():
    with pytest.raises(ValueError, match="unknown task"):
        samples_for("s", STREAM, ["l3"])
    assert mask_array(((35, 60),), 40).sum() == 5

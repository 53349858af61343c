"""Visits: a person's sessions close together are one visit. Two people taking turns make a session of
every turn; the summary and the Level-1 "Recent conversations" speak of the visit, not of the last turn."""
from __future__ import annotations

import pytest

from egomem_ros.memchunk import ApproxTokenCounter, render_user_profile
from egomem_ros.memory.consolidate import Consolidator, SessionInput
from egomem_ros.memory.extraction import Turn
from egomem_ros.memory.update_agent import RuleUpdateAgent
from egomem_ros.store.visits import VISIT_GAP_S, earlier_in_visit, visits
from egomem_ros.store.models import Episode

DAY = 86_400.0


def episode(eid: str, start: float, end: float, said: str = "") -> Episode:
    return Episode(eid, "u1", start, end, f"user: {said}\nrobot: I see." if said else "", f"summary of {eid}")


def test_sessions_close_together_are_one_visit_and_a_long_gap_starts_another():
    eps = [episode("b", 30, 40), episode("a", 0, 20), episode("c", 40 + VISIT_GAP_S + 1, 50 + VISIT_GAP_S)]
    assert [[e.id for e in v] for v in visits(eps)] == [["a", "b"], ["c"]]


def test_the_turns_before_a_session_are_those_of_its_visit_only():
    eps = [episode("old", 0, 10, "We went to Lisbon."), episode("a", DAY, DAY + 10, "I bake sourdough."),
           episode("b", DAY + 20, DAY + 30, "My starter is called Gerald.")]
    assert earlier_in_visit(eps, DAY + 40) == ["I bake sourdough.", "My starter is called Gerald."]
    assert earlier_in_visit(eps, DAY + 30 + VISIT_GAP_S + 1) == []   # a new visit
    assert earlier_in_visit(eps, DAY + 15) == ["I bake sourdough."]   # not the later one


def test_level1_shows_one_line_per_visit_the_visit_s_latest(store):
    uid = store.create_user("Wendy").id
    for eid, start in (("d1", 0), ("d2a", DAY), ("d2b", DAY + 20), ("d2c", DAY + 40)):
        store.add_episode(uid, start, start + 10, "user: hello", f"Talked about {eid}.", episode_id=eid)
    text = render_user_profile(store, uid, 512, ApproxTokenCounter()).text
    recent = text.split("Recent conversations:")[1]
    assert "Talked about d2c." in recent and "Talked about d1." in recent
    assert "d2a" not in recent and "d2b" not in recent, text


def test_a_turn_s_summary_names_what_the_person_said_earlier_in_the_visit(store):
    disclosure = pytest.importorskip("egomem_ros.memory.disclosure")
    try:
        ex = disclosure.DisclosureExtractor()
    except disclosure.ParserUnavailable as err:
        pytest.skip(f"spaCy English model not installed: {err}")
    c = Consolidator(store, ex, RuleUpdateAgent(), lambda s: None)
    wendy = c.process(SessionInput("t1", DAY, DAY + 10, [Turn(speaker="user", text=(
        "Hi robot, my name is Wendy. We signed the lease on the Chorlton shop, the Chorlton shop is ours!"))])).user_id
    c.identify = lambda s: wendy
    c.process(SessionInput("t2", DAY + 30, DAY + 40, [Turn(speaker="user", text="Yeah, and we have to gut the kitchen.")]))
    later = c.process(SessionInput("t3", 3 * DAY, 3 * DAY + 10, [Turn(speaker="user", text="The kitchen is finished.")]))
    summaries = {e.id: e.summary for e in store.episodes(wendy)}
    assert "Chorlton" in summaries["t2"] and "kitchen" in summaries["t2"], summaries
    assert "Wendy" not in summaries["t1"], summaries   # who she is, not what she talked of
    assert "Chorlton" not in summaries["t3"], summaries   # days later: a new visit
    assert later.user_id == wendy

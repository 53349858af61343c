"""The offline extractor on natural speech (spaCy's parser + rules): what it keeps, what it drops, and
where third-person items go. Examples are the issue's own, not from any benchmark set."""
from __future__ import annotations

import pytest

from egomem_ros.memory.consolidate import Consolidator, SessionInput
from egomem_ros.memory.extraction import Turn
from egomem_ros.memory.update_agent import RuleUpdateAgent
from egomem_ros.memchunk import ApproxTokenCounter, render_user_profile

disclosure = pytest.importorskip("egomem_ros.memory.disclosure")
try:
    disclosure.load_parser()
except disclosure.ParserUnavailable as err:  # the README's set-up installs it; say so when it is missing
    pytest.skip(f"spaCy English model not installed: {err}", allow_module_level=True)

MAY_6_2024 = 1_715_000_000.0


@pytest.fixture(scope="module")
def ex():
    return disclosure.DisclosureExtractor(items_per_100_sentences=100)


def items(e):
    return e.facts + e.preferences + e.events


def said(ex, *lines, at=None):
    return ex.extract([Turn(speaker="user", text=line) for line in lines], at=at)


def test_a_chatty_disclosure_becomes_one_third_person_item_with_its_name(ex):
    e = said(ex, "Oh it's been a crazy week, we finally adopted a beagle, his name is Biscuit.")
    assert len(items(e)) == 1
    text = items(e)[0]
    assert "beagle named Biscuit" in text and not text.lower().startswith(("we", "i ")), text
    assert "crazy week" not in text


@pytest.mark.parametrize("line, words", [
    ("I signed up for evening Spanish classes, starting Tuesday.", ["signed up", "Spanish classes"]),
    ("My sister just had twins!", ["their sister", "twins"]),
    ("I've been a vegetarian for ten years.", ["has been a vegetarian"]),
    ("We're thinking of going to Lisbon in June, and I can't wait.", ["is thinking of going to Lisbon"]),
])
def test_disclosures_in_everyday_phrasing(ex, line, words):
    got = " | ".join(items(said(ex, line)))
    assert all(w in got for w in words), got


@pytest.mark.parametrize("line", ["Thanks, that's so sweet of you!", "Wow, how was it?",
                                  "I'm doing great, thanks! How about you?",
                                  "Haha, so true.", "I know, right?", "I'm so happy for you!", "Did you go to the match?"])
def test_small_talk_questions_and_compliments_keep_nothing(ex, line):
    assert items(said(ex, line)) == []


def test_the_robot_s_words_are_not_the_user_s(ex):
    e = ex.extract([Turn(speaker="robot", text="I adopted a beagle named Biscuit."), Turn(speaker="user", text="Nice.")])
    assert items(e) == []


def test_what_is_said_about_a_named_friend_is_the_friend_s(ex):
    e = said(ex, "My friend Jack hates football.")
    assert [(o.name, o.text) for o in e.others] == [("Jack", "hates football")]
    assert items(e) == []
    assert [(r.name, r.relation) for r in e.relations] == [("Jack", "friend")]


def test_events_carry_the_day_from_the_session_clock_and_none_from_an_unset_clock(ex):
    assert said(ex, "I left my keys at the gym yesterday.", at=MAY_6_2024).events == [
        "left their keys at the gym yesterday (on 5 May 2024)"]
    assert said(ex, "I left my keys at the gym yesterday.", at=100.0).events == ["left their keys at the gym yesterday"]


def test_a_move_is_also_where_they_live_now(ex):
    e = said(ex, "We moved to Leeds last month, the new flat is tiny but I love it.")
    assert "lives in Leeds" in e.facts


def test_the_budget_keeps_the_most_informative_items():
    ex = disclosure.DisclosureExtractor(items_per_100_sentences=25)
    lines = ["I had a sandwich.", "I work as a nurse at St Mary's hospital in Leeds.", "I went out.",
             "I like stuff.", "I bought a red Volvo from my cousin Ravi for 900 pounds.", "I slept a lot.",
             "I watched TV.", "I did some things.", "I have a sister called Lena in Oslo.", "I sat down.",
             "I ate lunch.", "I read a book.", "I went home.", "I had tea.", "I looked around.", "I got up."]
    got = items(ex.extract([Turn(speaker="user", text=" ".join(lines))]))
    assert len(got) == 4, got   # 16 sentences at 25 per 100
    assert all(any(w in g for g in got) for w in ("nurse", "Volvo", "Lena")), got


def test_a_short_visit_keeps_each_thing_said(ex):
    e = ex.extract([Turn(speaker="user", text="Hi, my name is Priya. I work as a nurse. I love chess.")])
    assert e.name == "Priya" and any("nurse" in f for f in e.facts) and any("chess" in p for p in e.preferences), e


def test_a_third_person_item_lands_on_a_placeholder_and_never_in_their_level1(store, ex):
    c = Consolidator(store, ex, RuleUpdateAgent(), lambda s: None)
    out = c.process(SessionInput("s1", 0, 10, [Turn(speaker="user", text="Hi robot, my name is Emily. "
                                                "My friend Jack hates football.")]))
    emily = out.user_id
    assert all("football" not in f.text for f in store.facts(emily))
    jack = next(u for u in store.list_users() if u.name == "Jack")
    assert jack.placeholder and [f.text for f in store.facts(jack.id)] == ["hates football"]
    # Jack appears and introduces himself: the placeholder merges, but Emily's words stay out of his Level-1
    c.identify = lambda s: None
    c.process(SessionInput("s2", 20, 30, [Turn(speaker="user", text="Hello, I'm Jack. I work as a plumber.")]))
    jack_id = next(u.id for u in store.list_users() if u.name == "Jack")
    level1 = render_user_profile(store, jack_id, 512, ApproxTokenCounter()).text
    assert "plumber" in level1 and "football" not in level1


def test_saying_the_same_thing_again_merges_and_keeps_history(store, ex):
    c = Consolidator(store, ex, RuleUpdateAgent(), lambda s: None)
    emily = c.process(SessionInput("s1", 0, 10, [Turn(speaker="user", text="I'm Emily. We adopted a beagle.")])).user_id
    c.identify = lambda s: emily
    c.process(SessionInput("s2", 20, 30, [Turn(speaker="user", text="We adopted a beagle, his name is Biscuit.")]))
    c.process(SessionInput("s3", 40, 50, [Turn(speaker="user", text="We adopted a beagle.")]))
    valid = [f.text for f in store.facts(emily)]
    assert [t for t in valid if "beagle" in t] == ["adopted a beagle named Biscuit"], valid
    history = store.facts(emily, include_invalid=True)
    assert any(f.text == "adopted a beagle" and not f.valid and f.superseded_by for f in history)


def test_a_newcomer_introducing_themselves_mid_session_is_not_the_owner(store, ex):
    """Emily's session runs on while Sarah steps in and says who she is: Sarah's part is Sarah's."""
    c = Consolidator(store, ex, RuleUpdateAgent(), lambda s: None)
    emily = c.process(SessionInput("s1", 0, 10, [Turn(speaker="user", text="Hello robot, my name is Emily.")])).user_id
    c.identify = lambda s: emily     # the voice sounds most like Emily's
    outs = c.process_all(SessionInput("s2", 20, 40, [
        Turn(speaker="user", text="I work as a nurse at the city hospital."),
        Turn(speaker="user", text="Hi robot, my name is Sarah. I love tennis and I play every Sunday.")]))
    assert [o.status for o in outs] == ["written", "written"]
    sarah = next(u for u in store.list_users(include_placeholders=False) if u.name == "Sarah")
    assert outs[1].user_id == sarah.id and outs[1].new_user
    emily_items = " ".join(f.text for f in store.facts(emily))
    assert "nurse" in emily_items and "tennis" not in emily_items
    assert "tennis" in " ".join(f.text for f in store.facts(sarah.id))
    # a whole session that starts with another name goes to that person, here the known Sarah
    outs = c.process_all(SessionInput("s3", 50, 60, [Turn(speaker="user", text="Hi, I'm Sarah. I bought a red bike.")]))
    assert [o.user_id for o in outs] == [sarah.id]
    assert "bike" not in " ".join(f.text for f in store.facts(emily))


@pytest.mark.parametrize("line, name", [
    ("Hi robot, my name is Sarah.", "Sarah"), ("Hi, I am Sarah. I love tennis.", "Sarah"),
    ("I'm there, I'm Sarah, I love tennis", "Sarah"), ("It's Tom's fortieth on Friday.", None),
    ("This is Tom.", None), ("Hello again, I am back.", None), ("Honestly, I'm English, so tea.", None),
    ("Yes. I'm Catholic.", None), ("I think I am Sarah", None), ("Honestly, I'm Tom's biggest fan", None)])
def test_only_an_introduction_names_a_newcomer(line, name):
    from egomem_ros.memory.extraction import introduced_name

    assert introduced_name(line) == name


def test_a_person_talking_turn_by_turn_shares_one_budget_for_the_hour(store):
    """Two people taking turns make every turn a session; what one person says within the hour keeps
    the rate's items (and at least 3), not 3 per turn; yet each turn keeps its own share, so the first
    turns of a visit cannot spend what a later turn had to say."""
    from egomem_ros.memory.item_budget import recent_talk

    c = Consolidator(store, disclosure.DisclosureExtractor(), RuleUpdateAgent(), lambda s: None)   # 30 per 100
    first = c.process(SessionInput("t0", 0, 10, [Turn(speaker="user",
                                                      text="Hi, my name is Priya. I work as a nurse. I love chess.")]))
    priya = first.user_id
    assert recent_talk(store, priya, 11) == (2, 3)            # a short first visit keeps both of its items
    c.identify = lambda s: priya
    turns = ["I bought a red Volvo from my cousin Ravi. I adopted a beagle named Biscuit. I play the violin in an orchestra.",
             "I grew tomatoes in my greenhouse. I ran the Leeds half marathon. I baked a lemon cake for Ravi.",
             "I sold my old Fiat to a neighbour. I painted the kitchen blue. I joined a climbing club in Sheffield.",
             "I repaired the garden shed. I visited my aunt in Cardiff. I booked a cruise to Norway for June."]
    for k, line in enumerate(turns):
        c.process(SessionInput(f"t{k + 1}", 20 + 10 * k, 25 + 10 * k, [Turn(speaker="user", text=line)]))
    kept, said = recent_talk(store, priya, 100)
    assert said == 15 and kept == 6                           # 2, then ceil(3 x 30 / 100) = 1 per turn
    for k in range(1, 5):                                     # not 3 in the first turn and none in the next
        assert len([f for f in store.facts(priya) if f.source_episode == f"t{k}"]) == 1, k
    # an hour later the budget is new
    c.process(SessionInput("later", 5000, 5010, [Turn(speaker="user", text="I moved to Bristol last month.")]))
    assert any("Bristol" in f.text for f in store.facts(priya))


def test_a_topic_said_twice_the_longer_way_takes_one_place_in_the_summary():
    from egomem_ros.memory.session_topics import _add_topic

    chosen: list[str] = []
    for topic in ("Best", "Aisha", "Best Bakery", "bakery", "Mum", "Rolling Pin"):
        _add_topic(chosen, topic)
    assert chosen == ["Best Bakery", "Aisha", "Mum", "Rolling Pin"]


@pytest.mark.parametrize("line", ["Lake Tahoe, wow!", "Haha, Gordon the night watchman.",
                                  "Is Gordon still at the depot.", "Now show me more photos of Mabel.",
                                  "Gordon must be over the moon."])
def test_a_reaction_to_the_listener_s_news_is_not_the_speaker_s(ex, line):
    """A bare phrase exclaimed, a question said without its "?", an order and a guess about someone:
    what one person says back to another's news is not their own (examples written for this test)."""
    assert items(said(ex, line)) == []


def test_a_bare_phrase_is_kept_when_it_is_news_or_answers_the_robot(ex):
    assert any("Lake Tahoe" in t for t in items(said(ex, "In Truckee, up by Lake Tahoe, with all those pines.")))
    e = ex.extract([Turn(speaker="robot", text="Where did you go?"),
                    Turn(speaker="user", text="Lake Tahoe, with the kids and the dog, wow!")])
    assert any("Lake Tahoe" in t for t in items(e))
    estimate = said(ex, "There must have been three hundred people at the Moss Stage.")
    assert any("three hundred people" in t for t in items(estimate))


def test_what_they_ask_about_and_the_listener_s_things_are_not_the_session_s_topics(ex):
    from egomem_ros.memory.session_topics import session_topics

    docs = list(ex.nlp.pipe(["How is your greenhouse doing?", "Did the greenhouse survive?",
                             "I finally repainted the shed, and the shed looks great."]))
    topics = session_topics(docs)
    assert topics and topics[0] == "shed" and "greenhouse" not in topics, topics


@pytest.mark.parametrize("line", ["Invite Marta and Luis and the whole choir.",
                                  "Bring me back some of that cheese, I've heard the market is amazing.",
                                  "Welcome to the new Didsbury resident!", "A tap-dancing accountant, I love it."])
def test_an_order_a_greeting_or_a_compliment_is_not_the_speaker_s(ex, line):
    """Said to the listener, however the small parser reads it (examples written for this test)."""
    assert items(said(ex, line)) == []


def test_what_a_clause_says_survives_the_rewrite(ex):
    """A subject "that" is kept ("that's a ..." was left as "'s a ..."), and "that's why we moved" is
    no question."""
    kept = items(said(ex, "That's my grandmother's old sewing machine from Lagos.", "And that's why we moved to Norwich."))
    assert any(t.startswith("That's their grandmother's old sewing machine") for t in kept), kept
    assert any(t.startswith("moved to Norwich") for t in kept), kept
    # a wh-word as the subject still asks, "?" or not (Whisper's "which on my colleagues plays tennis.")
    asked = items(said(ex, "I am back, which one of my colleagues plays tennis."))
    assert not any("tennis" in t for t in asked), asked

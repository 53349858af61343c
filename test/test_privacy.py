"""Who the robot tells what (docs/privacy.md): cues in what people say, visibility in the store, Level-2
that respects it, and "forget what I told you about X" with no byte left behind."""
import pytest

from egomem_ros.memory.consolidate import Consolidator, SessionInput
from egomem_ros.memory.disclosure import offline_extractor
from egomem_ros.memory.extraction import Turn
from egomem_ros.memory.privacy import forget_requests, privacy_cues, topic_matcher, without_cues
from egomem_ros.memory.update_agent import RuleUpdateAgent
from egomem_ros.retrieval.text_retrieval import TextRetriever
from egomem_ros.store import SqliteStore
from egomem_ros.store.visibility import PRIVATE, PUBLIC, SHARED, Visibility


def turns(*lines):
    return [Turn(speaker="user", text=line) for line in lines]


@pytest.mark.parametrize("line, level", [
    ("Don't tell anyone, but I'm pregnant.", PRIVATE),
    ("Keep this between us: I am looking for a new job.", PRIVATE),
    ("It's a secret, I bought a boat.", PRIVATE),
    ("Between you and me, I hate my boss.", PRIVATE),
    ("That's strictly confidential.", PRIVATE),
    ("Please don't tell him, I broke his vase.", PRIVATE),          # whom, the robot cannot know
    ("Don't tell my husband, but I'm planning a surprise party.", "exclude"),
    ("Do not tell Tom that I won.", "exclude"),
    ("You can tell everyone that I run marathons.", PUBLIC),
    ("It's no secret that I love jazz.", PUBLIC),
])
def test_privacy_phrasings_are_understood(line, level):
    cues = privacy_cues(turns(line))
    assert [c.level for c in cues] == [level], cues


@pytest.mark.parametrize("line", [
    "My daughter goes to a private school.", "I told my husband about the party.", "Tom told me a secret recipe.",
    "I never tell lies.", "We keep chickens.",
])
def test_ordinary_talk_is_no_privacy_cue(line):
    assert privacy_cues(turns(line)) == []


def test_the_extractor_reads_the_turn_without_its_cue():
    cleaned = without_cues(turns("Don't tell my husband, but I'm planning a surprise party for him.",
                                 "Keep this between us: I am looking for a new job.",
                                 "Please forget what I told you about the boat."))
    assert [t.text for t in cleaned] == ["I'm planning a surprise party for him.", "I am looking for a new job.", ""]
    assert forget_requests(turns("Forget what I told you about the boat.", "Please forget about my diet!",
                                 "I forget about things.")) == ["the boat", "my diet"]
    matches = topic_matcher("the surprise party")
    assert matches("is planning a surprise party for him") and matches("parties are fun")
    assert not matches("works as a pilot")
    with pytest.raises(ValueError):
        topic_matcher("the")


def test_visibility_decides_who_is_told():
    assert Visibility().allows("emily", "john") and Visibility(PUBLIC).allows("emily", "john")
    assert not Visibility(PRIVATE).allows("emily", "john") and Visibility(PRIVATE).allows("emily", "emily")
    hidden = Visibility(SHARED, frozenset({"john"}))
    assert not hidden.allows("emily", "john") and hidden.allows("emily", "sarah")
    assert not Visibility(PUBLIC).allows("emily", None) and not Visibility().allows("emily", "")
    assert Visibility(PUBLIC).stricter(hidden) == hidden
    assert Visibility.from_columns("shared", hidden.hidden_column) == hidden
    with pytest.raises(ValueError):
        Visibility("secret")


def session(sid, start, *lines):
    ts = [t for line in lines for t in (Turn(speaker="user", text=line), Turn(speaker="robot", text="I see."))]
    return SessionInput(sid, start, start + 30.0, ts)


@pytest.fixture
def household(tmp_path):
    """Emily with her husband John and her friend Sarah, all known; Emily says things with cues."""
    store = SqliteStore(tmp_path / "m.db")
    people = {name: store.create_user(name).id for name in ("Emily", "John", "Sarah")}
    store.add_relation(people["Emily"], people["John"], "husband")
    store.add_relation(people["Emily"], people["Sarah"], "friend")
    c = Consolidator(store, offline_extractor(), RuleUpdateAgent(), lambda s: people["Emily"],
                     voice_model="resemblyzer_ge2e")
    out = c.process(session("s1", 100.0, "I work as a nurse.",
                            "Don't tell my husband, but I'm planning a surprise party for him.",
                            "Keep this between us: I am looking for a new job."))
    assert out.status == "written", out
    assert c.process(session("s0", 50.0, "You can tell everyone that I run marathons.")).status == "written"
    yield store, people, c
    store.close()


def _told(store, asker):
    return {d.text for d in TextRetriever(store, None).documents(asker)}


def test_level2_tells_each_person_only_what_they_may_know(household):
    store, people, _ = household
    items = {f.text: f.visibility for f in store.facts(people["Emily"])}
    party = next(t for t in items if "party" in t)
    job = next(t for t in items if "job" in t)
    assert items[party] == Visibility(SHARED, frozenset({people["John"]}))
    assert items[job].level == PRIVATE and items["works as a nurse"] == Visibility()
    assert items[next(t for t in items if "marathon" in t)].level == PUBLIC
    retriever = TextRetriever(store, None)
    to_john, to_sarah = (_told(store, people[p]) for p in ("John", "Sarah"))
    assert party not in to_john and job not in to_john and "works as a nurse" in to_john
    assert party in to_sarah and job not in to_sarah
    # the session's summary says what every turn said: it takes the strictest cue
    assert all("party" not in t and "job" not in t for t in to_sarah - set(items))
    retriever.documents(people["John"])
    assert retriever.withheld[people["John"]] >= 3   # party, job, the summary: counted, never shown
    assert TextRetriever(store, None).retrieve(None, ["wife"], ["party"]) == []


def test_an_update_keeps_the_visibility_it_was_said_with(household):
    store, people, _ = household
    job = next(f for f in store.facts(people["Emily"]) if "job" in f.text)
    new = store.supersede_fact(job.id, "has found a new job")
    assert new.visibility.level == PRIVATE   # said once in private: no later update tells anyone
    assert store.supersede_fact(new.id, "started the new job", visibility=Visibility(PUBLIC)).visibility.level == PUBLIC


def test_excluding_a_placeholder_follows_the_merge(tmp_path):
    store = SqliteStore(tmp_path / "m.db")
    emily, tom_placeholder, tom = (store.create_user("Emily").id, store.create_user("Tom", placeholder=True).id,
                                   store.create_user().id)
    store.add_relation(emily, tom_placeholder, "brother")
    fact = store.add_fact(emily, "fact", "won the lottery", visibility=Visibility(SHARED, frozenset({tom_placeholder})))
    store.merge_users(tom, tom_placeholder)
    assert store._fact(fact.id).visibility.hidden_from == {tom}
    assert "won the lottery" not in _told(store, tom)
    store.forget_user(tom)
    assert store._fact(fact.id).visibility.hidden_from == frozenset()
    store.close()


def test_forget_what_i_told_you_about_a_topic_leaves_no_byte(household, tmp_path):
    store, people, c = household
    emily = people["Emily"]
    assert any("party" in f.text for f in store.facts(emily))
    out = c.process(session("s2", 9000.0, "I love gardening.", "Please forget what I told you about the surprise party."))
    assert out.status == "written" and any(e.op == "DELETE" and e.item_kind == "topic" for e in out.events)
    assert not any("party" in f.text for f in store.facts(emily, include_invalid=True))
    assert any("gardening" in f.text for f in store.facts(emily))
    assert all("party" not in (e.transcript + e.summary) for e in store.episodes(emily))
    assert all("party" not in a.detail for a in store.audit())
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("m.db*") if p.is_file())
    assert b"surprise" not in raw and b"party" not in raw
    assert b"nurse" in raw   # the rest stays


def test_a_forget_request_in_the_same_session_writes_nothing_about_it(tmp_path):
    store = SqliteStore(tmp_path / "m.db")
    emily = store.create_user("Emily").id
    c = Consolidator(store, offline_extractor(), RuleUpdateAgent(), lambda s: emily, voice_model="resemblyzer_ge2e")
    c.process(session("s1", 100.0, "I bought a sailing boat.", "Actually, forget about the boat.", "I work as a nurse."))
    texts = [f.text for f in store.facts(emily, include_invalid=True)]
    assert texts and not any("boat" in t for t in texts)
    store.close()


def test_a_cue_covers_its_sentence_or_the_bare_ones_beside_it(tmp_path):
    store = SqliteStore(tmp_path / "m.db")
    emily, sarah = store.create_user("Emily").id, store.create_user("Sarah").id
    store.add_relation(sarah, emily, "colleague")
    c = Consolidator(store, offline_extractor(), RuleUpdateAgent(), lambda s: sarah, voice_model="resemblyzer_ge2e")
    c.process(session("s1", 100.0, "I love tennis. Don't tell Emily, but I am looking for a new job. I work as a nurse."))
    c.process(session("s2", 9000.0, "I adopted a beagle named Biscuit. It's our little secret."))
    vis = {f.text: f.visibility for f in store.facts(sarah)}
    assert vis["loves tennis"] == Visibility() and vis["works as a nurse"] == Visibility()
    assert vis["is looking for a new job"].hidden_from == {emily}
    assert vis["adopted a beagle named Biscuit"].level == PRIVATE
    store.close()


@pytest.mark.parametrize("line, covered", [
    ("I am pregnant. Whatever happens, don't tell my mum.", True),        # nothing of its own beside the cue
    ("I quit my job. Mum's the word on that one, yeah?", True),
    ("I love tennis. Don't tell my mum, but I am pregnant.", False),      # its own news: the cue is about that
])
def test_a_cue_with_only_fillers_beside_it_covers_the_sentence_before(line, covered):
    first = line.split(". ")[0]
    cues = privacy_cues(turns(line))
    assert cues and all((first in c.covers) == covered for c in cues), cues


def test_a_forget_request_about_it_takes_the_topic_named_beside_it():
    from egomem_ros.memory.extraction import content_stems

    known = content_stems("bought a sailing boat")
    assert forget_requests(turns("That business with the boat, could you just forget it?"), known) == ["the boat"]
    assert forget_requests(turns("That business with the boat, could you just forget it?")) == []   # nothing told


def test_a_capitalised_first_word_is_a_name_only_when_it_is_one():
    from egomem_ros.memory.privacy import REQUEST_WORDS, _named_in

    assert _named_in("Promise me you won't tell a soul") == "" and _named_in("Keep it under your hat") == ""
    assert _named_in("Tom mustn't hear about this") == "Tom" and _named_in("keep my husband out of it") == "my husband"
    assert {"i", "forget", "secret", "delet"} <= REQUEST_WORDS   # how people ask: never the topic of a request
    assert not {"wife", "husband", "tom"} & REQUEST_WORDS        # whom they name: may be a topic

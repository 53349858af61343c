"""`egomem make-data transcripts`: profiles, Level-1 dialogs, Level-2 graphs and dialogs (paper §4.1).

Profiles and relation graphs are always drawn here (seeded). Dialogs come from an OpenAI-compatible LLM
when one is configured (the paper used DeepSeek-V3), else from seeded templates. Templates cannot be
richer than they are: a fixed set of question forms, no paraphrase. The output says which was used.
"""
from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterable

from pydantic import BaseModel

from ..text_bench import DAYS, NAMES, PETS, RELATIONS, TOPICS
from .schema import Dialog, Edge, Graph, Profile, Transcripts, Turn

log = logging.getLogger(__name__)

CITIES = ("Lyon Paris Berlin Madrid Rome Vienna Prague Oslo Lisbon Dublin Warsaw Athens Zurich Porto Milan "
          "Munich Seville Krakow Bergen Nantes").split()
JOBS = "nurse teacher engineer chef pilot lawyer farmer dentist plumber architect baker painter".split()
HOBBIES = "tennis jazz gardening chess cooking hiking painting swimming football reading yoga cycling".split()
TALKS = ["a trip to the sea", "a new recipe", "their garden", "a football match", "a birthday party",
         "a job interview", "a concert", "moving house", "a book they read", "a visit to the doctor"]
TEMPLATE_NOTE = ("templates: profiles, graphs and dialogs from a fixed set of question and answer forms "
                 "(no paraphrase, no open-domain requests); configure an LLM for richer dialogs")

# (question, answer with {field}, field): Level-1 self questions, answerable from the profile only
SELF_QUESTIONS = [
    ("What is my name?", "Your name is {name}.", "name"),
    ("Do you remember who I am?", "Of course, you are {name}.", "name"),
    ("Where do I live?", "You live in {city}.", "city"),
    ("What do I do for work?", "You work as a {job}.", "job"),
    ("What do I like to do?", "You like {hobby}.", "hobby"),
    ("What did we talk about last time?", "Last time we talked about {talk}.", "talk"),
]
GENERAL = [
    ("What will the weather be like tomorrow?", "Tomorrow will be sunny with a light breeze."),
    ("Can you suggest something for dinner?", "How about a vegetable curry with rice?"),
    ("Tell me a short joke.", "Why did the robot go on holiday? It needed to recharge."),
    ("Please remind me to call the bank.", "I will remind you this afternoon."),
    ("How long should I boil an egg?", "About eight minutes for a hard boiled egg."),
    ("Thanks, that is all for now.", "You are welcome, see you soon."),
]


def _answer(template: str, values: dict[str, str], field: str | None) -> tuple[str, tuple[int, int] | None]:
    """Fill `template`; return the text and the character span of `field`'s value."""
    text = template.format(**values)
    if field is None:
        return text, None
    head = template.split("{" + field + "}")[0].format(**values)
    return text, (len(head), len(head) + len(values[field]))


def template_profiles(n: int, rng: random.Random, prefix: str = "p") -> list[Profile]:
    profiles = []
    for i in range(n):
        hobby, other = rng.sample(HOBBIES, 2)
        profiles.append(Profile(id=f"{prefix}{i}", name=rng.choice(NAMES),
                                facts=[f"lives in {rng.choice(CITIES)}", f"works as a {rng.choice(JOBS)}"],
                                preferences=[f"likes {hobby}", f"does not like {other}"],
                                history=[f"talked about {rng.choice(TALKS)}"]))
    return profiles


def profile_values(p: Profile) -> dict[str, str]:
    """The template fields of a profile (its first fact of each kind)."""
    def after(prefix: str, items: Iterable[str]) -> str:
        return next((s[len(prefix):] for s in items if s.startswith(prefix)), "")
    return {"name": p.name, "city": after("lives in ", p.facts), "job": after("works as a ", p.facts),
            "hobby": after("likes ", p.preferences), "talk": after("talked about ", p.history)}


def template_level1(profile: Profile, rng: random.Random, dialog_id: str, n_turns: int,
                    self_question_rate: float = 0.6) -> Dialog:
    values = profile_values(profile)
    turns, asked = [], set()
    for _ in range(n_turns):
        if rng.random() < self_question_rate:
            question, template, field = rng.choice([q for q in SELF_QUESTIONS if q[0] not in asked and values[q[2]]])
            asked.add(question)
            robot, span = _answer(template, values, field)
            turns.append(Turn(user=question, robot=robot, answer_span=span))
        else:
            question, robot = rng.choice(GENERAL)
            turns.append(Turn(user=question, robot=robot))
    return Dialog(id=dialog_id, level=1, user=profile.id, turns=turns)


def template_graph(main: Profile, n_connected: int, rng: random.Random, prefix: str
                   ) -> tuple[Graph, list[Profile], dict[str, tuple]]:
    """`n_connected` users around `main`, each with three facts on distinct topics."""
    people, edges, topic_of = [], [], {}
    for c, rel in enumerate(rng.sample(RELATIONS, n_connected)):
        uid = f"{prefix}c{c}"
        facts = []
        for topic in rng.sample(TOPICS, 3):
            fact = rng.choice(topic[2]).format(day=rng.choice(DAYS), pet=rng.choice(PETS))
            facts.append(fact)
            topic_of[fact] = topic
        people.append(Profile(id=uid, name=rng.choice(NAMES), facts=facts))
        edges.append(Edge(dst=uid, relation=rel))
    return Graph(main=main.id, edges=edges), people, topic_of


def template_level2(main: Profile, graph: Graph, people: list[Profile], topic_of: dict[str, tuple],
                    rng: random.Random, dialog_id: str, n_turns: int) -> Dialog:
    by_id = {p.id: p for p in people}
    circle = [(e.relation, by_id[e.dst], f) for e in graph.edges for f in by_id[e.dst].facts]
    turns = []
    for _ in range(n_turns):
        if not circle or rng.random() < 0.3:
            question, robot = rng.choice(GENERAL)
            turns.append(Turn(user=question, robot=robot))
            continue
        rel, person, fact = rng.choice(circle)
        topic = topic_of[fact]
        keyword = rng.choice(topic[1])
        unique = sum(topic_of[f] is topic for _, _, f in circle) == 1  # a keyword alone must be unambiguous
        mode = rng.choice(["both", "relation", "keyword"] if unique else ["both", "relation"])
        values = {"rel": rel, "name": person.name, "fact": fact, "kw": keyword}
        if mode == "both":
            robot, span = _answer("Yes, your {rel} {name} {fact}.", values, "fact")
            turns.append(Turn(user=f"Does my {rel} like {keyword}?", robot=robot, relation_query=[rel],
                              keyword_query=[keyword], answer_span=span))
        elif mode == "relation":
            robot, span = _answer("Your {rel} {name} {fact}.", values, "fact")
            turns.append(Turn(user=f"What do you know about my {rel}?", robot=robot, relation_query=[rel],
                              answer_span=span))
        else:
            robot, span = _answer("{name}, your {rel}, {fact}.", values, "fact")
            turns.append(Turn(user=f"Who do I know that is into {keyword}?", robot=robot,
                              keyword_query=[keyword], answer_span=span))
    return Dialog(id=dialog_id, level=2, user=main.id, turns=turns)


class _LLMTurns(BaseModel):
    turns: list[Turn]


LLM_SYSTEM = ("You write training dialogs between a user and a home robot. Return one JSON object "
              '{"turns": [{"user": str, "robot": str, "relation_query": [str], "keyword_query": [str], '
              '"answer_span": [start, end] or null}]}. 3-5 turns. The robot is helpful, brief and personal. '
              "answer_span: character offsets in `robot` of the fact that only the memory supplies.")


def llm_dialog(client, profile: Profile, level: int, dialog_id: str, people: list[Profile] | None = None,
               graph: Graph | None = None) -> Dialog:
    """One dialog from an OpenAI-compatible LLM (`memory.llm.ChatClient`), schema-validated."""
    if level == 1:
        task = ("Level-1: the user asks about themselves and their own history (name, facts, preferences, "
                "past talks), mixed with general requests. Queries stay empty.\nProfile: "
                + profile.model_dump_json())
    else:
        task = ("Level-2: questions that need the relation graph (e.g. 'does my mother like exercise?'), mixed "
                "with general requests. For each, give relation_query (relation words) and keyword_query "
                "(topic words), either may be empty, and a grounded answer.\nMain user: "
                + profile.model_dump_json() + "\nGraph: " + (graph.model_dump_json() if graph else "{}")
                + "\nConnected people: " + json.dumps([p.model_dump() for p in people or []]))
    turns = client.ask_json(LLM_SYSTEM, task, _LLMTurns).turns
    return Dialog(id=dialog_id, level=level, user=profile.id, turns=turns)


def make_transcripts(*, n_profiles: int = 50, n_level1: int = 200, n_level2: int = 100, seed: int = 0,
                     connected: tuple[int, int] = (3, 5), turns: tuple[int, int] = (3, 5),
                     self_question_rate: float = 0.6, client=None,
                     progress: Callable[[Iterable], Iterable] | None = None) -> Transcripts:
    """Profiles, graphs and dialogs; `client` (a ChatClient) writes the dialogs, else templates do.

    `self_question_rate`: share of template Level-1 turns that ask about the user's own profile."""
    rng = random.Random(seed)
    profiles = template_profiles(n_profiles, rng)
    graphs, people_of, topics = [], {}, {}
    for p in profiles:
        if connected[1] <= 0:
            break
        graph, people, topic_of = template_graph(p, rng.randint(*connected), rng, prefix=p.id)
        graphs.append(graph)
        people_of[p.id] = people
        topics.update(topic_of)
    everyone = profiles + [q for people in people_of.values() for q in people]
    jobs = [(1, i) for i in range(n_level1)] + [(2, i) for i in range(n_level2)]
    dialogs: list[Dialog] = []
    for level, i in progress(jobs) if progress else jobs:
        main = rng.choice(profiles)
        dialog_id, n_turns = f"d{level}_{i:05d}", rng.randint(*turns)
        graph = next((g for g in graphs if g.main == main.id), Graph(main=main.id))
        if client is not None:
            dialogs.append(llm_dialog(client, main, level, dialog_id, people_of.get(main.id), graph))
        elif level == 1:
            dialogs.append(template_level1(main, rng, dialog_id, n_turns, self_question_rate))
        else:
            dialogs.append(template_level2(main, graph, people_of.get(main.id, []), topics, rng, dialog_id,
                                           n_turns))
    backend = "templates" if client is None else f"llm:{client.cfg.model}"
    note = TEMPLATE_NOTE if client is None else "dialogs written by the configured LLM; profiles from templates"
    return Transcripts(backend=backend, note=note, profiles=everyone, graphs=graphs, dialogs=dialogs)

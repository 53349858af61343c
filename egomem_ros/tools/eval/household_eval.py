"""Scoring a household day (`egomem eval household`): did every memory land on the right person, and was
every returning person recognised?

Inputs are what a robot leaves behind: the memory database and a bag with the identity topic (the
output bag of `egomem replay`, or `ros2 bag record` of the nodes), plus the day's `truth.json`.
A profile belongs to a person when it carries the person's name, else when most of the facts it holds
are the person's. Placeholders (people only mentioned) are not profiles.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

KNOWN = "known"


# How each result reads, in the order the CLI table and the benchmark show it: (title, cell of one day).
METRICS: list[tuple[str, Callable[[dict], str]]] = [
    ("people with exactly one profile", lambda r: f"{r['people_with_one_profile']}/{r['people']}"),
    ("stray profiles (nobody's)", lambda r: str(r["stray_profiles"])),
    ("facts on the wrong person", lambda r: str(r["facts_on_wrong_person"])),
    ("fact recall", lambda r: f"{r['fact_recall']:.3f} of {r['facts']}"),
    ("relations right", lambda r: f"{r['relations_right']}/{r['relations']}"),
    ("returns recognised", lambda r: f"{r['returns_recognised']}/{r['returns']}"),
    ("polls from arrival to known (max)", lambda r: str(r["polls_to_known_max"])),
    ("s from first session end to profile (max)", lambda r: f"{r['s_session_end_to_profile_max']:.1f}"),
    ("s from first session end to known (max)", lambda r: f"{r['s_first_session_end_to_known_max']:.1f}"),
    ("known polls naming someone not there", lambda r: str(r["known_polls_wrong_person"])),
    ("sessions written", lambda r: str(r["sessions_written"])),
    ("bag length s / replay s", lambda r: f"{r['bag_s']:.0f} / {r['replay_s']:.1f}"),
]


def identity_polls(bag: Path) -> list[tuple[float, str, str]]:
    """(stamp, status, user id) of every identity poll in `bag` (found by message type, as the report does)."""
    from ...report.data import ReportData, read_bag

    data = ReportData()
    read_bag(bag, data)
    return [(p.t, p.status, p.user_id) for p in data.polls]


def _owner(user_name: str | None, fact_texts: list[str], people: dict[str, dict]) -> str | None:
    if user_name:
        named = [k for k, p in people.items() if p["name"].lower() == user_name.lower()]
        if named:
            return named[0]
    votes = Counter(k for text in fact_texts for k, p in people.items() for kw in p["facts"] if kw in text.lower())
    return votes.most_common(1)[0][0] if votes else None


def score_household(truth: dict[str, Any], store, polls: list[tuple[float, str, str]]) -> dict[str, Any]:
    people: dict[str, dict] = truth["people"]
    users = store.list_users(include_placeholders=False)
    facts = {u.id: [f.text.lower() for f in store.facts(u.id)] for u in users}
    owner = {u.id: _owner(u.name, facts[u.id], people) for u in users}
    profiles = Counter(o for o in owner.values() if o)
    recalled = wrong = total = 0
    wrong_items: list[str] = []
    for key, p in people.items():
        for kw in p["facts"]:
            total += 1
            recalled += any(kw in text for u, o in owner.items() if o == key for text in facts[u])
            for u, o in owner.items():
                if o != key and any(kw in text for text in facts[u]):
                    wrong += 1
                    wrong_items.append(f"{p['name']}'s '{kw}' on {store.get_user(u).display_name} ({u})")
    rel_total = rel_right = 0
    for key, p in people.items():
        for rel in p["relations"]:
            rel_total += 1
            src = {u for u, o in owner.items() if o == key}
            dst = {u for u, o in owner.items() if o == rel["other"]}
            rel_right += any(r.src in src and r.dst in dst and r.relation == rel["relation"]
                             for u in src for r in store.relations(u))
    return {"people": len(people), "profiles": len(users),
            "profiles_per_person": {people[k]["name"]: profiles.get(k, 0) for k in people},
            "people_with_one_profile": sum(profiles.get(k, 0) == 1 for k in people),
            "stray_profiles": sum(1 for o in owner.values() if o is None),
            "facts_on_wrong_person": wrong, "wrong": wrong_items,
            "fact_recall": recalled / total if total else 1.0, "facts": total,
            "relations_right": rel_right, "relations": rel_total,
            "s_session_end_to_profile_max": _profile_latency(truth, users, owner),
            **_recognition(truth, owner, polls)}


def _profile_latency(truth: dict[str, Any], users, owner: dict[str, str | None]) -> float:
    """Seconds from the end of a person's first session to their profile existing (bag time), worst case."""
    first_end: dict[str, float] = {}
    for v in truth["visits"]:
        if v["kind"] == "intro":
            first_end.setdefault(v["speaker"], v["end"])
    created = {}
    for u in users:
        if owner[u.id] in first_end:
            created[owner[u.id]] = min(created.get(owner[u.id], float("inf")), u.created_at)
    return max((created[k] - first_end[k] for k in created), default=0.0)


def _recognition(truth: dict[str, Any], owner: dict[str, str | None], polls: list[tuple[float, str, str]]
                 ) -> dict[str, Any]:
    """For each return visit: polls from the person's arrival to their first `known` poll as themselves;
    and over the day, `known` polls naming someone who was not in view."""
    people, visits = truth["people"], truth["visits"]
    first_end = {}
    delays, to_known, misses = [], [], []
    for v in visits:
        if v["kind"] == "intro":
            first_end.setdefault(v["speaker"], v["end"])
        if v["kind"] != "return":
            continue
        own = [(t, s, u) for t, s, u in polls if v["start"] < t <= v["end"] + 2.0]
        hit = next((i for i, (t, s, u) in enumerate(own) if s == KNOWN and owner.get(u) == v["speaker"]), None)
        if hit is None:
            misses.append(people[v["speaker"]]["name"])
            continue
        to_known.append(hit + 1)
        delays.append(own[hit][0] - first_end[v["speaker"]])
    wrong_known = 0
    for t, s, u in polls:
        if s != KNOWN:
            continue
        here = [v for v in visits if v["start"] < t <= v["end"] + 4.0]  # the hysteresis lags by a poll or two
        present = {v["speaker"] for v in here} | {v["bystander"] for v in here}
        wrong_known += owner.get(u) not in present
    return {"returns": len(to_known) + len(misses), "returns_recognised": len(to_known),
            "not_recognised": misses, "polls_to_known_max": max(to_known, default=0),
            "s_first_session_end_to_known_max": max(delays, default=0.0), "known_polls": sum(s == KNOWN for _, s, _ in polls),
            "known_polls_wrong_person": wrong_known}


def run_household(faces: Path, voices: Path, workdir: Path, cfg, *, seed: int = 0, minutes: float = 10.0,
                  progress=None) -> dict[str, Any]:
    """Generate the day into WORKDIR/seed<N>/, replay it with `cfg` as `egomem replay` does, and score it."""
    import time

    from ..datagen.household import write_household
    from ...replay import replay
    from ...store import SqliteStore

    day = Path(workdir) / f"seed{seed}"
    if day.exists():
        import shutil

        shutil.rmtree(day)
    truth = write_household(day, Path(faces), Path(voices), seed=seed, minutes=minutes)
    t0 = time.perf_counter()
    summary = replay(day / "bag", day / "out_bag", cfg, db=day / "memory.db", progress=progress)
    replay_s = time.perf_counter() - t0
    with SqliteStore(day / "memory.db") as store:
        result = score_household(truth, store, identity_polls(day / "out_bag"))
    return {"seed": seed, "bag_s": round(truth["duration_s"], 1), "replay_s": round(replay_s, 1),
            "sessions_written": summary.sessions_written, **result}

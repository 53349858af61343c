"""Report data shaped like a long household recording, to size and test the replay report without one."""
from __future__ import annotations

from ...report.data import Chunk, Poll, ReportData, SessionSpan, Write


def synthetic_day(hours: float, people: int) -> ReportData:
    """A poll every 2 s, a ~40 s session per minute, people in turn, a stranger every fifth visit."""
    data = ReportData(bag="synthetic", db="synthetic", names={f"u{i}": f"Person{i}" for i in range(people)})
    t, k = 0.0, 0
    while t < hours * 3600:
        who = f"u{k % people}" if k % 5 else f"tmp-{k:05d}"
        data.polls += [Poll(t + 2 * j, "known" if who[0] == "u" else "unknown", who, "", 0.5 + 0.02 * j) for j in range(20)]
        data.polls += [Poll(t + 40 + 2 * j, "nobody", "", "", 0.0) for j in range(10)]
        owner = who if who[0] == "u" else f"n{k}"
        data.names.setdefault(owner, f"New{k}")
        data.sessions.append(SessionSpan(f"s{k}", owner, data.names[owner], t + 1, t + 38,
                                         "user: Hello again, I am back.\nuser: I love <b>chess</b> & tea.", "Talked"))
        data.writes.append(Write(t + 44, "ADD", owner, "preference", "loves chess", f"s{k}"))
        data.chunks.append(Chunk(t + 4, 1, owner, "User: Person\nFacts:\n- loves chess"))
        t, k = t + 60, k + 1
    data.relations = [(f"u{i}", "friend", f"u{i + 1}") for i in range(people - 1)]
    return data

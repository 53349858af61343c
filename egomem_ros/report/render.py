"""`egomem report`: one self-contained HTML file that shows what the robot saw and remembered.

An identity timeline (a row per person and stranger: polls coloured known / unknown / nobody, shaded by
confidence, switches marked), the sessions the memory process cut as spans under it (each labelled with
the user it was written to; its transcript on hover, its writes on click), the Level-1 chunk at each
switch and every Level-2 query, and the social graph after the run. Drawn with matplotlib as inline SVG
(text kept as text): it opens offline, with nothing to fetch.
"""
from __future__ import annotations

import html
import io
import re
from pathlib import Path

from .data import ReportData, load_report_data

COLOURS = {"known": "#2e9d4c", "unknown": "#e8912d", "nobody": "#9a9a9a"}
SESSION_COLOURS = ["#3b6fc4", "#b4479b", "#1d9aa5", "#8a6d1f", "#c4463b", "#5b4fc4", "#4f8f2f", "#a05a2c"]
MAX_STRANGER_ROWS = 8


def _rows(data: ReportData) -> list[str]:
    """Row keys, top to bottom: known users (by first appearance), strangers, nobody."""
    known, strangers = [], []
    for p in data.polls:
        if p.status == "known" and p.user_id not in known:
            known.append(p.user_id)
        elif p.status == "unknown" and p.user_id not in strangers:
            strangers.append(p.user_id)
    if len(strangers) > MAX_STRANGER_ROWS:
        strangers = strangers[:MAX_STRANGER_ROWS - 1] + ["tmp-*"]
    return known + strangers + [""]


def _pyplot():
    """matplotlib's pyplot on the file-only backend (a report never opens a window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg"):]


def timeline_svg(data: ReportData) -> str:
    import matplotlib
    plt = _pyplot()

    rows = _rows(data)
    y = {key: len(rows) - i for i, key in enumerate(rows)}       # sessions lane at 0
    ts = [p.t for p in data.polls] + [s.end for s in data.sessions] + [0.0]
    t0 = min([p.t for p in data.polls] + [s.start for s in data.sessions] or [0.0])
    span = max(ts) - t0 or 1.0
    period = min((b.t - a.t for a, b in zip(data.polls, data.polls[1:]) if b.t > a.t), default=2.0)
    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 9}):
        fig, ax = plt.subplots(figsize=(14, 1.2 + 0.42 * (len(rows) + 1)))
        bars: dict[tuple, list] = {}
        for p in data.polls:
            key = p.user_id if p.user_id in y else ("tmp-*" if p.status == "unknown" else "")
            shade = round(0.25 + 0.75 * max(0.0, min(1.0, p.confidence if p.status != "nobody" else 1.0)), 1)
            bars.setdefault((key, p.status, shade), []).append((p.t - t0 - period, period))
        for (key, status, shade), spans in bars.items():
            ax.broken_barh(spans, (y[key] - 0.35, 0.7), facecolors=COLOURS[status], alpha=shade, linewidth=0)
        for c in data.chunks:
            if c.level == 1:
                ax.axvline(c.t - t0, color="#333333", linewidth=0.6, linestyle=":")
        colour = {}
        for s in data.sessions:
            colour.setdefault(s.user_id, SESSION_COLOURS[len(colour) % len(SESSION_COLOURS)])
            bar = ax.broken_barh([(s.start - t0, max(s.end - s.start, 0.2))], (-0.35, 0.7), facecolors=colour[s.user_id])
            bar.set_gid(f"span-{s.id}")
            bar.set_urls([f"#{s.id}"])
            if (s.end - s.start) / span > 0.015:
                ax.text((s.start + s.end) / 2 - t0, 0, s.name, ha="center", va="center", color="white", fontsize=8,
                        clip_on=True)
        ax.set_yticks([0] + [y[k] for k in rows])
        ax.set_yticklabels(["sessions"] + [("other strangers" if k == "tmp-*" else data.name(k)) for k in rows])
        ax.set_ylim(-0.7, len(rows) + 0.7)
        ax.set_xlim(-period, span + period)
        ax.set_xlabel(f"seconds from {t0:.1f} (bag time)")
        ax.grid(axis="x", linewidth=0.3)
        for status, c in COLOURS.items():
            ax.plot([], [], color=c, linewidth=6, label=status)
        ax.plot([], [], color="#333333", linestyle=":", label="switch (Level-1 chunk)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25 if len(rows) < 4 else -0.12), ncol=4, frameon=False)
        svg = _svg(fig)
        plt.close(fig)
    tips = {f"span-{s.id}": f"{s.name}, {s.start - t0:.1f}-{s.end - t0:.1f} s\n{s.transcript}" for s in data.sessions}
    return re.sub(r'(<g id="(span-[^"]+)">)', lambda m: m.group(1) + f"<title>{html.escape(tips.get(m.group(2), ''))}</title>",
                  svg)


def graph_svg(data: ReportData) -> str:
    import matplotlib
    plt = _pyplot()
    import networkx as nx

    g = nx.MultiDiGraph()
    for src, rel, dst in data.relations:
        g.add_edge(src, dst, relation=rel)
    for s in data.sessions:
        g.add_node(s.user_id)
    if not g:
        return "<p>No users.</p>"
    pos = nx.spring_layout(g, seed=0)
    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 9}):
        fig, ax = plt.subplots(figsize=(7, 5))
        nodes = list(g.nodes)
        nx.draw_networkx_nodes(g, pos, nodelist=nodes, ax=ax, node_size=900,
                               node_color=["#dddddd" if n in data.placeholders else "#9cc3e6" for n in nodes])
        nx.draw_networkx_labels(g, pos, {n: data.name(n) for n in nodes}, ax=ax)
        nx.draw_networkx_edges(g, pos, ax=ax, arrows=True, connectionstyle="arc3,rad=0.15", node_size=900)
        labels = {}
        for src, dst, d in g.edges(data=True):
            labels.setdefault((src, dst), []).append(d["relation"])
        nx.draw_networkx_edge_labels(g, pos, {k: ", ".join(v) for k, v in labels.items()}, ax=ax, font_size=8,
                                     connectionstyle="arc3,rad=0.15")
        ax.set_axis_off()
        svg = _svg(fig)
        plt.close(fig)
    return svg


CSS = """body{font-family:sans-serif;margin:1.5em;color:#222} h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;font-size:0.9em} td,th{border:1px solid #ccc;padding:3px 7px;vertical-align:top;text-align:left}
pre{white-space:pre-wrap;margin:0;font-size:0.85em} .counts td:first-child{font-weight:bold} tr:target{background:#fff4c2}
.ADD{color:#2e7d32}.UPDATE{color:#1565c0}.INVALIDATE{color:#c62828}.DELETE{color:#c62828} svg{max-width:100%;height:auto}"""


def render_html(data: ReportData) -> str:
    e = html.escape
    t0 = min([p.t for p in data.polls] + [s.start for s in data.sessions] or [0.0])
    counts = "".join(f"<tr><td>{e(k)}</td><td>{e(str(v))}</td></tr>" for k, v in data.counts.items())
    by_episode: dict[str, list] = {}
    for w in data.writes:
        by_episode.setdefault(w.episode_id, []).append(w)
    sessions = "".join(
        f'<tr id="{e(s.id)}"><td>{e(s.id)}</td><td>{s.start - t0:.1f}-{s.end - t0:.1f}</td><td>{e(s.name)}</td>'
        f"<td><pre>{e(s.transcript)}</pre></td><td>"
        + "<br>".join(f'<span class="{w.op}">{w.op}</span> {e(w.kind)}: {e(w.text)}' for w in by_episode.get(s.id, [])
                      if w.kind != "key")
        + f"<br><small>{sum(w.kind == 'key' for w in by_episode.get(s.id, []))} biometric key(s)</small></td></tr>"
        for s in data.sessions)
    chunks = "".join(
        f"<tr><td>{c.t - t0:.1f}</td><td>{'Level-1' if c.level == 1 else 'Level-2'}</td><td>{e(data.name(c.user_id))}</td>"
        f"<td><pre>{e(c.text) or '<i>(empty: nobody known)</i>'}</pre></td></tr>" for c in data.chunks)
    rels = "".join(f"<tr><td>{e(data.name(d))}</td><td>is {e(data.name(s))}'s</td><td>{e(r)}</td></tr>"
                   for s, r, d in data.relations)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>egomem report: {e(Path(data.bag).name)}</title>
<style>{CSS}</style></head><body>
<h1>egomem report</h1>
<p>bag <code>{e(data.bag)}</code>, memory <code>{e(data.db)}</code></p>
<table class="counts">{counts}</table>
<h2>Identity timeline and sessions</h2>
<p>One row per person and stranger; each poll is a bar, shaded by its confidence. The bottom lane holds the
sessions the memory process cut, labelled with the user each was written to: hover for the transcript,
click for what it wrote.</p>
{timeline_svg(data)}
<h2>Sessions and what they wrote</h2>
<table><tr><th>session</th><th>s</th><th>written to</th><th>transcript</th><th>writes</th></tr>{sessions}</table>
<h2>MemChunks: Level-1 at each switch, Level-2 answers</h2>
<table><tr><th>s</th><th>level</th><th>user</th><th>text</th></tr>{chunks}</table>
<h2>Social graph after the run</h2>
{graph_svg(data)}
<table><tr><th>who</th><th></th><th>relation</th></tr>{rels}</table>
</body></html>
"""


def write_report(bag: Path, db: str | Path, out: Path) -> Path:
    """Render the report of `bag` + `db` into `out` (HTML). Raises FileNotFoundError for missing inputs."""
    out = Path(out)
    out.write_text(render_html(load_report_data(bag, db)), encoding="utf-8")
    return out

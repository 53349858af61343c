"""`egomem demo`: the paper's Emily story on the real offline recognisers and retrieval.

Everything that is computed is computed for real here: faces (dlib) from camera-like frames, voices
(silero-vad + resemblyzer) from espeak-ng speech, the polling/fusion/hysteresis process, Level-1
profile rendering, the `<retr>` stream parser and Level-2 social-graph retrieval. Two parts of EgoMem
are not built yet and the demo says so where it stands in for them: memory management (session
cutting, ASR, fact extraction) — the demo writes the facts the people say — and the dialog model —
the demo feeds the `<retr>` text such a model would emit.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from .config import EgomemConfig
from .memchunk import ApproxTokenCounter
from .retrieval.factory import make_poller
from .retrieval.level2 import Level2Service
from .retrieval.media import load_audio
from .retrieval.poller import IdentityEvent, IdentityPoller
from .retrieval.rerank import LexicalReranker
from .retrieval.retr_protocol import RetrStreamParser
from .retrieval.text_retrieval import TextRetriever
from .store import SqliteStore
from .store.graph import export_graph, social_graph

VOICES = {"A": "en-us+f3", "B": "en-gb+f4"}
LINES = {
    "A": "Hello robot, my name is Emily. I work as a nurse. My colleague Sarah plays a lot of sport.",
    "B": "Hi there, I am Sarah. I love tennis and I play every Sunday. Emily is my colleague at the hospital.",
    "A2": "Hi again, it is Emily. Tell me, does any of my colleagues play tennis?",
}


def sample_faces() -> dict[str, np.ndarray]:
    """Two faces that ship inside installed packages (no download, no test data)."""
    from matplotlib import cbook
    from PIL import Image
    from skimage import data

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = np.asarray(Image.open(f).convert("RGB"))
    return {"A": hopper, "B": data.astronaut()}


def speak(text: str, voice: str, out: Path) -> Path:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng); the demo needs it for voices")
    subprocess.run([exe, "-v", voice, "-s", "150", "-w", str(out), text], check=True, capture_output=True)
    return out


def frame(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 640x480 camera-like frame: the face moved, scaled and lit differently each time."""
    from PIL import Image

    canvas = np.full((480, 640, 3), int(rng.integers(40, 120)), np.uint8)
    side = int(rng.integers(220, 330))
    img = np.asarray(Image.fromarray(face).resize((side, side)), dtype=np.float32) * rng.uniform(0.7, 1.2)
    y, x = int(rng.integers(0, 480 - side)), int(rng.integers(0, 640 - side))
    canvas[y:y + side, x:x + side] = np.clip(img, 0, 255).astype(np.uint8)
    return canvas


def play(poller: IdentityPoller, t: float, face: np.ndarray | None, pcm: np.ndarray, rng, polls: int = 2
         ) -> tuple[float, IdentityEvent, list]:
    """Stream 2-s windows of frames + audio into the poller; return the last event and any chunks."""
    chunks, event = [], None
    for i in range(polls):
        seg = pcm[(i * 32000) % max(1, len(pcm) - 32000):][:32000]
        if face is not None:
            for k in range(4):
                poller.add_frame(t + 0.5 * k + 0.4, frame(face, rng))
        poller.add_audio(t, seg, 16000)
        res = poller.poll(t + 2.0)
        event = res.event
        if res.chunk is not None:
            chunks.append(res.chunk)
        t += 2.0
    return t, event, chunks


def describe(event: IdentityEvent) -> str:
    d = event.observed
    who = {"known": f"known user {event.name} ({event.user_id})", "unknown": f"unknown person {event.user_id}",
           "nobody": "nobody"}[event.status]
    return (f"{who}; this poll: {d.status} conf={d.confidence:.2f} face_dist={event.face_distance:.3f} "
            f"voice_score={event.voice_score:.2f}")


def run_demo(workdir: Path, console: Console) -> None:
    rng = np.random.default_rng(0)
    cfg = EgomemConfig()
    console.rule("egomem demo: the Emily story on real recognisers (offline defaults)")
    faces = sample_faces()
    audio = {k: load_audio(speak(text, VOICES[k[0]], workdir / f"{k}.wav")) for k, text in LINES.items()}
    console.print("scene: faces = matplotlib's grace_hopper.jpg (A) and scikit-image's astronaut (B); "
                  f"voices = espeak-ng {VOICES['A']} (A) and {VOICES['B']} (B)")
    store = SqliteStore(workdir / "memory.db")
    poller = make_poller(store, cfg)
    counter = ApproxTokenCounter()
    try:
        t = 0.0
        names = {"A": "Emily", "B": "Sarah"}
        ids: dict[str, str] = {}
        facts = {"A": [("fact", "works as a nurse")], "B": [("preference", "loves tennis"),
                                                             ("event", "plays tennis every Sunday")]}
        for who in ("A", "B"):
            console.rule(f"person {who} appears and talks")
            console.print(f'  says: "{LINES[who]}"')
            t, event, _ = play(poller, t, faces[who], audio[who], rng)
            console.print(f"  identity: {describe(event)}")
            if event.status != "unknown" or not event.learnable:
                raise RuntimeError(f"expected an unknown, learnable person, got {event.status}")
            # What memory management does for a new person: a profile keyed by the session's embeddings.
            user = store.create_user(names[who])
            poller.add_key(user.id, "face", event.face.embedding)
            poller.add_key(user.id, "voice", event.voice.embedding)
            ids[who] = user.id
            console.print(f"  [green]new user enrolled[/]: {names[who]} ({user.id}) keyed by this session's "
                          "face and voice embeddings")
            console.print("  [yellow]memory management (ASR + extraction) is not built yet: the demo writes "
                          "what the person said[/]")
            for kind, text in facts[who]:
                store.add_fact(user.id, kind, text)
                console.print(f"    + {kind}: {text}")
            t, _, _ = play(poller, t, None, np.zeros(32000, np.float32) + 1e-4, rng, polls=2)  # they leave
        edges = store.add_relation(ids["B"], ids["A"], "colleague")
        console.print("  + relation: " + "; ".join(
            f"{names['A' if r.dst == ids['A'] else 'B']} is {names['A' if r.src == ids['A'] else 'B']}'s {r.relation}"
            for r in edges))

        console.rule("A comes back")
        console.print(f'  says: "{LINES["A2"]}"')
        t, event, chunks = play(poller, t, faces["A"], audio["A2"], rng)
        console.print(f"  identity: {describe(event)}")
        for c in chunks:
            console.rule(f"Level-1 MemChunk v{c.version} for {event.name or 'nobody'} ({c.token_count} tokens)")
            console.print(c.text or "(empty)", markup=False, highlight=False)
        if event.user_id != ids["A"]:
            raise RuntimeError("Emily was not recognised on her return")

        console.rule("the dialog model asks for Level-2 memory")
        console.print("  [yellow]no dialog model runs here: the demo feeds the monologue text it would emit[/]")
        monologue = "Let me think. <retr>\ncolleague\ntennis<answer> "
        console.print(f"  monologue: {monologue!r}")
        parser = RetrStreamParser()
        service = Level2Service(TextRetriever(store, LexicalReranker(), hop_limit=cfg.retrieval.hop_limit), counter,
                                max_tokens=cfg.memchunk.l2_max_tokens, default_k=cfg.retrieval.top_k)
        for ch in monologue:  # streamed one character at a time, as tokens would arrive
            for query in parser.feed(ch):
                console.print(f"  <retr> query: relation={list(query.relation_query)} keywords={list(query.keyword_query)}")
                result = service.retrieve(event.user_id, query.relation_query, query.keyword_query)
                console.rule(f"Level-2 MemChunk v{result.chunk.version} ({result.chunk.token_count} tokens)")
                console.print(result.chunk.text, markup=False, highlight=False)

        console.rule("final social graph")
        graph = social_graph(store)
        table = Table()
        for col in ("user", "id", "facts", "relations"):
            table.add_column(col)
        for u in store.list_users():
            rels = ", ".join(f"{graph.nodes[d]['name']} is their {k}" for _, d, k in graph.out_edges(u.id, keys=True))
            table.add_row(u.display_name, u.id, "; ".join(f.text for f in store.facts(u.id)), rels)
        console.print(table)
        out = export_graph(graph, workdir / "social_graph.json", "json")
        console.print(f"graph written to {out}; memory in {store.path}")
    finally:
        poller.close()
        store.close()

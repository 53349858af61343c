"""`egomem demo`: the paper's Emily story on the real offline recognisers, memory and retrieval.

Everything that is computed is computed for real here: faces (dlib) from camera-like frames, voices
(silero-vad + resemblyzer) from espeak-ng speech, the polling/fusion/hysteresis process, memory
management (rule-based extraction, new profiles keyed by the session's embeddings, relations with
placeholders that merge when the person appears), Level-1 profile rendering, the `<retr>` stream parser
and Level-2 social-graph retrieval. The transcripts come from the scene itself, as an ASR node's topic
would deliver them, and no dialog model runs: the demo feeds the `<retr>` text such a model would emit.
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
from .memory.consolidate import Consolidator, SessionInput
from .memory.extraction import RuleExtractor, Turn
from .memory.manager import majority_identity
from .memory.update_agent import RuleUpdateAgent
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
        memory = Consolidator(store, RuleExtractor(), RuleUpdateAgent(), majority_identity(poller),
                              face_model=poller.face.model, voice_model=poller.voice.model,
                              learn_new_users=cfg.identity.learn_new_users,
                              on_keys_added=lambda uid, mod, emb, key: poller.add_key_to_gallery(uid, mod, emb, key))
        for who in ("A", "B"):
            console.rule(f"person {who} appears and talks")
            console.print(f'  says: "{LINES[who]}"')
            start = t
            t, event, _ = play(poller, t, faces[who], audio[who], rng)
            console.print(f"  identity: {describe(event)}")
            session = SessionInput(f"demo-{who}", start, t, [Turn(speaker="user", text=LINES[who])],
                                   face_embeddings=[event.face.embedding] if event.face else [],
                                   voice_embeddings=[event.voice.embedding] if event.voice else [],
                                   observed_users=[event.user_id] if event.status == "known" else [])
            outcome = memory.process(session)
            ex = outcome.extraction
            console.print(f"  memory management ({ex.source} extractor): name={ex.name!r} facts={ex.facts} "
                          f"preferences={ex.preferences} relations={[(r.name, r.relation) for r in ex.relations]}")
            if outcome.new_user:
                console.print(f"  [green]new user enrolled[/]: {store.get_user(outcome.user_id).display_name} "
                              f"({outcome.user_id}) keyed by this session's face and voice embeddings")
            for e in outcome.events:
                if e.item_kind not in ("key", "summary"):
                    console.print(f"    {e.op:<6} {e.item_kind:<10} {e.text}")
            t, _, _ = play(poller, t, None, np.zeros(32000, np.float32) + 1e-4, rng, polls=2)  # they leave
        ids = {"A": next(u.id for u in store.list_users() if u.name == "Emily")}

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

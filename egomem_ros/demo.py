"""`egomem demo`: the paper's Emily story on the real offline recognisers, memory and retrieval.

Everything that is computed is computed for real here: faces (dlib) from camera-like frames, voices
(silero-vad + resemblyzer) from espeak-ng speech, the polling/fusion/hysteresis process, memory
management (rule-based extraction, new profiles keyed by the session's embeddings, relations with
placeholders that merge when the person appears), Level-1 profile rendering, the `<retr>` stream parser
and Level-2 social-graph retrieval. The bag holds camera and microphone only: what people said is what
Whisper (the bundled tiny.en) hears in the audio. No dialog model runs: the demo feeds the `<retr>` text
such a model would emit.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from .config import config_from_mapping
from .espeak import espeak_wav
from .replay import replay
from .retrieval.media import load_audio
from .scene import DIALOG_TEXT, SceneBag
from .store import SqliteStore
from .store.graph import export_graph, social_graph
from .store.visibility import SHARED_DEFAULT

# Voices and lines chosen so that Whisper tiny.en hears the facts; what it mishears is shown as heard.
VOICES = {"A": "en-us+f3", "B": "en-us+f4"}
# The demo's settings on top of the defaults (the end-to-end ROS test gives the nodes the same): none,
# a session is written when it ends.
DEMO_CONFIG: dict = {}
LINES = {
    "A": "Hi robot, my name is Emily. I work as a nurse. My colleague Sarah plays a lot of sport.",
    "B": "Hi there, I am Sarah. Don't tell Emily, but I am looking for a new job. I love tennis and I play every "
         "Sunday. Emily is my colleague at the hospital.",
    "A2": "I am back. Which of my colleagues plays tennis?",
}


def sample_faces() -> dict[str, np.ndarray]:
    """Two faces that ship inside installed packages (no download, no test data). The astronaut's portrait
    is cut to her head and shoulders, as a robot's camera sees a person talking to it: whole, her face is
    too small in the frame for dlib's detector, which then found it in 23 % of the scene's frames (100 %
    cut), and a person heard but hardly ever seen is identified by voice alone."""
    from matplotlib import cbook
    from PIL import Image
    from skimage import data

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = np.asarray(Image.open(f).convert("RGB"))
    return {"A": hopper, "B": data.astronaut()[10:240, 110:340]}


def frame(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 640x480 camera-like frame: the face moved, scaled and lit differently each time."""
    from PIL import Image

    canvas = np.full((480, 640, 3), int(rng.integers(40, 120)), np.uint8)
    side = int(rng.integers(220, 330))
    img = np.asarray(Image.fromarray(face).resize((side, side)), dtype=np.float32) * rng.uniform(0.7, 1.2)
    y, x = int(rng.integers(0, 480 - side)), int(rng.integers(0, 640 - side))
    canvas[y:y + side, x:x + side] = np.clip(img, 0, 255).astype(np.uint8)
    return canvas


def _speech(pcm: np.ndarray, seconds: float) -> np.ndarray:
    """An utterance padded with near-silence to fill `seconds`."""
    out = np.full(int(seconds * 16000), 1e-4, np.float32)
    out[16000:16000 + len(pcm)] = pcm[:len(out) - 16000]
    return out


def build_scene(path: Path, workdir: Path, rng: np.random.Generator) -> None:
    """A: 0-10 s, nobody, B: 18-32 s, nobody, A again: 40-50 s asking about her colleagues."""
    faces = sample_faces()
    audio = {k: load_audio(espeak_wav(text, workdir / f"{k}.wav", VOICES[k[0]])) for k, text in LINES.items()}
    plan = [(0.0, "A", "A", 10.0), (18.0, "B", "B", 14.0), (40.0, "A", "A2", 10.0)]   # (start, face, line, seconds)
    with SceneBag(path) as bag:
        t = 0.0
        for start, who, line, seconds in plan:
            while t < start:  # empty room: background frames and near-silence
                bag.image(t + 0.25, np.full((480, 640, 3), 70, np.uint8))
                bag.audio(t, np.full(8000, 1e-4, np.float32))
                t += 0.5
            pcm = _speech(audio[line], seconds)
            for i in range(int(seconds * 2)):
                bag.image(t + 0.25, frame(faces[who], rng), compressed=i % 2 == 1)
                bag.audio(t, pcm[i * 8000:(i + 1) * 8000])
                t += 0.5
            if line == "A2":   # the robot answers once her question has been heard: a turn of her session
                bag.text(DIALOG_TEXT, start + 5.0, "Let me think. <retr>\ncolleague\ntennis<answer> ")
        for _ in range(8):
            bag.image(t + 0.25, np.full((480, 640, 3), 70, np.uint8))
            bag.audio(t, np.full(8000, 1e-4, np.float32))
            t += 0.5


def run_demo(workdir: Path, console: Console) -> None:
    cfg = config_from_mapping(DEMO_CONFIG)
    console.rule("egomem demo: the Emily story on real recognisers (offline defaults)")
    console.print("scene: faces = matplotlib's grace_hopper.jpg (A) and scikit-image's astronaut (B), moved, scaled "
                  f"and lit differently per frame; voices = espeak-ng {VOICES['A']} (A) and {VOICES['B']} (B); "
                  "camera and microphone only: the words are what Whisper hears")
    bag = workdir / "scene_bag"
    build_scene(bag, workdir, np.random.default_rng(0))
    console.print(f"scene bag written: {bag} (A talks 0-10 s, B 18-32 s, A again 40-50 s)")
    console.print("[yellow]no dialog model runs here: the scene's /egomem/dialog/text holds the <retr> request "
                  "such a model would emit[/]")

    def on_event(kind: str, text: str) -> None:
        titles = {"identity": "identity", "l1": "Level-1 MemChunk", "memory": "memory management",
                  "l2": "Level-2 retrieval"}
        if kind in ("l1", "l2"):
            console.rule(titles[kind])
            console.print(text, markup=False, highlight=False)
        else:
            console.print(f"[bold]{titles.get(kind, kind)}[/]: {text}", highlight=False)

    db = workdir / "memory.db"
    summary = replay(bag, workdir / "out_bag", cfg, db=db, on_event=on_event)
    console.rule("final social graph")
    with SqliteStore(db) as store:
        graph = social_graph(store)
        table = Table()
        for col in ("user", "id", "memory", "relations"):
            table.add_column(col)
        names = {x.id: x.display_name for x in store.list_users()}
        for u in store.list_users():
            rels = ", ".join(f"{graph.nodes[d]['name']} is their {k}" for _, d, k in graph.out_edges(u.id, keys=True))
            items = [f.text + ("" if f.visibility == SHARED_DEFAULT else f" ({f.visibility.describe(names)})")
                     for f in store.facts(u.id)]
            table.add_row(u.display_name, u.id, "; ".join(items), rels)
        console.print(table)
        out = export_graph(graph, workdir / "social_graph.json", "json")
    queries = "1 <retr> query" if summary.l2_queries == 1 else f"{summary.l2_queries} <retr> queries"
    console.print(f"{summary.polls} polls, {summary.switches} identity switches, {summary.sessions_written} sessions "
                  f"written, {summary.users_created} users enrolled, {queries}")
    from .report import write_report

    report = write_report(Path(summary.out), db, workdir / "report.html")
    console.print(f"output bag (open in Foxglove): {summary.out}; graph: {out}; memory: {db}")
    console.print(f"report (open in a browser): {report}")

"""What every fault case is made of: the steps a user runs, what they must see, and the check that
nothing was lost. The cases are in `cases_input.py` and `cases_memory.py`; `test_fault_corpus.py` runs them."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SEED_FACT = "works as a nurse"
FACE_MODEL = "dlib_resnet_v1"


@dataclass
class Step:
    """One `egomem` command and what a user must see from it."""
    argv: list[str]
    exit: int = 2
    says: tuple[str, ...] = ()          # words the output must hold (whitespace-folded, stdout + stderr)
    never_says: tuple[str, ...] = ()    # e.g. a password
    env: dict[str, str] = field(default_factory=dict)
    within_s: float = 120.0             # a command that hangs is a failure too


@dataclass
class Case:
    name: str                                   # "<kind>/<what>"
    steps: list[Step]
    lost: Callable[[], list[str]] = lambda: []  # what was lost or left behind; empty when nothing
    issue: str = ""                             # the issue item it reproduces, e.g. "#40.5"
    during: Callable[[], contextlib.AbstractContextManager] | None = None  # something held while the steps run
    together: bool = False                      # the steps run at once (two robots), not one after the other


class Kit(Protocol):
    """What a case builder gets: a folder of its own, bad LLM endpoints, PostgreSQL databases."""
    dir: Path

    def llm(self, answers: list[tuple[int, str, float]]) -> str: ...   # the endpoint's base URL
    def pg(self) -> str: ...                                            # a new, empty database's URL


CASES: dict[str, Callable[[Kit], Case]] = {}   # filled by cases_input.py and cases_memory.py


def case(name: str) -> Callable[[Callable[[Kit], Case]], Callable[[Kit], Case]]:
    def register(build: Callable[[Kit], Case]) -> Callable[[Kit], Case]:
        CASES[name] = build
        return build
    return register


@dataclass
class Outcome:
    step: Step
    returncode: int
    out: str
    seconds: float


def run_step(step: Step, cwd: Path) -> Outcome:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **step.env}
    t0 = time.monotonic()
    try:
        r = subprocess.run([sys.executable, "-m", "egomem_ros.cli.main", *step.argv], cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=step.within_s)
        return Outcome(step, r.returncode, r.stdout + "\n" + r.stderr, time.monotonic() - t0)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(errors="replace")
        return Outcome(step, -9, out + f"\n[still running after {step.within_s} s: killed]", time.monotonic() - t0)


def problems(o: Outcome) -> list[str]:
    """The corpus's rule for every command: the exit it should have, the words a user needs, no
    traceback (also none at the interpreter's exit), no secret echoed."""
    flat = " ".join(o.out.split())
    found = []
    if o.returncode != o.step.exit:
        found.append(f"exit {o.returncode}, want {o.step.exit}")
    for marker in ("Traceback (most recent call last)", "Exception ignored"):
        if marker in o.out:
            found.append(f"printed {marker!r}")
    found += [f"does not say {w!r}" for w in o.step.says if w not in flat]
    found += [f"prints {w!r}" for w in o.step.never_says if w in flat]
    return found


# ---- inputs the cases share -------------------------------------------------------------------------------

def quiet_bag(path: Path, *, seconds: float = 4.0, extra: Callable | None = None) -> Path:
    """A room with nobody in it: grey frames and near-silence, plus whatever `extra(bag)` writes."""
    from egomem_ros.scene import SceneBag

    with SceneBag(path) as bag:
        for i in range(int(seconds * 2)):
            bag.image(i * 0.5, np.full((60, 80, 3), 100, np.uint8))
            bag.audio(i * 0.5, np.full(8000, 1e-3, np.float32))
        if extra:
            extra(bag)
    return path


def face_vector(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return v / np.linalg.norm(v) * 0.6


def seed_memory(db: str) -> dict[str, str]:
    """Emily (a face key and one fact) and Sarah, her colleague: what every case must leave standing."""
    from egomem_ros.store import open_store

    store = open_store(db)
    try:
        emily, sarah = store.create_user("Emily"), store.create_user("Sarah")
        store.add_key(emily.id, "face", FACE_MODEL, face_vector(1))
        fact = store.add_fact(emily.id, "fact", SEED_FACT)
        store.add_relation(sarah.id, emily.id, "colleague")
        return {"Emily": emily.id, "Sarah": sarah.id, "fact": fact.id}
    finally:
        store.close()


def memory_lost(db: str, *, forgotten: tuple[str, ...] = ()) -> list[str]:
    """Emily and Sarah are there with Emily's fact (in her history, at least), unless they were meant to be
    forgotten."""
    from egomem_ros.store import open_store

    store = open_store(db)
    try:
        users = {u.name: u for u in store.list_users()}
        lost = [f"{n} is gone" for n in ("Emily", "Sarah") if n not in forgotten and n not in users]
        lost += [f"{n} is still there" for n in forgotten if n in users]
        history = [f.text for f in store.facts(users["Emily"].id, include_invalid=True)] if "Emily" in users else []
        if "Emily" in users and "Emily" not in forgotten and SEED_FACT not in history:
            lost.append(f"Emily lost {SEED_FACT!r}")
        return lost
    finally:
        store.close()


def spooled_session(sid: str, text: str, *, face_seed: int | None = None, start: float = 0.0) -> str:
    """A session as it waits in the spool (`<db>.sessions/<id>.json`)."""
    from egomem_ros.memory.consolidate import SessionInput
    from egomem_ros.memory.extraction import Turn

    faces = [face_vector(face_seed)] if face_seed is not None else []
    return SessionInput(sid, start, start + 5, [Turn(speaker="user", text=text)], face_embeddings=faces).to_json()


def spool_lost(folder: Path, sid: str, *, waits: bool) -> list[str]:
    """A session that could not be written either still waits (`.json`) or was set aside with its reason
    (`.bad` + `.reason`): never deleted, never both."""
    waiting, bad, reason = (folder / f"{sid}{s}" for s in (".json", ".bad", ".reason"))
    if waits:
        return [] if waiting.exists() and not bad.exists() else [f"{sid} no longer waits in {folder}"]
    if waiting.exists():
        return [f"{sid} still waits in front of every later session"]
    return [] if bad.exists() and reason.exists() else [f"{sid} was neither kept nor set aside with a reason"]


def bag_closed(out: Path) -> list[str]:
    """An output bag that was started is a readable bag (its metadata.yaml written), or not there."""
    return [] if not out.exists() or (out / "metadata.yaml").exists() else [f"{out} has no metadata.yaml"]


def pg_spool(url: str, xdg: Path) -> Path:
    """Where a robot whose XDG data dir is `xdg` keeps the sessions waiting for the PostgreSQL memory `url`."""
    from egomem_ros.config import EgomemConfig
    from egomem_ros.memory.locations import spool_dir

    before = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(xdg)
    try:
        folder = spool_dir(EgomemConfig(), url)
    finally:
        if before is None:
            del os.environ["XDG_DATA_HOME"]
        else:
            os.environ["XDG_DATA_HOME"] = before
    folder.mkdir(parents=True, mode=0o700)
    return folder


def user_names(db: str) -> list[str]:
    from egomem_ros.store import open_store

    store = open_store(db)
    try:
        return [u.name for u in store.list_users()]
    finally:
        store.close()


def llm_config(path: Path, url: str, *, update_agent: str = "rules", timeout_s: float = 2.0) -> Path:
    path.write_text("memory:\n  extractor: llm\n  update_agent: " + update_agent + "\n"
                    f"  llm: {{base_url: '{url}', model: m, timeout_s: {timeout_s}, retries: 0}}\n")
    return path


# ---- an OpenAI-compatible endpoint that answers badly -------------------------------------------------------

class BadLLM:
    """Answers each chat request from `answers` in turn, the last one for ever after. An answer is
    (HTTP status, body text, seconds per byte); a body that is not a chat completion is sent as it is."""

    def __init__(self, answers: list[tuple[int, str, float]]):
        self.answers, self.calls = answers, 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, body, per_byte = outer.answers[min(outer.calls, len(outer.answers) - 1)]
                outer.calls += 1
                data = body.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if per_byte:
                        for b in data:
                            self.wfile.write(bytes([b]))
                            self.wfile.flush()
                            time.sleep(per_byte)
                    else:
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def chat(content: str | dict) -> str:
    """A chat completion whose message content is `content` (JSON-encoded when it is a dict)."""
    text = content if isinstance(content, str) else json.dumps(content)
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]})


@contextlib.contextmanager
def postgres_going_away(url: str, every_s: float = 0.3) -> Iterator[None]:
    """The server ends every connection to the database `url` names, again and again (a restart, a
    failover), while the steps run."""
    import psycopg

    stop = threading.Event()
    from urllib.parse import urlsplit

    database = urlsplit(url).path.lstrip("/")

    def kill() -> None:
        with psycopg.connect(url, autocommit=True) as admin:
            while not stop.wait(every_s):
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))
    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


@contextlib.contextmanager
def held_postgres(url: str, statements: list[str]) -> Iterator[None]:
    """Another session on the server that runs `statements` and then sits idle in its transaction."""
    import psycopg

    conn = psycopg.connect(url)
    try:
        for s in statements:
            conn.execute(s)
        yield
    finally:
        conn.close()

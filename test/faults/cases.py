"""The fault corpus: every case writes its own bad input at test time (corrupt media, broken bags, bad
configs, malformed spool files, store faults, bad LLM answers) and says what a user must see.

`CASES` maps a case's name to its builder; a builder gets a `Kit` (a folder of its own, a bad LLM
endpoint, a PostgreSQL database) and returns the `Case`. Rules: bad input exits 2 with a one-line reason,
sessions that wait for a retry exit 3, nothing prints a traceback, nothing is lost.
"""
from __future__ import annotations

import sqlite3
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from faultkit import (Case, Step, bag_closed, chat, llm_config, memory_lost, pg_spool, quiet_bag, seed_memory,
                      spool_lost, spooled_session, user_names)


class Kit(Protocol):
    dir: Path

    def llm(self, answers: list[tuple[int, str, float]]) -> str: ...   # the endpoint's base URL
    def pg(self) -> str: ...                                            # a new, empty database's URL


CASES: dict[str, Callable[[Kit], Case]] = {}


def case(name: str) -> Callable[[Callable[[Kit], Case]], Callable[[Kit], Case]]:
    def register(build: Callable[[Kit], Case]) -> Callable[[Kit], Case]:
        CASES[name] = build
        return build
    return register


# ---- corrupt media, given to `egomem enroll` beside a memory that must stay as it is -----------------------

def png_header(width: int, height: int) -> bytes:
    """A PNG that declares `width` x `height` and holds almost nothing: a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))


def wav(path: Path, samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    import soundfile as sf

    sf.write(path, samples, rate, subtype=subtype)
    return path


MEDIA: dict[str, tuple[str, Callable[[Path], bytes | None], str, str]] = {
    # name: (file name, its bytes (None: written by the function), flag, what the user reads)
    "truncated-jpeg": ("face.jpg", lambda d: _jpeg()[:600], "--face", "cannot decode image"),
    "empty-image": ("face.jpg", lambda d: b"", "--face", "missing or empty"),
    "text-named-jpeg": ("face.jpg", lambda d: b"hello\n", "--face", "cannot decode image"),
    "png-bomb-144mp": ("face.png", lambda d: png_header(12_000, 12_000), "--face", "pixels"),
    "png-60mp": ("face.png", lambda d: png_header(10_000, 6_000), "--face", "pixels"),
    "audio-383993hz": ("voice.wav", lambda d: wav(d / "voice.wav", np.zeros(38_399, np.float32), 383_993) and None,
                       "--voice", "outside 1,000-192,000 Hz"),
    "audio-nan": ("voice.wav", lambda d: wav(d / "voice.wav", np.r_[np.zeros(8000), np.nan].astype(np.float32), 16_000,
                                              "FLOAT") and None, "--voice", "NaN"),
    "truncated-wav": ("voice.wav", lambda d: wav(d / "v.wav", np.zeros(8000, np.float32), 16_000).read_bytes()[:30],
                      "--voice", "cannot decode audio"),
    "empty-wav": ("voice.wav", lambda d: b"", "--voice", "missing or empty"),
}


def _jpeg() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (120, 120, 3), np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _media_case(name: str) -> Callable[[Kit], Case]:
    file, content, flag, reason = MEDIA[name]

    def build(kit: Kit) -> Case:
        db = str(kit.dir / "memory.db")
        seed_memory(db)
        data = content(kit.dir)
        if data is not None:
            (kit.dir / file).write_bytes(data)
        return Case(f"media/{name}", [Step(["enroll", "--name", "Eve", flag, kit.dir / file, "--db", db],
                                           says=("nothing usable to enrol", reason))],
                    lambda: memory_lost(db), issue="#40 low" if name in ("png-bomb-144mp", "audio-383993hz") else "")
    return build


for _name in MEDIA:
    case(f"media/{_name}")(_media_case(_name))


# ---- broken bags, given to `egomem replay` ----------------------------------------------------------------

@case("bag/not-a-bag")
def _(kit: Kit) -> Case:
    (kit.dir / "junk").mkdir()
    (kit.dir / "junk" / "junk.mcap").write_bytes(b"not a bag at all")
    out = kit.dir / "out"
    return Case("bag/not-a-bag", [Step(["replay", kit.dir / "junk", "--out", out], says=("cannot open bag",))],
                lambda: [f"{p} was created" for p in (out, out.with_suffix(".db")) if p.exists()])


@case("bag/empty-folder")
def _(kit: Kit) -> Case:
    (kit.dir / "empty").mkdir()
    return Case("bag/empty-folder", [Step(["replay", kit.dir / "empty", "--out", kit.dir / "out"], says=("cannot open bag",))])


def _cut(kit: Kit, keep: float) -> Path:
    """A recording whose file was cut (a full disk, a pulled power cord) at `keep` of its length. Frames
    of noise, so that the bag spans several chunks."""
    from egomem_ros.scene import SceneBag

    rng = np.random.default_rng(0)
    with SceneBag(kit.dir / "bag") as bag:
        for i in range(24):
            bag.image(i * 0.5, rng.integers(0, 255, (240, 320, 3), np.uint8))
            bag.audio(i * 0.5, np.full(8000, 1e-3, np.float32))
    mcap = next((kit.dir / "bag").glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: int(mcap.stat().st_size * keep)])
    return kit.dir / "bag"


@case("bag/cut-in-half")
def _(kit: Kit) -> Case:
    """What was recorded before the cut is replayed, and the summary says the bag was truncated."""
    bag, out = _cut(kit, 0.5), kit.dir / "out"
    return Case("bag/cut-in-half", [Step(["replay", bag, "--out", out, "--quiet"], exit=0, says=("bag truncated",))],
                lambda: bag_closed(out))


@case("bag/cut-before-its-first-chunk")
def _(kit: Kit) -> Case:
    bag, out = _cut(kit, 0.02), kit.dir / "out"
    return Case("bag/cut-before-its-first-chunk", [Step(["replay", bag, "--out", out], says=("looks truncated",))],
                lambda: [f"{out} was created"] if out.exists() else [])


@case("bag/corrupt-messages")
def _(kit: Kit) -> Case:
    """Each bad message is refused and counted; the rest of the bag is replayed (#40 low: 144 MP, 383,993 Hz)."""
    from egomem_ros import msg_fields as F
    from egomem_ros.scene import AUDIO, AUDIO_INFO, CAMERA, COMPRESSED

    def bad(bag) -> None:
        fields = F.image_fields(np.full((60, 80, 3), 9, np.uint8), 4.1, "camera")
        fields["data"] = fields["data"][:100]                                   # fewer bytes than height x step
        bag._write(CAMERA, "sensor_msgs/msg/Image", 4.1, fields)
        for t, data in ((4.2, b"\xff\xd8garbage"), (4.3, png_header(12_000, 12_000))):
            bag._write(COMPRESSED, "sensor_msgs/msg/CompressedImage", t,
                       {"header": F.header(t, "camera"), "format": "png", "data": np.frombuffer(data, np.uint8)})
        bag._write(AUDIO_INFO, "audio_common_msgs/msg/AudioInfo", 4.4,
                   {"channels": 1, "sample_rate": 383_993, "sample_format": "S16LE", "bitrate": 0, "coding_format": "WAVE"})
        for t in (4.5, 5.0):
            bag._write(AUDIO, "audio_common_msgs/msg/AudioDataStamped", t,
                       {"header": F.header(t, "mic"), "audio": {"data": F.pcm16(np.zeros(8000, np.float32)).view(np.uint8)}})

    bag = quiet_bag(kit.dir / "bag", extra=bad)
    out = kit.dir / "out"
    return Case("bag/corrupt-messages", [Step(["replay", bag, "--out", out, "--quiet"], exit=0,
                                              says=("rejected 1 x /camera/image_raw: image data too short",
                                                    "rejected 2 x /camera/image_raw/compressed", "pixels",
                                                    "383993 Hz is outside"))],
                lambda: bag_closed(out), issue="#40 low")


@case("bag/clock-jump")
def _(kit: Kit) -> Case:
    """An hour without messages, then a stamp decades away (an NTP step): no poll storm, a note (#40.4)."""
    def later(bag) -> None:
        for start in (3600.0, 1.8e9):
            for i in range(4):
                bag.image(start + i * 0.5, np.full((60, 80, 3), 100, np.uint8))
    bag = quiet_bag(kit.dir / "bag", extra=later)
    out = kit.dir / "out"

    def lost() -> list[str]:
        size = sum(f.stat().st_size for f in out.iterdir()) if out.exists() else 0
        return bag_closed(out) + ([f"the output is {size / 1e6:.0f} MB: a poll storm"] if size > 20e6 else [])
    return Case("bag/clock-jump", [Step(["replay", bag, "--out", out, "--quiet"], exit=0, within_s=90,
                                        says=("clock jump", "without messages"))], lost, issue="#40.4")


@case("bag/negative-stamps")
def _(kit: Kit) -> Case:
    from egomem_ros.scene import SceneBag

    with SceneBag(kit.dir / "bag", mcap=False) as bag:                   # sqlite3 bags can hold them
        for i in range(8):
            bag.image(-1 + i * 0.5, np.full((60, 80, 3), 100, np.uint8))
    out = kit.dir / "out"
    return Case("bag/negative-stamps", [Step(["replay", kit.dir / "bag", "--out", out, "--quiet"], exit=0,
                                             says=("2 x /camera/image_raw: negative timestamp",))], lambda: bag_closed(out))


# ---- bad configs and paths ---------------------------------------------------------------------------------

CONFIGS: dict[str, tuple[bytes, str, str]] = {
    # name: (file content, what the user reads, issue)
    "binary": (bytes(range(256)), "not a text file", ""),
    "yaml-syntax": (b"memory: {max_gap_s: [1, 2\n", "not valid YAML", ""),
    "infinite-number": (b"memory: {max_gap_s: .inf}\n", "memory.max_gap_s", ""),
    "unknown-key": (b"memory: {max_gap_seconds: 2}\n", "max_gap_seconds", ""),
    "wrong-type": (b"identity: {poll_period_s: fast}\n", "identity.poll_period_s", ""),
    "poll-period-1e-9": (b"identity: {poll_period_s: 1.0e-9}\n", "poll_period_s", "#40.4"),
    "params-a-list": (b"memory_node:\n  ros__parameters: [1, 2]\n", "ros__parameters must be a mapping", "#40 low"),
    "params-a-string": (b"memory_node:\n  ros__parameters: abc\n", "ros__parameters must be a mapping", "#40 low"),
    "nested-100000-deep": (b"[" * 100_000 + b"]" * 100_000 + b"\n", "nested too deeply", "#40 low"),
    "password-in-url-query": (b"store: {url: 'postgresql://egomem@/egomem?host=/x&%70assword=hunter2'}\n",
                              "holds a password", "#40.7"),
    "password-in-url": (b"store: {url: 'postgresql://egomem:hunter2@db/egomem'}\n", "holds a password", "#40.7"),
}


def _config_case(name: str) -> Callable[[Kit], Case]:
    content, reason, issue = CONFIGS[name]

    def build(kit: Kit) -> Case:
        db = str(kit.dir / "memory.db")
        seed_memory(db)
        (kit.dir / "c.yaml").write_bytes(content)
        return Case(f"config/{name}", [Step(["users", "--db", db, "--config", kit.dir / "c.yaml"], says=(reason,),
                                            never_says=("hunter2",))], lambda: memory_lost(db), issue=issue)
    return build


for _name in CONFIGS:
    case(f"config/{_name}")(_config_case(_name))


@case("config/missing-file")
def _(kit: Kit) -> Case:
    return Case("config/missing-file", [Step(["users", "--config", kit.dir / "no.yaml"], says=("no.yaml",))])


MISSING_MODEL_FILES = {
    "missing-cohort-file": ("identity: {voice: {cohort_path: /no/cohort.npy}}", "#40.16"),
    "missing-tagger-checkpoint": ("memory: {segmenter: tagger, trigger_checkpoint: /no/tagger.pt}", ""),
    "missing-tokenizer": ("memchunk: {tokenizer: sentencepiece, tokenizer_path: /no/tok.model}", ""),
}


def _missing_file_case(name: str) -> Callable[[Kit], Case]:
    """A config naming a file that is not there: the clear error from replay, no traceback at the
    interpreter's exit from a half-started face worker (#40.16), and no empty memory left behind."""
    config, issue = MISSING_MODEL_FILES[name]

    def build(kit: Kit) -> Case:
        (kit.dir / "c.yaml").write_text(config + "\n")
        bag, out = quiet_bag(kit.dir / "bag"), kit.dir / "out"
        return Case(f"config/{name}", [Step(["replay", bag, "--out", out, "--config", kit.dir / "c.yaml", "--quiet"],
                                            says=("/no/",))],
                    lambda: [f"{out.with_suffix('.db')} was created"] if out.with_suffix(".db").exists() else [], issue=issue)
    return build


for _name in MISSING_MODEL_FILES:
    case(f"config/{_name}")(_missing_file_case(_name))


@case("db/password-on-the-command-line")
def _(kit: Kit) -> Case:
    url = "postgresql://egomem@/egomem?host=" + str(kit.dir) + "&password=hunter2"
    return Case("db/password-on-the-command-line", [Step(["users", "--db", url], never_says=("hunter2",))],
                issue="#40.7")


@case("path/out-name-too-long")
def _(kit: Kit) -> Case:
    bag = quiet_bag(kit.dir / "bag")
    return Case("path/out-name-too-long", [Step(["replay", bag, "--out", kit.dir / ("x" * 300)],
                                                says=("File name too long",))], issue="#40 low")


@case("path/graph-out-is-a-folder")
def _(kit: Kit) -> Case:
    db = str(kit.dir / "memory.db")
    seed_memory(db)
    (kit.dir / "d").mkdir()
    return Case("path/graph-out-is-a-folder", [Step(["graph", "--out", kit.dir / "d", "--db", db], says=("is a directory",))],
                lambda: memory_lost(db))


# ---- store faults --------------------------------------------------------------------------------------------

def _sqlite_fault(kit: Kit, sql: str) -> str:
    db = str(kit.dir / "memory.db")
    seed_memory(db)
    with sqlite3.connect(db) as c:
        c.execute(sql)
    return db


@case("store/newer-schema")
def _(kit: Kit) -> Case:
    db = _sqlite_fault(kit, "PRAGMA user_version=99")
    return Case("store/newer-schema", [Step(["users", "--db", db], says=("newer than this egomem_ros",))])


@case("store/table-missing")
def _(kit: Kit) -> Case:
    db = _sqlite_fault(kit, "DROP TABLE facts")
    return Case("store/table-missing", [Step(["users", "--db", db], says=("no such table: facts",))])


@case("store/not-a-database")
def _(kit: Kit) -> Case:
    (kit.dir / "memory.db").write_bytes(b"this is not a database\n" * 100)
    before = (kit.dir / "memory.db").read_bytes()
    return Case("store/not-a-database", [Step(["users", "--db", kit.dir / "memory.db"], says=("memory.db",))],
                lambda: [] if (kit.dir / "memory.db").read_bytes() == before else ["the file was changed"])


@case("store/replay-into-a-misspelt-memory")
def _(kit: Kit) -> Case:
    bag = quiet_bag(kit.dir / "bag")
    typo = kit.dir / "mmeory.db"
    return Case("store/replay-into-a-misspelt-memory",
                [Step(["replay", bag, "--out", kit.dir / "o", "--db", typo], says=("does not exist",))],
                lambda: [f"{typo} was created"] if typo.exists() else [])


@case("store/postgresql-unreachable")
def _(kit: Kit) -> Case:
    return Case("store/postgresql-unreachable", [Step(["users", "--db", "postgresql://egomem@127.0.0.1:9/egomem"],
                                                      says=("127.0.0.1",))])


@case("store/postgresql-snapshot-holds-the-rows")
def _(kit: Kit) -> Case:
    """Another session's snapshot keeps the old rows: forget says so and exits non-zero (#40.1)."""
    url = kit.pg()
    seed_memory(url)
    import faultkit

    return Case("store/postgresql-snapshot-holds-the-rows",
                [Step(["forget", "Emily", "--db", url, "--yes"], says=("another process is reading", "compact"))],
                lambda: memory_lost(url, forgotten=("Emily",)), issue="#40.1",
                during=lambda: faultkit.held_postgres(url, ["BEGIN ISOLATION LEVEL REPEATABLE READ",
                                                            "SELECT count(*) FROM pg_class"]))


@case("store/postgresql-lock-held")
def _(kit: Kit) -> Case:
    """A connection idle in a transaction holds Emily's row: forget waits a bounded time, then says why (#40.8)."""
    url = kit.pg()
    ids = seed_memory(url)
    import faultkit

    return Case("store/postgresql-lock-held",
                [Step(["forget", "Emily", "--db", url, "--yes"], says=("lock",), within_s=60)],
                lambda: memory_lost(url), issue="#40.8",
                during=lambda: faultkit.held_postgres(url, ["BEGIN", f"SELECT * FROM users WHERE id = '{ids['Emily']}' "
                                                            "FOR UPDATE"]))


@case("store/postgresql-restarts-during-a-replay")
def _(kit: Kit) -> Case:
    """The server drops every connection, again and again: a clear error, the output bag closed, and the
    waiting session still waits (#40.12)."""
    import faultkit

    url, xdg = kit.pg(), kit.dir / "robot"
    seed_memory(url)
    folder = pg_spool(url, xdg)
    (folder / "s1.json").write_text(spooled_session("s1", "Hi robot, my name is Anna. I work as a pilot.", face_seed=9))
    out = kit.dir / "out"

    def lost() -> list[str]:
        written = "Anna" in user_names(url)
        return memory_lost(url) + bag_closed(out) + ([] if written else spool_lost(folder, "s1", waits=True))
    return Case("store/postgresql-restarts-during-a-replay",
                [Step(["replay", quiet_bag(kit.dir / "bag", seconds=20), "--out", out, "--db", url, "--quiet"],
                      says=("connection",), env={"XDG_DATA_HOME": str(xdg)})],
                lost, issue="#40.12", during=lambda: faultkit.postgres_going_away(url))


@case("store/two-robots-write-one-session-at-once")
def _(kit: Kit) -> Case:
    """Two replays of the same recording on one PostgreSQL memory, at once: one writes the session, the
    other says it is a duplicate; one Anna (#40.13)."""
    url = kit.pg()
    seed_memory(url)
    session = spooled_session("s1", "Hi robot, my name is Anna. I work as a pilot.", face_seed=9)
    steps = []
    for robot in ("a", "b"):
        xdg = kit.dir / f"robot-{robot}"
        (pg_spool(url, xdg) / "s1.json").write_text(session)
        steps.append(Step(["replay", quiet_bag(kit.dir / f"bag-{robot}"), "--out", kit.dir / f"out-{robot}", "--db", url,
                           "--quiet"], exit=0, env={"XDG_DATA_HOME": str(xdg)}))
    return Case("store/two-robots-write-one-session-at-once", steps,
                lambda: memory_lost(url) + ([] if user_names(url).count("Anna") == 1 else [f"users: {user_names(url)}"]),
                issue="#40.13", together=True)


@case("spool/one-spool-per-postgresql-database")
def _(kit: Kit) -> Case:
    """A session waiting for database x1 (its LLM failed) is never written into x2 (#40.2)."""
    x1, x2, xdg = kit.pg(), kit.pg(), kit.dir / "robot"
    seed_memory(x1)
    folder = pg_spool(x1, xdg)
    (folder / "s1.json").write_text(spooled_session("s1", "Hi robot, my name is Anna. I work as a pilot.", face_seed=9))
    failing = llm_config(kit.dir / "llm.yaml", kit.llm([(500, "Internal Server Error", 0)]))
    env = {"XDG_DATA_HOME": str(xdg)}
    bag = quiet_bag(kit.dir / "bag")
    return Case("spool/one-spool-per-postgresql-database",
                [Step(["replay", bag, "--out", kit.dir / "o1", "--db", x1, "--config", failing, "--quiet"], exit=3,
                      says=("wait in the spool",), env=env),
                 Step(["replay", bag, "--out", kit.dir / "o2", "--db", x2, "--quiet"], exit=0, env=env)],
                lambda: (memory_lost(x1) + spool_lost(folder, "s1", waits=True)
                         + (["x2 holds Anna"] if "Anna" in user_names(x2) else [])), issue="#40.2")


@case("store/forget-a-name-made-of-common-words")
def _(kit: Kit) -> Case:
    """Forgetting "Will Art" leaves Emily's "will" and "art" alone (#40.6)."""
    from egomem_ros.store import open_store

    db = str(kit.dir / "memory.db")
    ids = seed_memory(db)
    store = open_store(db)
    said = ["works at the will registry", "loves the art museum"]
    for text in said:
        store.add_fact(ids["Emily"], "fact", text)
    store.create_user("Will Art")
    store.close()

    def lost() -> list[str]:
        store = open_store(db)
        texts = [f.text for f in store.facts(ids["Emily"])]
        store.close()
        return memory_lost(db) + [f"Emily's {t!r} was rewritten" for t in said if t not in texts]
    return Case("store/forget-a-name-made-of-common-words",
                [Step(["forget", "Will Art", "--db", db, "--yes"], exit=0, says=("forgot Will Art",))], lost, issue="#40.6")


@case("store/forget-deletes-the-report-that-names-the-person")
def _(kit: Kit) -> Case:
    """`replay --report` wrote an HTML file naming Emily; `forget Emily` deletes it and says so (#40.14)."""
    db = str(kit.dir / "memory.db")
    seed_memory(db)
    report = kit.dir / "report.html"
    return Case("store/forget-deletes-the-report-that-names-the-person",
                [Step(["replay", quiet_bag(kit.dir / "bag"), "--out", kit.dir / "o", "--db", db, "--report", report,
                       "--quiet"], exit=0, says=("report:",)),
                 Step(["forget", "Emily", "--db", db, "--yes"], exit=0, says=("deleted the report",))],
                lambda: (memory_lost(db, forgotten=("Emily",))
                         + ([f"{report} still names Emily"] if report.exists() and "Emily" in report.read_text() else [])),
                issue="#40.14")


# ---- malformed spool files: forget still works and sets them aside (#40.5) -----------------------------------

SPOOL_FILES = {
    "a-list": "[]",
    "null": "null",
    "a-number": "5",
    "truncated": '{"session_id": "s1", "start": 0, "end": 1, "tur',
    "turns-as-pairs": '{"session_id": "s1", "start": 0, "end": 1, "turns": [["user", "hi"]], "face_embeddings": [], '
                      '"voice_embeddings": [], "observed_users": []}',
    "embeddings-a-number": '{"session_id": "s1", "start": 0, "end": 1, "turns": [], "face_embeddings": 5, '
                           '"voice_embeddings": [], "observed_users": []}',
    "fields-missing": '{"session_id": "s1"}',
}


def _spool_case(name: str) -> Callable[[Kit], Case]:
    def build(kit: Kit) -> Case:
        db = str(kit.dir / "memory.db")
        seed_memory(db)
        folder = kit.dir / "memory.db.sessions"
        folder.mkdir(mode=0o700)
        (folder / "s1.json").write_text(SPOOL_FILES[name])
        return Case(f"spool/{name}", [Step(["forget", "Emily", "--db", db, "--yes"], exit=0, says=("Emily",))],
                    lambda: memory_lost(db, forgotten=("Emily",)) + spool_lost(folder, "s1", waits=False), issue="#40.5")
    return build


for _name in SPOOL_FILES:
    case(f"spool/{_name}")(_spool_case(_name))


@case("spool/a-name-of-151-characters")
def _(kit: Kit) -> Case:
    """A session the store refuses for its own content is set aside; later sessions are written (#40.3)."""
    db = str(kit.dir / "memory.db")
    seed_memory(db)
    folder = kit.dir / "memory.db.sessions"
    folder.mkdir(mode=0o700)
    (folder / "s1.json").write_text(spooled_session("s1", f"Hi robot, my name is A{'a' * 150}. I work as a pilot.",
                                                    face_seed=7))
    (folder / "s2.json").write_text(spooled_session("s2", "Hi robot, my name is Tom. I work as a baker.", face_seed=8,
                                                    start=20))

    def lost() -> list[str]:
        from egomem_ros.store import open_store

        store = open_store(db)
        names = [u.name for u in store.list_users()]
        store.close()
        return memory_lost(db) + spool_lost(folder, "s1", waits=False) + ([] if "Tom" in names else ["Tom was not written"])
    return Case("spool/a-name-of-151-characters",
                [Step(["replay", quiet_bag(kit.dir / "bag"), "--out", kit.dir / "o", "--db", db, "--quiet"], exit=0,
                      says=("session set aside", "name"))], lost, issue="#40.3")


@case("spool/sealed-without-its-key")
def _(kit: Kit) -> Case:
    """A session sealed with a template key, read without it: a clear error, and it waits for the key."""
    import base64
    import os

    key = base64.b64encode(os.urandom(32)).decode()
    db = str(kit.dir / "memory.db")
    seed_memory(db)
    folder = kit.dir / "memory.db.sessions"
    folder.mkdir(mode=0o700)
    os.environ["EGOMEM_KEY"] = key
    try:
        (folder / "s1.json").write_text(spooled_session("s1", "Hi robot, I am Emily.", face_seed=1))
    finally:
        del os.environ["EGOMEM_KEY"]
    return Case("spool/sealed-without-its-key", [Step(["forget", "Sarah", "--db", db, "--yes"], says=("EGOMEM_KEY",))],
                lambda: memory_lost(db) + spool_lost(folder, "s1", waits=True))


# ---- bad LLM answers: the session waits (exit 3) or is set aside, never lost, never a crash ---------------

def _llm_case(name: str, answers: list[tuple[int, str, float]], *, spool: str = "waits", says: tuple[str, ...] = (),
              update_agent: str = "rules", issue: str = "", within_s: float = 120.0,
              check: Callable[[str, dict], list[str]] | None = None) -> None:
    """`spool`: what becomes of the waiting session: it "waits" (exit 3), is "set-aside" or "written" (exit 0)."""
    @case(f"llm/{name}")
    def build(kit: Kit) -> Case:
        db = str(kit.dir / "memory.db")
        ids = seed_memory(db)
        folder = kit.dir / "memory.db.sessions"
        folder.mkdir(mode=0o700)
        (folder / "s1.json").write_text(spooled_session("s1", "I work as a doctor now. I love tennis.", face_seed=1))
        script = [(s, body.replace("FACT_ID", ids["fact"]), t) for s, body, t in answers]
        config = llm_config(kit.dir / "llm.yaml", kit.llm(script), update_agent=update_agent)
        out = kit.dir / "o"
        step = Step(["replay", quiet_bag(kit.dir / "bag"), "--out", out, "--db", db, "--config", config, "--quiet"],
                    exit=3 if spool == "waits" else 0, says=says or (("wait in the spool",) if spool == "waits" else ()),
                    within_s=within_s)

        def lost() -> list[str]:
            left = [p.name for p in folder.iterdir()] if spool == "written" else []
            return (memory_lost(db) + bag_closed(out) + (check(db, ids) if check else [])
                    + (spool_lost(folder, "s1", waits=spool == "waits") if spool != "written" else
                       [f"{f} left in the spool" for f in left]))
        return Case(f"llm/{name}", [step], lost, issue=issue)


GOOD_EXTRACTION = {"summary": "Emily talked about work.", "name": None, "facts": ["works as a doctor"],
                   "preferences": ["loves tennis"], "events": [], "relations": []}
_llm_case("http-500", [(500, "Internal Server Error", 0)])
_llm_case("an-html-page", [(200, "<html><body><h1>502 Bad Gateway</h1></body></html>", 0)])
_llm_case("truncated-json", [(200, chat('{"summary": "Emily talked", "facts": ["works as'), 0)])
_llm_case("wrong-keys", [(200, chat({"answer": "Emily is a doctor"}), 0)])
_llm_case("nan", [(200, chat('{"summary": NaN, "facts": [NaN], "preferences": [], "events": [], "relations": []}'), 0)])
_llm_case("json-nested-200000-deep", [(200, chat('{"facts": ' + "[" * 200_000 + "]" * 200_000 + "}"), 0)], issue="#40.10")
_llm_case("trickles-a-byte-at-a-time", [(200, chat(GOOD_EXTRACTION), 0.05)], issue="#40.9", within_s=60)
_llm_case("supersedes-one-fact-twice",
          [(200, chat(GOOD_EXTRACTION), 0),
           (200, chat({"operations": [{"op": "UPDATE", "kind": "fact", "text": "works as a doctor", "target": "FACT_ID"},
                                      {"op": "UPDATE", "kind": "fact", "text": "works as a doctor", "target": "FACT_ID"}]}),
            0)], spool="set-aside", says=("session set aside", "already invalid"), update_agent="llm", issue="#40.11")


def _at_most(limit: int) -> Callable[[str, dict], list[str]]:
    def check(db: str, ids: dict) -> list[str]:
        from egomem_ros.store import open_store

        store = open_store(db)
        n = len(store.facts(ids["Emily"]))
        store.close()
        return [] if n <= limit else [f"one answer put {n} items on Emily"]
    return check


_llm_case("200000-facts", [(200, chat({**GOOD_EXTRACTION, "facts": [f"works as a doctor {i}" for i in range(200_000)]}), 0)],
          spool="written", says=("sessions written: 1",), issue="#40 low", check=_at_most(200))

"""Fault cases of the inputs: corrupt media, broken bags, bad configs and paths.

Every case writes its own bad input at test time and says what a user must see. A builder gets a `Kit`
(a folder of its own, a bad LLM endpoint, a PostgreSQL database) and returns the `Case` (faultkit.py);
`case` registers it in `CASES`. Rules: bad input exits 2 with the reason, sessions that wait for a retry
exit 3, nothing prints a traceback, nothing is lost.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from faultkit import (Case, Kit, Step, bag_closed, case, memory_lost, quiet_bag,
                      seed_memory)


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
    return Case("bag/empty-folder", [Step(["replay", kit.dir / "empty", "--out", kit.dir / "out"],
                                          says=("cannot open bag", "not a ROS 2 bag"))])


@case("bag/a-text-file")
def _(kit: Kit) -> Case:
    """A file that is no .mcap: the message says what to give instead."""
    (kit.dir / "notes.txt").write_text("hello\n")
    return Case("bag/a-text-file", [Step(["replay", kit.dir / "notes.txt", "--out", kit.dir / "out"],
                                         says=("cannot open bag", "not a ROS 2 bag", "metadata.yaml"))])


@case("bag/a-few-bytes")
def _(kit: Kit) -> Case:
    """Shorter than an mcap header: the recovery must not fail on it."""
    (kit.dir / "tiny.mcap").write_bytes(b"hi\n")
    return Case("bag/a-few-bytes", [Step(["replay", kit.dir / "tiny.mcap", "--out", kit.dir / "out"],
                                         says=("cannot open bag", "not a readable mcap bag"))])


@case("bag/a-memory-beside-the-output")
def _(kit: Kit) -> Case:
    """OUT.db left by an earlier replay: a new replay never writes into it unasked."""
    old = kit.dir / "out.db"
    old.write_bytes(b"an earlier replay's memory")
    (kit.dir / "tiny.mcap").write_bytes(b"hi\n")
    return Case("bag/a-memory-beside-the-output",
                [Step(["replay", kit.dir / "tiny.mcap", "--out", kit.dir / "out"], says=("memory exists", "--db"))],
                lambda: [] if old.read_bytes() == b"an earlier replay's memory" else [f"{old} was changed"])


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
    return Case("bag/cut-before-its-first-chunk", [Step(["replay", bag, "--out", out], says=("no complete chunk",))],
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

"""A household day as a ROS 2 bag, from any directory of real faces and real voices (`egomem eval household`).

Each person is one face identity (DIR/<identity>/<images>) and one recorded speaker (DIR/<speaker>/<audio>).
The day holds people who introduce themselves, leave and come back; back-to-back changes with no gap;
two people in view with one of them speaking; the robot's own voice on the speak channel (and echoed
into the microphone) in some sessions and not in others; and speech from a TV with nobody in view.

The microphone carries the real recordings. A recording does not say "my name is Priya", so what each
person says is published as text on the transcript topic when the utterance ends, as an ASR node would:
the benchmark measures segmentation, attribution and recognition on real faces and voices, not ASR.
`truth.json` next to the bag says who was where, what they said and which facts and relations it holds.
"""
from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ...identity_dirs import AUDIO_EXT, IMAGE_EXT, identity_files
from ...scene import SPEAK_AUDIO, TRANSCRIPT, SceneBag

SR = 16_000
FRAME_S = 0.5
NAMES = "Priya Desmond Amara Tomas Keiko Lukas Sofia Rahul Ingrid Mateo Yusuf Greta".split()
JOBS = "nurse teacher plumber architect dentist pilot librarian carpenter chemist baker florist surgeon".split()
HOBBIES = "chess gardening climbing painting cycling knitting fishing pottery rowing archery karate surfing".split()
# extra facts said on a return visit: (line, keyword that the stored fact must contain)
EXTRAS = [("I have one brother.", "brother"), ("I live in Leeds.", "leeds"), ("I have a cat.", "cat"),
          ("I am allergic to peanuts.", "peanuts"), ("I have two daughters.", "daughters"),
          ("I live in Bristol.", "bristol")]
TV_LINES = ["And now the weather for the weekend.", "The match ended two goals to one.",
            "Traffic is heavy on the ring road tonight."]


@dataclass
class Person:
    key: str
    name: str
    face: str                 # identity folder name
    voice: str                # speaker folder name
    job: str
    hobby: str


@dataclass
class Visit:
    """One scene: `speaker` talks (None: nobody, the TV alone); `bystander` stands silently in view."""
    kind: str                 # intro | return | tv
    speaker: str | None
    start: float = 0.0
    end: float = 0.0
    bystander: str | None = None
    bystander_larger: bool = False
    robot: bool = False       # the robot answers on the speak channel
    tv: bool = False
    back_to_back: bool = False
    lines: list[str] = field(default_factory=list)


# (kind, speaker, options): the day's story, people by index
STORY = [("intro", 0, {"robot": True}), ("intro", 1, {}), ("return", 0, {"relation": (1, "friend")}),
         ("intro", 2, {"robot": True}), ("intro", 3, {"back_to_back": True}), ("tv", None, {}),
         ("return", 1, {"bystander": 0, "bystander_larger": True, "extra": True}), ("intro", 4, {"tv": True}),
         ("return", 2, {"robot": True, "extra": True}), ("return", 3, {"back_to_back": True, "extra": True}),
         ("intro", 5, {"bystander": 4}), ("return", 4, {"relation": (5, "sister"), "extra": True}),
         ("return", 5, {"robot": True, "extra": True})]


def plan_day(faces: dict[str, list[Path]], voices: dict[str, list[Path]], seed: int
             ) -> tuple[list[Person], list[Visit], dict]:
    """People, visits with their lines and times, and the truth (facts and relations per person)."""
    rng = random.Random(seed)
    by_audio = sorted(voices, key=lambda v: -sum(p.stat().st_size for p in voices[v]))
    if len(by_audio) < 3 or len(faces) < 2:
        raise ValueError(f"a household needs at least 2 face identities and 3 speakers; got {len(faces)} and {len(by_audio)}")
    n = min(6, len(faces), len(by_audio) - 1)  # one speaker is kept for the TV
    speakers = by_audio[:n]
    rng.shuffle(speakers)
    tv_voice = by_audio[n] if len(by_audio) > n else by_audio[-1]
    face_ids = rng.sample(sorted(faces), n)
    names, jobs, hobbies, extras = (rng.sample(pool, n) for pool in (NAMES, JOBS, HOBBIES, EXTRAS))
    people = [Person(f"p{i}", names[i], face_ids[i], speakers[i], jobs[i], hobbies[i]) for i in range(n)]
    truth = {p.key: {"name": p.name, "face": p.face, "voice": p.voice, "facts": [p.job, p.hobby], "relations": []}
             for p in people}
    visits: list[Visit] = []
    for kind, who, opt in STORY:
        if who is not None and (who >= n or opt.get("bystander", -1) >= n or opt.get("relation", (-1,))[0] >= n):
            continue
        p = people[who] if who is not None else None
        v = Visit(kind, p.key if p else None, robot=opt.get("robot", False), tv=opt.get("tv", kind == "tv"),
                  back_to_back=opt.get("back_to_back", False) and bool(visits),
                  bystander=people[opt["bystander"]].key if "bystander" in opt else None,
                  bystander_larger=opt.get("bystander_larger", False))
        if kind == "intro":
            v.lines = [f"Hi, my name is {p.name}.", f"I work as a {p.job}.", f"I love {p.hobby}."]
        elif kind == "return":
            v.lines = ["Hello again, I am back."]
            if opt.get("extra"):
                line, keyword = extras[who]
                v.lines.append(line)
                truth[p.key]["facts"].append(keyword)
            if "relation" in opt:
                other, rel = people[opt["relation"][0]], opt["relation"][1]
                v.lines.append(f"{other.name} is my {rel}.")
                truth[p.key]["relations"].append({"other": other.key, "relation": rel})
        else:
            v.lines = list(TV_LINES)
        visits.append(v)
    return people, visits, {"seed": seed, "tv_voice": tv_voice, "people": truth}


def face_frame(faces: list[tuple[np.ndarray, int]], rng: np.random.Generator) -> np.ndarray:
    """A 640x480 frame with the given (face image, side) pairs side by side, lit and placed randomly."""
    from PIL import Image

    canvas = np.full((480, 640, 3), int(rng.integers(40, 120)), np.uint8)
    x = int(rng.integers(0, 30))
    for img, side in faces:
        y = int(rng.integers(0, 480 - side))
        face = np.asarray(Image.fromarray(img).resize((side, side)), np.float32) * rng.uniform(0.75, 1.15)
        canvas[y:y + side, x:x + side] = np.clip(face, 0, 255).astype(np.uint8)
        x += side + int(rng.integers(10, 40))
    return canvas


class RecordedVoices:
    """Utterances from each speaker's recordings (whole recordings or excerpts, as long as the line needs)."""

    def __init__(self, voices: dict[str, list[Path]], rng: random.Random):
        self.voices, self.rng = voices, rng

    def say(self, speaker: str, line: str) -> np.ndarray:
        from .synth import recorded_turn

        seconds = min(6.0, max(1.8, len(line.split()) / 2.5))
        pcm, _ = recorded_turn([str(p) for p in self.voices[speaker]], self.rng, gain=0.5, min_s=seconds,
                               max_s=seconds + 1.5)
        return pcm


def _robot_reply(text: str, tmp: Path) -> np.ndarray:
    from .synth import ROBOT_VOICE, Voice, tts

    return tts(text, Voice(ROBOT_VOICE, 160, 50, 0.4), random.Random(0), tmp)


def write_household(out: Path, faces_dir: Path, voices_dir: Path, *, seed: int = 0, minutes: float = 10.0,
                    progress=None) -> dict:
    """Write OUT/bag (mcap) and OUT/truth.json; returns the truth."""
    import tempfile

    from ...retrieval.media import load_image

    faces = identity_files(faces_dir, IMAGE_EXT)
    voices = identity_files(voices_dir, AUDIO_EXT)
    people, visits, truth = plan_day(faces, voices, seed)
    who = {p.key: p for p in people}
    rng, nrng = random.Random(seed + 1), np.random.default_rng(seed)
    speech = RecordedVoices(voices, rng)
    face_img = {p.key: [load_image(f) for f in faces[p.face]] for p in people}
    # every scene's audio first, so the gaps can share out what is left of the day
    tracks: list[tuple[Visit, np.ndarray, np.ndarray, list[tuple[float, str]]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for v in visits:
            listen, speak, said = _scene_audio(v, who, speech, truth["tv_voice"], Path(tmp), nrng)
            tracks.append((v, listen, speak, said))
    spoken = sum(len(x) for _, x, _, _ in tracks) / SR
    gaps = [v for v in visits if not v.back_to_back]
    gap_s = max(8.0, (minutes * 60 - spoken) / len(gaps))
    out.mkdir(parents=True, exist_ok=True)
    t = gap_s / 2
    with SceneBag(out / "bag") as bag:
        empty_room(bag, 0.0, t, nrng)
        for i, (v, listen, speak, said) in enumerate(progress(tracks) if progress else tracks):
            v.start, v.end = t, t + len(listen) / SR
            frames = [face_img[v.speaker]] if v.speaker else []
            if v.bystander:
                frames.append(face_img[v.bystander])
            sizes = [300, 200] if not v.bystander_larger else [200, 300]
            for k in range(int(len(listen) / SR / FRAME_S)):
                tk = t + k * FRAME_S
                shown = [(imgs[(k // 4 + j) % len(imgs)], sizes[j]) for j, imgs in enumerate(frames)]
                bag.image(tk + 0.25, face_frame(shown, nrng) if shown else _room(nrng), compressed=True)
                bag.audio(tk, listen[int(k * FRAME_S * SR):int((k + 1) * FRAME_S * SR)])
                chunk = speak[int(k * FRAME_S * SR):int((k + 1) * FRAME_S * SR)]
                if np.any(chunk):
                    bag.audio_frame(SPEAK_AUDIO, tk, chunk)
            for end, line in said:
                bag.text(TRANSCRIPT, t + end + 0.3, line)
            t = v.end
            if i + 1 < len(tracks) and not tracks[i + 1][0].back_to_back:
                empty_room(bag, t, t + gap_s, nrng)
                t += gap_s
        empty_room(bag, t, t + gap_s / 2, nrng)
    truth["visits"] = [asdict(v) for v in visits]
    truth["duration_s"] = t + gap_s / 2
    (out / "truth.json").write_text(json.dumps(truth, indent=1), encoding="utf-8")
    return truth


def _scene_audio(v: Visit, who: dict[str, Person], speech: RecordedVoices, tv_voice: str, tmp: Path,
                 nrng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[tuple[float, str]]]:
    """Listen and speak channels of one scene, and (end time, line) for each user line."""
    parts_l, parts_s, said, t = [], [], [], 0.0
    pause = np.zeros(int(0.6 * SR), np.float32)
    for j, line in enumerate(v.lines):
        pcm = speech.say(tv_voice if v.kind == "tv" else who[v.speaker].voice, line)
        if v.kind == "tv":
            pcm = pcm * 0.25
        parts_l += [pcm, pause]
        parts_s += [np.zeros_like(pcm), pause]
        t += len(pcm) / SR
        if v.kind != "tv":
            said.append((t, line))
        t += len(pause) / SR
        if v.robot and j in (0, len(v.lines) - 1):
            reply = _robot_reply("Nice to meet you." if j == 0 else "Thank you, I will remember that.", tmp)
            parts_l += [0.3 * reply, pause]  # the microphone hears the loudspeaker
            parts_s += [reply, pause]
            t += (len(reply) + len(pause)) / SR
    listen, speak = np.concatenate(parts_l), np.concatenate(parts_s)
    if v.tv and v.kind != "tv":  # the TV talks under the conversation
        tv = np.concatenate([speech.say(tv_voice, line) for line in TV_LINES * 3])[:len(listen)]
        listen[:len(tv)] += 0.12 * tv
    listen = listen + nrng.normal(0, 2e-3, len(listen)).astype(np.float32)
    return listen.astype(np.float32), speak.astype(np.float32), said


def _room(nrng: np.random.Generator) -> np.ndarray:
    return np.full((480, 640, 3), int(nrng.integers(50, 90)), np.uint8)


def empty_room(bag: SceneBag, t0: float, t1: float, nrng: np.random.Generator) -> None:
    """An empty room: background frames and the microphone's noise floor."""
    t = t0
    while t < t1 - 1e-6:
        bag.image(t + 0.25, _room(nrng), compressed=True)
        bag.audio(t, nrng.normal(0, 2e-3, int(FRAME_S * SR)).astype(np.float32))
        t += FRAME_S

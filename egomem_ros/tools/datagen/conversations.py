"""Long two-person conversations (`bench/data/conversations/*.json`) as household visits in a ROS 2 bag.

A conversation is two people chatting over many sessions, with questions whose answer one of them
said. `write_conversation_bag` puts it in front of the robot in one of two ways:
- `separate`: per session, each person visits alone and says their turns of that session;
- `together`: both people in view, every turn in the real order, in the speaker's own voice.
Faces are LFW identities and voices LibriSpeech speakers (`../shared/data`); each turn's words are
published on the transcript topic when it ends, as an ASR node would. Each person's first turn starts
with "Hi robot, my name is <name>." so that profiles can be named. Each session happens on its own
day, as in the conversation: the bag's clock jumps over the days between them (replay runs its timers
once over a jump).
"""
from __future__ import annotations

import json
import random
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from ...identity_dirs import AUDIO_EXT, IMAGE_EXT, identity_files
from ...scene import TRANSCRIPT, SceneBag
from .household import FRAME_S, SR, RecordedVoices, empty_room, face_frame

Mode = Literal["separate", "together"]
GAP_S = 9.0          # an empty room between visits: longer than memory.session_end_s


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConvTurn(_Strict):
    speaker: str
    text: str


class ConvSession(_Strict):
    date: str
    turns: list[ConvTurn]


class ConvQuestion(_Strict):
    about: str
    question: str
    answer: str
    session: int
    turn: int


class Memorable(_Strict):
    person: str
    session: int
    item: str
    keywords: list[str]


class Conversation(_Strict):
    id: str
    people: list[str]
    sessions: list[ConvSession]
    questions: list[ConvQuestion]
    memorable: list[Memorable] = []
    topics: list[list[str]] = []

    @model_validator(mode="after")
    def _consistent(self) -> Conversation:
        if len(self.people) != 2 or len(set(self.people)) != 2:
            raise ValueError("a conversation has two different people")
        for s in self.sessions:
            stray = {t.speaker for t in s.turns} - set(self.people)
            if stray:
                raise ValueError(f"turns by {sorted(stray)}, who is not one of {self.people}")
        for q in self.questions:
            if not (0 <= q.session < len(self.sessions) and 0 <= q.turn < len(self.sessions[q.session].turns)):
                raise ValueError(f"question {q.question!r} points at no turn")
            t = self.sessions[q.session].turns[q.turn]
            if t.speaker != q.about or q.answer.lower() not in t.text.lower():
                raise ValueError(f"question {q.question!r}: its answer is not in {q.about}'s turn")
        return self

    def start(self, session: int) -> float:
        """The session's date as a time (noon UTC): what the robot's clock would say."""
        d = datetime.strptime(self.sessions[session].date, "%Y-%m-%d").replace(hour=12, tzinfo=timezone.utc)
        return d.timestamp()

    def said(self, session: int, person: str) -> list[str]:
        """What `person` says in `session`, the introduction included on their first turn."""
        lines = [t.text for t in self.sessions[session].turns if t.speaker == person]
        first = next(i for i, s in enumerate(self.sessions) if any(t.speaker == person for t in s.turns))
        return ([intro(person)] + lines) if session == first and lines else lines


def intro(person: str) -> str:
    return f"Hi robot, my name is {person}."


def load_conversations(folder: Path) -> list[Conversation]:
    """Every `*.json` conversation directly in `folder`, by file name."""
    files = sorted(Path(folder).glob("*.json"))
    if not files:
        raise ValueError(f"no conversations (*.json) in {folder}")
    out = []
    for f in files:
        try:
            out.append(Conversation.model_validate(json.loads(f.read_text(encoding="utf-8"))))
        except ValueError as err:
            raise ValueError(f"{f}: {err}") from err
    return out


def write_conversation_bag(conv: Conversation, out: Path, faces_dir: Path, voices_dir: Path, mode: Mode,
                           *, seed: int = 0) -> dict:
    """Write OUT/bag (mcap) and return who is who (face identity, voice) and the bag's length."""
    faces, voices = identity_files(faces_dir, IMAGE_EXT), identity_files(voices_dir, AUDIO_EXT)
    if len(faces) < 2 or len(voices) < 2:
        raise ValueError(f"need 2 face identities and 2 speakers; got {len(faces)} and {len(voices)}")
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    by_audio = sorted(voices, key=lambda v: -sum(p.stat().st_size for p in voices[v]))[:2]
    cast = dict(zip(conv.people, zip(rng.sample(sorted(faces), 2), by_audio)))
    from ...retrieval.media import load_image

    face_img = {p: [load_image(f) for f in faces[face]] for p, (face, _) in cast.items()}
    speech = RecordedVoices(voices, rng)
    t = conv.start(0)
    out.mkdir(parents=True, exist_ok=True)
    with SceneBag(out / "bag") as bag:
        for k, _ in enumerate(conv.sessions):
            t = max(t, conv.start(k))   # the clock jumps to the session's day: the room stood empty meanwhile
            empty_room(bag, t, t + GAP_S, nrng)
            t += GAP_S
            if mode == "separate":
                scenes = [[(p, line) for line in conv.said(k, p)] for p in conv.people]
            else:
                scenes = [_in_order(conv, k)]
            for scene in filter(None, scenes):
                in_view = sorted({p for p, _ in scene}) if mode == "separate" else list(conv.people)
                t = _scene(bag, t, scene, in_view, face_img, {p: v for p, (_, v) in cast.items()}, speech, nrng)
                empty_room(bag, t, t + GAP_S, nrng)
                t += GAP_S
    return {"cast": {p: {"face": f, "voice": v} for p, (f, v) in cast.items()}, "end": t, "mode": mode}


def _in_order(conv: Conversation, k: int) -> list[tuple[str, str]]:
    lines, introduced = [], set()
    first = {p: next(i for i, s in enumerate(conv.sessions) if any(t.speaker == p for t in s.turns)) for p in conv.people}
    for turn in conv.sessions[k].turns:
        if first[turn.speaker] == k and turn.speaker not in introduced:
            introduced.add(turn.speaker)
            lines.append((turn.speaker, intro(turn.speaker)))
        lines.append((turn.speaker, turn.text))
    return lines


def _scene(bag: SceneBag, t: float, lines: list[tuple[str, str]], in_view: list[str], face_img: dict,
           voice_of: dict[str, str], speech: RecordedVoices, nrng: np.random.Generator) -> float:
    """The people `in_view` before the camera while each line is said in its speaker's voice."""
    pause = np.zeros(int(0.6 * SR), np.float32)
    parts, said, at = [], [], 0.0
    for person, line in lines:
        pcm = speech.say(voice_of[person], line)
        parts += [pcm, pause]
        at += len(pcm) / SR
        said.append((at, line))
        at += len(pause) / SR
    listen = np.concatenate(parts)
    listen = (listen + nrng.normal(0, 2e-3, len(listen))).astype(np.float32)
    sizes = [300, 220]
    for k in range(int(len(listen) / SR / FRAME_S)):
        tk = t + k * FRAME_S
        shown = [(face_img[p][(k // 4 + j) % len(face_img[p])], sizes[j]) for j, p in enumerate(in_view)]
        bag.image(tk + 0.25, face_frame(shown, nrng), compressed=True)
        bag.audio(tk, listen[int(k * FRAME_S * SR):int((k + 1) * FRAME_S * SR)])
    for end, line in said:
        bag.text(TRANSCRIPT, t + end + 0.3, line)
    return t + int(len(listen) / SR / FRAME_S) * FRAME_S

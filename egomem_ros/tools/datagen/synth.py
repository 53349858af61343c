"""Synthetic dialog streams for training and testing the episodic trigger (paper §4.1).

Dialogs of 3–5 turns by several espeak-ng voices on the listen channel, a fixed robot voice on the
speak channel, noise, echo of the speak channel in the listen channel (p = 0.3, gain 0–0.2, delay
0.1–0.5 s), interruptions (p = 0.3), and several sessions of different users concatenated with silence,
non-dialog sound, or no gap at all between them. `--split test` uses voices and noise kinds that the
`train` split never uses. `--user-speech` takes the users from recordings of real people instead (one
folder per speaker), to see how a trigger trained on espeak-ng voices does on real ones.
"""
from __future__ import annotations

import fnmatch
import functools
import json
import math
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ...espeak import espeak_exe, espeak_wav
from ...memory.sessions import STEP_S, Session, labels_from_sessions, write_labels
from .espeak_variants import SYNTHETIC_PREFIX, data_path_with, random_variant, unknown_voices

SR = 16_000
ROBOT_VOICE = "en-gb-x-rp+m7"
# Train voices: every English accent that the test split does not use, crossed with espeak-ng variants
# that no test voice uses (not m5/f4/f5/croak, none built on the klatt synthesizer, no whisper or robot
# effects). A speaker-change detector needs many voices to learn what "another voice" means.
# British English is `en` (espeak-ng's gmw/en): espeak-ng 1.51 speaks `en-gb+variant` as plain `en-gb`, so
# every `en-gb+...` name was one voice (`unknown_voices` now refuses such names).
_TRAIN_ACCENTS = ["en-us", "en", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc"]
_TRAIN_VARIANTS = ("m1 m2 m3 m4 m6 m8 f1 f2 f3 Alex Alicia Andrea Andy Annie antonio aunty belinda boris Denis Diogo ed "
                   "Gene gustave Henrique Hugo iven Jacky john Lee linda marcelo Marco Mario max Michael michel miguel "
                   "Mike Nguyen pablo paul pedro quincy rob robert steph Storm Tweaky zac anika grandma grandpa norbert "
                   "sandro shelby travis victor").split()
VOICES = {
    "train": [f"{a}+{v}" for a in _TRAIN_ACCENTS for v in _TRAIN_VARIANTS],
    "test": ["en-gb-scotland+m5", "en-029+f4", "en-us+klatt", "en+f5", "en-us+croak"],
}
# The fine-tuning streams (finetune/streams.py) keep the voices and noise kinds their proof was measured
# with (then `en-gb+m3` and `en-gb+f2`, i.e. plain `en-gb` twice); the trigger's train pool above is wider.
FINETUNE_VOICES = {"train": ["en-us+m1", "en-us+m2", "en-us+m4", "en-us+f1", "en-us+f3", "en+m3", "en+f2", "en+m6"],
                   "test": VOICES["test"]}
FINETUNE_NOISES = {"train": ["white", "pink"], "test": ["brown", "hum"]}
# Noise kinds (background and the non-dialog sounds between sessions). The test kinds stay unseen: no
# train kind is as low-pass as brown noise (1/f^2) or tonal at mains frequencies.
NOISES = {"train": ["white", "pink", "tilted", "band", "tonal", "clicks"], "test": ["brown", "hum"]}
_NAMES = "Emily John Anna Liam Sofia Noah Mia Lucas Ravi Hana Omar Lena Ivan Grace Tom Olga".split()
_THINGS = "tennis jazz gardening chess cooking hiking painting swimming football reading coffee yoga".split()
_JOBS = "nurse teacher engineer chef pilot lawyer farmer dentist plumber architect".split()
_USER = ["Hello robot, my name is {name}.", "I really like {thing}.", "I work as a {job}.",
         "Can you tell me what the weather will be like tomorrow?", "My colleague {other} loves {thing2}.",
         "What should I cook for dinner tonight?", "I do not like {thing2} at all.",
         "Do you remember what I told you yesterday?", "Please remind me to call my mother.",
         "I am going on holiday next week.", "Thanks, that is all for now."]
_ROBOT = ["Nice to meet you, {name}.", "That sounds wonderful, tell me more.", "Of course, I will remember that.",
          "Tomorrow will be sunny with a light breeze.", "How about a vegetable curry with rice?",
          "I will remind you this evening.", "Have a great time, and take care.", "You are welcome."]


@dataclass
class StreamSpec:
    sessions: int = 4
    seed: int = 0
    split: str = "train"
    noise_snr_db: tuple[float, float] = (10.0, 30.0)
    p_echo: float = 0.3
    p_interrupt: float = 0.3
    p_back_to_back: float = 0.3
    voice_warp: float = 0.0      # each user's voice is warped by a factor in [1 / (1 + w), 1 + w] (0: off)
    random_voices: float = 0.0   # probability that a user is a generated espeak-ng variant (train split only)
    klatt_voices: float = 0.0    # probability that a generated variant speaks through the Klatt synthesizer
    voices: tuple[str, ...] = ()  # the users' espeak-ng voices instead of the split's pool (e.g. a validation set)
    user_speech: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (speaker, recordings): real users instead of espeak-ng
    turn_jitter: float = 0.0     # a user's pitch, speed, level and spectral tilt vary from turn to turn (0: off)


@dataclass(frozen=True)
class Voice:
    """One speaker: an espeak-ng voice with its own speed and pitch, fixed for a whole session. `warp`
    scales the whole voice (formants, pitch and tempo together, as a shorter or longer vocal tract would
    and as speed perturbation does in speaker-recognition training): 1.0 is espeak-ng's own voice.
    `data_path`: an `espeak-ng --path` folder holding the voice's variant when it is a generated one."""

    name: str
    speed: int = 160
    pitch: int = 50
    gain: float = 0.6
    warp: float = 1.0
    data_path: str | None = None

    @classmethod
    def random(cls, name: str, rng: random.Random) -> Voice:
        return cls(name, rng.randint(140, 185), rng.randint(30, 70), rng.uniform(0.3, 0.8))


def tts(text: str, voice: Voice, rng: random.Random, tmp: Path, sample_rate: int = SR) -> np.ndarray:
    """espeak-ng speech at `sample_rate` (16 kHz for the trigger, 24 kHz for Mimi)."""
    from ...retrieval.media import load_audio

    out = espeak_wav(text, tmp / f"u{rng.randrange(10**9)}.wav", voice.name, speed=voice.speed, pitch=voice.pitch,
                     data_path=voice.data_path)
    pcm = load_audio(out, round(sample_rate / voice.warp))  # played at sample_rate: warp times higher
    out.unlink(missing_ok=True)
    return _trim(pcm, 1e-3) * voice.gain  # espeak's leading/trailing silence


def _trim(pcm: np.ndarray, floor: float) -> np.ndarray:
    """`pcm` from its first to its last sample louder than `floor` (all of it when none is)."""
    loud = np.flatnonzero(np.abs(pcm) > floor)
    return pcm[loud[0]:loud[-1] + 1] if loud.size else pcm


def noise(kind: str, n: int, rng: np.random.Generator, sample_rate: int = SR) -> np.ndarray:
    """Unit-scale noise of one kind: white, pink (1/f), brown (1/f^2), hum (mains harmonics); for
    training also tilted (power slope f^-b, b in [-1, 1.2]), band (white in a random band), tonal (a few
    slowly beating tones from 150 Hz up: fans, appliances) and clicks (sparse decaying impulses)."""
    if kind == "tonal":
        t = np.arange(n) / sample_rate
        tones = sum(np.sin(2 * np.pi * rng.uniform(150, 3000) * t + rng.uniform(0, 6)) * rng.uniform(0.3, 1.0)
                    for _ in range(int(rng.integers(1, 4))))
        beat = 1.0 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.2, 3.0) * t)
        return _unit_scale(tones * beat + 0.1 * rng.normal(size=n))
    if kind == "clicks":
        x = np.zeros(n)
        hits = rng.random(n) < rng.uniform(2, 20) / sample_rate
        x[hits] = rng.normal(size=int(hits.sum()))
        decay = np.exp(-np.arange(int(0.01 * sample_rate)) / (0.002 * sample_rate))
        return _unit_scale(np.convolve(x, decay)[:n] + 0.05 * rng.normal(size=n))
    if kind in ("tilted", "band"):
        spectrum = np.fft.rfft(rng.normal(size=n))
        f = np.maximum(np.fft.rfftfreq(n, 1 / sample_rate), 20.0)
        if kind == "tilted":
            spectrum *= f ** (-rng.uniform(-1.0, 1.2) / 2)
        else:
            lo = rng.uniform(100, 3000)
            spectrum *= (f >= lo) & (f <= lo * rng.uniform(1.5, 4.0))
        return _unit_scale(np.fft.irfft(spectrum, n))
    if kind == "hum":
        t = np.arange(n) / sample_rate
        f0 = rng.choice([50.0, 60.0])
        x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 6))
        return (x + 0.2 * rng.normal(size=n)).astype(np.float32)
    white = rng.normal(size=n)
    if kind == "white":
        return white.astype(np.float32)
    spectrum = np.fft.rfft(white)
    f = np.maximum(np.fft.rfftfreq(n, 1 / sample_rate), 1.0)
    spectrum /= np.sqrt(f) if kind == "pink" else f  # pink 1/f power, brown 1/f^2
    return _unit_scale(np.fft.irfft(spectrum, n))


def _unit_scale(x: np.ndarray) -> np.ndarray:
    return (x / (np.std(x) + 1e-9)).astype(np.float32)


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def speech_speakers(root: Path, pattern: str = "*") -> dict[str, list[Path]]:
    """Speakers (subfolders of `root` matching `pattern`) and their recordings, for `--user-speech`."""
    if not root.is_dir():
        raise ValueError(f"--user-speech {root}: not a folder (it needs one subfolder of recordings per speaker)")
    speakers = {d.name: sorted(f for f in d.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES)
                for d in sorted(root.iterdir()) if d.is_dir() and fnmatch.fnmatch(d.name, pattern)}
    speakers = {name: files for name, files in speakers.items() if files}
    if len(speakers) < 2:
        raise ValueError(f"--user-speech {root}: {len(speakers)} speaker folder(s) with recordings match "
                         f"{pattern!r}; back-to-back sessions need at least 2 speakers")
    return speakers


def recorded_turn(files: Sequence[str], rng: random.Random, gain: float, min_s: float = 1.5, max_s: float = 8.0,
                  sample_rate: int = SR) -> tuple[np.ndarray, list[str]]:
    """One user turn from a speaker's recordings: whole recordings (silence trimmed) joined by short pauses
    until it lasts `min_s` (short clips, e.g. spoken digits), a random `max_s` excerpt of a longer one;
    peak-normalised to `gain`, the level range of the espeak-ng users."""
    parts, used, total = [], [], 0
    while total < min_s * sample_rate:
        path = rng.choice(list(files))
        pcm = _recording(path, sample_rate)
        if len(pcm) > max_s * sample_rate:
            length = int(rng.uniform(min_s + 1.5, max_s) * sample_rate)
            start = rng.randrange(len(pcm) - length)
            pcm = pcm[start:start + length]
        if parts:
            parts.append(np.zeros(int(rng.uniform(0.15, 0.4) * sample_rate), np.float32))
        parts.append(pcm.astype(np.float32))
        used.append(Path(path).name)
        total = sum(len(x) for x in parts)
    turn = np.concatenate(parts)
    return turn * (gain / (np.max(np.abs(turn)) + 1e-9)), used


@functools.lru_cache(maxsize=512)
def _recording(path: str, sample_rate: int) -> np.ndarray:
    """A recording decoded once per process (every turn draws from the same few files), silence trimmed
    (2% of its peak: recordings have a noise floor); read-only, since the cache shares it."""
    from ...retrieval.media import load_audio

    try:
        pcm = load_audio(path, sample_rate)
    except ValueError as err:  # an empty or unreadable recording: say which
        raise ValueError(f"{path}: {err}") from None
    pcm = _trim(pcm, 0.02 * float(np.max(np.abs(pcm))))
    pcm.setflags(write=False)
    return pcm


def jittered_turn(text: str, voice: Voice, jitter: float, rng: random.Random, tmp: Path) -> np.ndarray:
    """One user turn whose pitch, speed and level move around the session's voice and whose spectrum is
    tilted (a head turned away, another distance to the microphone), by up to `jitter` (1: pitch +-15 of
    espeak-ng's 0-99, speed +-20 words/min, level x/÷ 1.5, first-order tilt +-0.8). A real speaker never
    sounds the same twice; an espeak-ng voice does, and a voice head trained on that alone hears every
    variation as another person."""
    turn_voice = replace(voice, pitch=min(99, max(0, voice.pitch + round(rng.uniform(-15, 15) * jitter))),
                         speed=max(80, voice.speed + round(rng.uniform(-20, 20) * jitter)),
                         gain=voice.gain * math.exp(rng.uniform(-1, 1) * math.log(1.5) * jitter))
    pcm = tts(text, turn_voice, rng, tmp)
    tilt = rng.uniform(-0.8, 0.8) * jitter
    tilted = np.concatenate([pcm[:1], pcm[1:] - tilt * pcm[:-1]])  # y[n] = x[n] - tilt x[n-1]
    return _unit_scale(tilted) * np.std(pcm)  # the tilt changes the spectrum, not the level


def _fill(template: str, rng: random.Random) -> str:
    return template.format(name=rng.choice(_NAMES), other=rng.choice(_NAMES), thing=rng.choice(_THINGS),
                           thing2=rng.choice(_THINGS), job=rng.choice(_JOBS))


def session_voices(pool: list[str], k: int, rng: random.Random) -> list[str]:
    """One voice per session, each with its own espeak-ng variant while there are enough: an accent
    alone barely changes the voice, so two sessions of one variant would be one speaker to the ear."""
    by_variant: dict[str, list[str]] = {}
    for voice in pool:
        by_variant.setdefault(voice.split("+")[-1], []).append(voice)
    names = [rng.choice(by_variant[v]) for v in rng.sample(sorted(by_variant), k=min(k, len(by_variant)))]
    while len(names) < k:
        names.append(rng.choice(pool))
    return names


def make_stream(spec: StreamSpec, tmp: Path) -> tuple[np.ndarray, np.ndarray, list[Session], list[dict]]:
    """Returns listen, speak (16 kHz), the true sessions and per-session metadata."""
    rng = random.Random(spec.seed)
    nrng = np.random.default_rng(spec.seed)
    clips: list[tuple[str, int, np.ndarray]] = []  # (channel, start sample, pcm)
    sessions, meta = [], []
    t = int(rng.uniform(1.0, 4.0) * SR)
    recordings = dict(spec.user_speech)
    names = session_voices(sorted(recordings) or list(spec.voices) or VOICES[spec.split], spec.sessions, rng)
    robot = Voice(ROBOT_VOICE, 165, 45, 0.6)
    for k in range(spec.sessions):
        voice = Voice.random(names[k], rng)
        if spec.voice_warp > 0:   # drawn only when on, so that streams made without it stay as they were
            voice = replace(voice, warp=math.exp(rng.uniform(-1.0, 1.0) * math.log1p(spec.voice_warp)))
        variant = None
        if spec.random_voices > 0 and rng.random() < spec.random_voices:  # the same: drawn only when on
            variant_name = f"{SYNTHETIC_PREFIX}{spec.seed}_{k}"
            klatt = spec.klatt_voices > 0 and rng.random() < spec.klatt_voices  # also drawn only when on
            variant = random_variant(variant_name, rng, klatt=klatt)
            voice = replace(voice, name=f"{voice.name.split('+')[0]}+{variant_name}",
                            data_path=str(data_path_with({variant_name: variant}, tmp / "espeak")))
        start, end, turns = t, t, []
        n_turns = rng.randint(3, 5)
        for i in range(n_turns):
            if recordings:
                u, used = recorded_turn(recordings[voice.name], rng, voice.gain)
                u_text = "(recording " + " + ".join(used) + ")"
            else:
                u_text = _fill(rng.choice(_USER), rng)
                u = (jittered_turn(u_text, voice, spec.turn_jitter, rng, tmp) if spec.turn_jitter > 0
                     else tts(u_text, voice, rng, tmp))
            clips.append(("listen", t, u))
            turns.append({"speaker": "user", "text": u_text})
            r_start = t + len(u) + int(rng.uniform(0.2, 0.7) * SR)
            r_text = _fill(rng.choice(_ROBOT), rng)
            r = tts(r_text, robot, rng, tmp)
            turns.append({"speaker": "robot", "text": r_text})
            if i < n_turns - 1 and rng.random() < spec.p_interrupt:
                cut = int(len(r) * rng.uniform(0.3, 0.7))  # the user barges in; the robot stops shortly after
                clips.append(("speak", r_start, r[:cut + int(0.3 * SR)]))
                end = max(end, r_start + min(len(r), cut + int(0.3 * SR)))
                t = r_start + cut
            else:
                clips.append(("speak", r_start, r))
                end = r_start + len(r)
                t = end + int(rng.uniform(0.3, 1.0) * SR)
        # inclusive steps: the one holding the user's first sample to the one holding the robot's last
        sessions.append(Session(int(start // (STEP_S * SR)), int((end - 1) // (STEP_S * SR))))
        meta.append({"voice": voice.name, **({} if recordings else {"speed": voice.speed, "pitch": voice.pitch}),
                     "warp": voice.warp,
                     "start_s": start / SR, "end_s": end / SR, "turns": turns,
                     **({"variant": variant} if variant else {})})
        if rng.random() < spec.p_back_to_back:
            t = end + int(rng.uniform(0.4, 1.0) * SR)  # the next user starts right away
        else:
            t = end + int(rng.uniform(3.0, 10.0) * SR)
            if rng.random() < 0.5:  # non-dialog sound between sessions (door, tap, appliance)
                burst = noise(rng.choice(NOISES[spec.split]), int(rng.uniform(0.3, 1.5) * SR), nrng) * 0.05
                clips.append(("listen", end + int(1.0 * SR), burst))
    total = t + int(rng.uniform(1.0, 3.0) * SR)
    listen, speak = np.zeros(total, np.float32), np.zeros(total, np.float32)
    for channel, s, pcm in clips:
        buf = listen if channel == "listen" else speak
        buf[s:s + len(pcm)] += pcm[:max(0, total - s)]
    listen = microphone_mix(listen, speak, rng, nrng, p_echo=spec.p_echo, snr_db=spec.noise_snr_db,
                            noise_kinds=NOISES[spec.split])
    return listen, speak, sessions, meta


def microphone_mix(listen: np.ndarray, speak: np.ndarray, rng: random.Random, nrng: np.random.Generator, *,
                   p_echo: float, snr_db: tuple[float, float], noise_kinds: list[str],
                   sample_rate: int = SR) -> np.ndarray:
    """What the microphone hears (paper §4.1): the robot's own voice echoed with p_echo (gain 0-0.2,
    delay 0.1-0.5 s), background noise at an SNR drawn from snr_db, peak-limited to [-1, 1]."""
    listen = listen.copy()
    if rng.random() < p_echo:
        delay = int(rng.uniform(0.1, 0.5) * sample_rate)
        listen[delay:] += rng.uniform(0.0, 0.2) * speak[:-delay]
    speech_rms = float(np.sqrt(np.mean(listen[listen != 0] ** 2))) if np.any(listen) else 0.1
    snr = rng.uniform(*snr_db)
    bg = noise(rng.choice(noise_kinds), len(listen), nrng, sample_rate)
    listen += bg * speech_rms / (10 ** (snr / 20)) / (np.std(bg) + 1e-9)
    return listen / max(1.0, float(np.max(np.abs(listen))))


def write_stream(folder: Path, spec: StreamSpec) -> Path:
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        listen, speak, sessions, meta = make_stream(spec, Path(tmp))
    sf.write(folder / "listen.wav", listen, SR, subtype="PCM_16")
    sf.write(folder / "speak.wav", speak, SR, subtype="PCM_16")
    n_steps = int(len(listen) // (STEP_S * SR))
    write_labels(folder / "labels.csv", labels_from_sessions(sessions, n_steps))
    (folder / "meta.json").write_text(json.dumps({"split": spec.split, "seed": spec.seed, "robot_voice": ROBOT_VOICE,
                                                  "sessions": meta}, indent=1), encoding="utf-8")
    return folder


def _write_one(args: tuple[str, int, dict]) -> str:
    out, idx, spec_fields = args
    spec = StreamSpec(sessions=random.Random(spec_fields["seed"]).randint(2, 5), **spec_fields)
    return str(write_stream(Path(out) / f"stream_{idx:04d}", spec))


def make_streams(out: Path, count: int, *, seed: int = 0, split: str = "train", workers: int = 2,
                 p_back_to_back: float = 0.3, voice_warp: float = 0.0, random_voices: float = 0.0,
                 klatt_voices: float = 0.0, voices: Sequence[str] = (), user_speech: Path | None = None,
                 speakers: str = "*", turn_jitter: float = 0.0, progress=None) -> list[Path]:
    """Write `count` stream folders under `out` (in parallel processes). `p_back_to_back`: how often the
    next user starts right after a session, so that only the voice tells the two sessions apart.
    `voice_warp`: warp each user's voice by up to this fraction, so that the few espeak-ng variants
    become many speakers for training (a voice head learns what "another voice" is from many).
    `random_voices`: how often a user is a generated espeak-ng variant instead (`espeak_variants.py`);
    `klatt_voices`: how often such a variant speaks through espeak-ng's Klatt synthesizer.
    `voices`: `base+variant` espeak-ng voices the users are drawn from instead of the split's pool (the
    split still chooses the noise kinds), e.g. variants that neither training nor the test split uses.
    `user_speech`: a folder of speaker folders (those matching `speakers`) whose recordings are the users'
    turns instead (`recorded_turn`); the robot stays espeak-ng."""
    from concurrent.futures import ProcessPoolExecutor

    if split not in VOICES:
        raise ValueError(f"split must be train or test, not {split!r}")
    for name, value, top in (("p_back_to_back", p_back_to_back, 1.0), ("voice_warp", voice_warp, 0.5),
                             ("random_voices", random_voices, 1.0), ("klatt_voices", klatt_voices, 1.0),
                             ("turn_jitter", turn_jitter, 1.0)):
        if not 0.0 <= value <= top:
            raise ValueError(f"{name} must be in [0, {top:g}], not {value}")
    if klatt_voices and not random_voices:
        raise ValueError("klatt_voices makes some generated voices Klatt voices: it needs random_voices above 0")
    if random_voices and split != "train":
        raise ValueError("random voices are for training streams only: test voices are espeak-ng's own")
    espeak_exe()
    bad = unknown_voices(list(voices))
    if bad:
        raise ValueError(f"espeak-ng has no voice {', '.join(bad)} (a base voice, or base+variant from its voices/!v "
                         "that changes the base's speech: espeak-ng ignores variants on en-gb, use en+VARIANT)")
    if user_speech is not None and (voices or random_voices or voice_warp):
        raise ValueError("--user-speech takes the users from recordings: no --voices, --random-voices or --voice-warp")
    recordings = tuple((name, tuple(str(f) for f in files))
                       for name, files in speech_speakers(user_speech, speakers).items()) if user_speech else ()
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(str(out), i, dict(seed=seed * 100_003 + i, split=split, p_back_to_back=p_back_to_back,
                               voice_warp=voice_warp, random_voices=random_voices, klatt_voices=klatt_voices,
                               voices=tuple(voices), user_speech=recordings, turn_jitter=turn_jitter))
            for i in range(count)]
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        results = pool.map(_write_one, jobs)
        return [Path(p) for p in (progress(results, total=count) if progress else results)]

"""Random espeak-ng voice variants: many more training speakers than the ~60 variants espeak-ng ships.

A voice head learns what "another voice" is from the number of voices it hears, the way speaker
recognisers are trained on thousands of speakers. espeak-ng reads a variant as a small text file
(`pitch`, `formant`, `breath`, `flutter`, ... as in its docs/voices.md); each random draw is one new
speaker. The ranges span espeak-ng's own variants. By default they stay on its harmonic synthesizer; with
`klatt=True` a variant speaks through espeak-ng's Klatt synthesizer instead, with one of the voicing
sources in `KLATT_TRAIN_SOURCES`, so that a tagger learns what varies between Klatt voices too. The other
sources stay unheard in training: `klatt 1` is the test voice `klatt`, and 5-6 are the validation voices
`adam`, `benjamin`, `david` and `edward`.
"""
from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

from ...espeak import espeak_exe

SYNTHETIC_PREFIX = "rv"  # variant names of generated voices; never held out as a validation voice
KLATT_TRAIN_SOURCES = (2, 3, 4)  # espeak-ng `klatt N` voicing sources a generated variant may use


def is_synthetic(voice: str) -> bool:
    """True for a voice name such as `en-us+rv12_3` made by `random_variant`."""
    return voice.split("+")[-1].startswith(SYNTHETIC_PREFIX)


def random_variant(name: str, rng: random.Random, klatt: bool = False) -> str:
    """The text of one espeak-ng variant file: pitch, a vocal-tract length (all formants scaled together,
    each a little on its own), formant strengths and widths, breathiness, flutter, roughness, voicing,
    consonant strength, an optional echo and tone (bass/mid/treble) setting; with `klatt`, a Klatt
    voicing source from `KLATT_TRAIN_SOURCES` (drawn last, so other variants stay as they were)."""
    female = rng.random() < 0.5
    base = rng.uniform(140, 210) if female else rng.uniform(65, 100)
    top = base + (rng.uniform(40, 110) if female else rng.uniform(25, 60))
    tract = rng.uniform(0.92, 1.15) if female else rng.uniform(0.85, 1.05)
    lines = ["language variant", f"name {name}", f"gender {'female' if female else 'male'}",
             f"pitch {base:.0f} {top:.0f}"]
    for k in range(9):
        strength = rng.uniform(60, 150) if k < 6 else rng.uniform(10, 130)
        frequency = 100 * tract * rng.uniform(0.95, 1.05)
        width = rng.uniform(70, 170)
        lines.append(f"formant {k} {frequency:.0f} {strength:.0f} {width:.0f}")
    if rng.random() < 0.4:
        lines.append("breath " + " ".join(str(rng.randint(0, 10)) for _ in range(8)))
    lines += [f"flutter {rng.randint(0, 25)}", f"roughness {rng.randint(0, 6)}", f"voicing {rng.randint(40, 130)}",
              f"consonants {rng.randint(60, 150)} {rng.randint(60, 150)}"]
    if rng.random() < 0.3:
        lines.append(f"echo {rng.randint(60, 180)} {rng.randint(5, 20)}")
    if rng.random() < 0.3:
        lines.append("tone " + " ".join(f"{f} {rng.randint(60, 255)}" for f in (600, 1200, 2000)))
    if klatt:
        lines.append(f"klatt {rng.choice(KLATT_TRAIN_SOURCES)}")
    return "\n".join(lines) + "\n"


def system_data_dir() -> Path:
    """espeak-ng's data folder, as `espeak-ng --version` reports it."""
    out = subprocess.run([espeak_exe(), "--version"], check=True, capture_output=True, text=True).stdout
    match = re.search(r"Data at:\s*(\S+)", out)
    if match is None or not Path(match.group(1)).is_dir():
        raise RuntimeError(f"cannot find espeak-ng's data folder in {out.strip()!r}")
    return Path(match.group(1))


def data_path_with(variants: dict[str, str], root: Path) -> Path:
    """A folder for `espeak-ng --path`: the system's data (linked, not copied) plus `variants` (name ->
    file text) in voices/!v. Called again with the same root, it adds to it."""
    data = root / "espeak-ng-data"
    own = data / "voices" / "!v"
    if not own.is_dir():
        system = system_data_dir()
        own.mkdir(parents=True)
        for entry in system.iterdir():
            if entry.name != "voices":
                (data / entry.name).symlink_to(entry)
        for entry in (system / "voices").iterdir():
            if entry.name != "!v":
                (data / "voices" / entry.name).symlink_to(entry)
        for entry in (system / "voices" / "!v").iterdir():
            (own / entry.name).symlink_to(entry)
    for name, text in variants.items():
        (own / name).write_text(text, encoding="utf-8")
    return root


def unknown_voices(voices: list[str]) -> list[str]:
    """The `base+variant` names espeak-ng cannot speak as asked. espeak-ng ignores a variant silently in
    two ways: one it does not have, and any variant on some bases (espeak-ng 1.51 speaks `en-gb+f5` as
    plain `en-gb`; `en+f5` is the same British voice with the variant). So variants are looked up in its
    data, bases are tried, and a variant must change the base's speech."""
    variants = system_data_dir() / "voices" / "!v"
    speech: dict[str, bytes | None] = {}

    def spoken(voice: str) -> bytes | None:
        if voice not in speech:
            run = subprocess.run([espeak_exe(), "-v", voice, "--stdout", "one two"], capture_output=True)
            speech[voice] = run.stdout if run.returncode == 0 and run.stdout else None
        return speech[voice]

    def known(voice: str) -> bool:
        base, _, variant = voice.partition("+")
        if not base or (variant and not (variants / variant).is_file()) or spoken(base) is None:
            return False
        return not variant or spoken(voice) != spoken(base)

    return [voice for voice in dict.fromkeys(voices) if not known(voice)]


__all__ = ["KLATT_TRAIN_SOURCES", "SYNTHETIC_PREFIX", "data_path_with", "is_synthetic", "random_variant",
           "system_data_dir", "unknown_voices"]

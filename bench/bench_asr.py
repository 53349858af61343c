"""Speech recognition for the memory process: Whisper (bundled tiny.en) and pocketsphinx side by side.

Run: .venv/bin/python bench/bench_asr.py [--utterances 40] [--dialogs 20] [--digits 60] [--seed 0] [--json]
Sets, each transcribed by every backend in one run:
- espeak-ng: user lines of the stream generator (names, jobs, likes, colleagues, questions) spoken by
  its five test voices and the demo's two voices; word error rate (jiwer) and real-time factor;
- fsdd (real): the spoken digits of the Free Spoken Digit Dataset speakers in ../shared/data (each
  recording's digit is its transcript); word error rate and real-time factor;
- LibriSpeech (real) in ../shared/data has no reference text, so it is not scored;
- dialogs: 3-4 user lines per dialog, one voice each; the rule extractor's name, facts, preferences and
  relations from each backend's transcript against those from the true text (fact recall).
Real-time factor: seconds of transcription per second of audio on this machine's cores (2 here).
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import tempfile
import time
from pathlib import Path

import jiwer
import numpy as np

from egomem_ros.demo import VOICES as DEMO_VOICES
from egomem_ros.memory.asr import make_asr
from egomem_ros.memory.extraction import RuleExtractor, Turn
from egomem_ros.tools.datagen.synth import _USER, VOICES, Voice, _fill, tts

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DIGITS = "zero one two three four five six seven eight nine".split()
NORMALISE = jiwer.Compose([jiwer.ToLowerCase(), jiwer.SubstituteRegexes({r"(\d)": r" \1 "}),
                           jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(), jiwer.Strip(),
                           jiwer.SubstituteWords({str(i): w for i, w in enumerate(DIGITS)}), jiwer.ReduceToListOfListOfWords()])


def espeak_set(n: int, rng: random.Random, tmp: Path) -> list[tuple[np.ndarray, str]]:
    voices = VOICES["test"] + list(DEMO_VOICES.values())
    return [(tts(text := _fill(rng.choice(_USER), rng), Voice(voices[i % len(voices)]), rng, tmp), text)
            for i in range(n)]


def fsdd_set(n: int, rng: random.Random) -> list[tuple[np.ndarray, str]]:
    from egomem_ros.retrieval.media import load_audio

    manifest = SHARED / "MANIFEST.csv"
    if not manifest.is_file():
        return []
    out = []
    with manifest.open() as f:
        for row in csv.DictReader(f):
            if row["identity"].startswith("fsdd_"):
                digit = int(Path(row["path"]).name.split("_")[0])  # recordings/<digit>_<speaker>_<take>.wav
                out.append((load_audio(SHARED / row["file"]), DIGITS[digit]))
    return rng.sample(out, min(n, len(out)))


def dialogs(n: int, rng: random.Random, tmp: Path) -> list[tuple[np.ndarray, str]]:
    out = []
    for i in range(n):
        lines = [_USER[0], _USER[2], rng.choice([_USER[1], _USER[4], _USER[6]]), rng.choice(_USER[3:])]
        text = " ".join(_fill(t, rng) for t in lines)
        out.append((tts(text, Voice(VOICES["test"][i % len(VOICES["test"])]), rng, tmp), text))
    return out


def transcribe_all(asr, clips: list[tuple[np.ndarray, str]]) -> tuple[list[str], float, float]:
    heard, seconds = [], 0.0
    for pcm, _ in clips:
        t0 = time.perf_counter()
        heard.append(asr.transcribe(pcm))
        seconds += time.perf_counter() - t0
    audio = sum(len(pcm) for pcm, _ in clips) / 16000
    return heard, seconds, audio


def wer(refs: list[str], hyps: list[str]) -> float:
    return jiwer.wer(refs, [h or "<empty>" for h in hyps], reference_transform=NORMALISE,
                     hypothesis_transform=NORMALISE)


def memory_items(text: str) -> set[str]:
    ex = RuleExtractor().extract([Turn(speaker="user", text=text)])
    items = {f"name:{ex.name.lower()}"} if ex.name else set()
    items |= {f"fact:{f.lower()}" for f in ex.facts} | {f"pref:{p.lower()}" for p in ex.preferences}
    return items | {f"rel:{r.name.lower()}:{r.relation}" for r in ex.relations}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--utterances", type=int, default=40)
    ap.add_argument("--dialogs", type=int, default=20)
    ap.add_argument("--digits", type=int, default=60, help="FSDD recordings to score (of 200)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backends", nargs="+", default=["whisper", "pocketsphinx"])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        sets = {"espeak-ng": espeak_set(args.utterances, rng, Path(tmp)), "fsdd (real)": fsdd_set(args.digits, rng)}
        talks = dialogs(args.dialogs, rng, Path(tmp))
    truth = [memory_items(text) for _, text in talks]
    results: dict[str, dict] = {}
    for name in args.backends:
        t0 = time.perf_counter()
        asr = make_asr(name, "", 1)
        row = {"load_s": round(time.perf_counter() - t0, 2)}
        for set_name, clips in sets.items():
            if not clips:
                row[set_name] = "no data"
                continue
            heard, seconds, audio = transcribe_all(asr, clips)
            row[set_name] = {"wer": round(wer([t for _, t in clips], heard), 3), "rtf": round(seconds / audio, 3),
                             "clips": len(clips), "audio_s": round(audio, 1)}
        heard, seconds, audio = transcribe_all(asr, talks)
        found = [memory_items(h) for h in heard]
        hits = sum(len(t & f) for t, f in zip(truth, found))
        wrong = sum(len(f - t) for t, f in zip(truth, found))
        row["dialogs"] = {"fact_recall": round(hits / max(1, sum(map(len, truth))), 3), "items_not_said": wrong,
                          "wer": round(wer([t for _, t in talks], heard), 3), "rtf": round(seconds / audio, 3),
                          "dialogs": len(talks)}
        results[name] = row
    results["librispeech (real)"] = "not scored: ../shared/data holds no reference text for it"
    if args.json:
        print(json.dumps(results))
        return
    print(f"{'backend':<14}{'set':<14}{'WER':>7}{'RTF':>8}  notes")
    for name in args.backends:
        for set_name in [*sets, "dialogs"]:
            r = results[name][set_name]
            if isinstance(r, str):
                print(f"{name:<14}{set_name:<14}{'-':>7}{'-':>8}  {r}")
                continue
            note = (f"fact recall {r['fact_recall']:.3f}, {r['items_not_said']} items not said"
                    if set_name == "dialogs" else f"{r['clips']} clips, {r['audio_s']} s")
            print(f"{name:<14}{set_name:<14}{r['wer']:>7.3f}{r['rtf']:>8.3f}  {note}")
    print(f"LibriSpeech: {results['librispeech (real)']}")


if __name__ == "__main__":
    main()

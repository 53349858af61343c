"""Episodic-trigger labels, sessions, metrics, and the stream dataset format (paper §3.1.2, §5.2).

Every 80 ms step (12.5 steps/s) has a label: 0 no dialog, 1 start of a user's session, 2 in session,
3 end of session. A session is a run 1, 2…, 3 (inclusive step indices `(start, end)`).

Stream folder format (`egomem make-streams` writes it; real recordings can be converted to it):

    STREAM/listen.wav      mono, any sample rate: the microphone
    STREAM/speak.wav       optional, mono: the robot's own voice
    STREAM/labels.csv      header `step,label`, one row per 80 ms step
    STREAM/*.rttm          instead of labels.csv: speaker turns, converted to sessions
    STREAM/meta.json       optional: sessions with their speaker and transcript
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

STEP_S = 0.08
STEPS_PER_S = 12.5
NONE, START, INSIDE, END = 0, 1, 2, 3


@dataclass(frozen=True)
class Session:
    start: int  # first step (label 1)
    end: int    # last step (label 3)

    @property
    def steps(self) -> int:
        return self.end - self.start + 1


def labels_from_sessions(sessions: list[Session] | list[tuple[int, int]], n_steps: int) -> np.ndarray:
    labels = np.zeros(n_steps, dtype=np.int8)
    for s in sessions:
        start, end = (s.start, s.end) if isinstance(s, Session) else s
        start, end = max(0, start), min(n_steps - 1, end)
        if end <= start:
            continue
        labels[start] = START
        labels[start + 1:end] = INSIDE
        labels[end] = END
    return labels


def sessions_from_labels(labels: np.ndarray) -> list[Session]:
    """Decode labels leniently: a session runs over consecutive non-zero steps, a new one begins at
    every 1, and one ends at every 3. Runs shorter than two steps are dropped."""
    out: list[Session] = []
    start = None
    for i, lab in enumerate(np.asarray(labels).tolist()):
        if lab == NONE:
            if start is not None and i - 1 > start:
                out.append(Session(start, i - 1))
            start = None
            continue
        if lab == START or start is None:
            if start is not None and i - 1 > start:
                out.append(Session(start, i - 1))
            start = i
        if lab == END and start is not None:
            if i > start:
                out.append(Session(start, i))
            start = None
    if start is not None and len(labels) - 1 > start:
        out.append(Session(start, len(labels) - 1))
    return out


def jaccard(pred: np.ndarray, truth: np.ndarray) -> float:
    """|P ∩ G| / |P ∪ G| over in-session steps (1 when both are empty)."""
    p, g = np.asarray(pred) != NONE, np.asarray(truth) != NONE
    union = np.logical_or(p, g).sum()
    return float(np.logical_and(p, g).sum() / union) if union else 1.0


def span_match(pred: list[Session], truth: list[Session], tolerance: int) -> tuple[int, int, int]:
    """One-to-one matches whose start and end are both within `tolerance` steps.

    Returns (matched, n_pred, n_truth); precision = matched / n_pred, recall = matched / n_truth.
    """
    used: set[int] = set()
    matched = 0
    for g in truth:
        best, best_err = None, None
        for j, p in enumerate(pred):
            if j in used:
                continue
            err = max(abs(p.start - g.start), abs(p.end - g.end))
            if err <= tolerance and (best_err is None or err < best_err):
                best, best_err = j, err
        if best is not None:
            used.add(best)
            matched += 1
    return matched, len(pred), len(truth)


def prf(matched: int, n_pred: int, n_truth: int) -> dict[str, float]:
    p = matched / n_pred if n_pred else (1.0 if not n_truth else 0.0)
    r = matched / n_truth if n_truth else (1.0 if not n_pred else 0.0)
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


# --- stream folders ------------------------------------------------------------------------------
def write_labels(path: Path, labels: np.ndarray) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "label"])
        w.writerows(enumerate(np.asarray(labels).tolist()))


def read_labels(path: Path) -> np.ndarray:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or set(rows[0]) != {"step", "label"}:
        raise ValueError(f"{path}: expected a header 'step,label'")
    labels = np.zeros(len(rows), dtype=np.int8)
    for i, row in enumerate(rows):
        step, lab = int(row["step"]), int(row["label"])
        if step != i or lab not in (0, 1, 2, 3):
            raise ValueError(f"{path}: row {i + 2}: expected step {i} and a label in 0..3, got {row}")
        labels[i] = lab
    return labels


def sessions_from_rttm(path: Path, n_steps: int, max_gap_s: float = 3.0) -> list[Session]:
    """RTTM speaker turns -> sessions: a speaker's consecutive turns closer than `max_gap_s` (with no
    other speaker between) form one session."""
    turns = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0] == "SPEAKER":
            onset, dur, spk = float(parts[3]), float(parts[4]), parts[7]
            turns.append((onset, onset + dur, spk))
    turns.sort()
    sessions: list[tuple[float, float, str]] = []
    for onset, offset, spk in turns:
        if sessions and sessions[-1][2] == spk and onset - sessions[-1][1] <= max_gap_s:
            sessions[-1] = (sessions[-1][0], max(offset, sessions[-1][1]), spk)
        else:
            sessions.append((onset, offset, spk))
    out = [Session(int(round(a * STEPS_PER_S)), min(n_steps - 1, int(round(b * STEPS_PER_S)))) for a, b, _ in sessions]
    return [s for s in out if s.end > s.start]


@dataclass
class Stream:
    path: Path
    listen: np.ndarray            # 16 kHz mono float32
    speak: np.ndarray | None
    labels: np.ndarray | None     # per step, or None when the folder has no truth

    @property
    def n_steps(self) -> int:
        return int(len(self.listen) // (16000 * STEP_S))


def load_stream(folder: str | Path, *, rttm_max_gap_s: float = 3.0) -> Stream:
    from ..retrieval.media import load_audio

    folder = Path(folder)
    if not (folder / "listen.wav").is_file():
        raise FileNotFoundError(f"{folder}: no listen.wav")
    listen = load_audio(folder / "listen.wav")
    speak = load_audio(folder / "speak.wav") if (folder / "speak.wav").is_file() else None
    if speak is not None and len(speak) != len(listen):
        speak = np.pad(speak, (0, max(0, len(listen) - len(speak))))[:len(listen)]
    n = int(len(listen) // (16000 * STEP_S))
    labels = None
    if (folder / "labels.csv").is_file():
        labels = read_labels(folder / "labels.csv")
        labels = np.pad(labels, (0, max(0, n - len(labels))))[:n]
    else:
        rttms = sorted(folder.glob("*.rttm"))
        if rttms:
            labels = labels_from_sessions(sessions_from_rttm(rttms[0], n, rttm_max_gap_s), n)
    return Stream(folder, listen, speak, labels)


def stream_dirs(root: str | Path) -> list[Path]:
    root = Path(root)
    if (root / "listen.wav").is_file():
        return [root]
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and (p / "listen.wav").is_file())
    if not dirs:
        raise FileNotFoundError(f"{root}: no stream folders (each needs listen.wav)")
    return dirs

"""Per-step (80 ms) audio features of the listen and speak channels, and the user's turns in them.

Shared by the episodic-trigger tagger (its input) and the ASR (which transcribes the user's turns only).
One 32 ms frame at the centre of each step gives the listen channel's log-mel, the log power of the
low harmonics (94-470 Hz) and the log energy, each measured from the stream's own noise floor (10th
percentile) so that a gain change or an unseen stationary noise looks alike; then the pitch of the same
frame (log F0 and its voicing strength, from the frame's autocorrelation: a cue to who speaks that does
not depend on the voices the tagger was trained on). The speak channel is the robot's own clean voice:
its log energy alone says when the robot talks. One frame per step keeps the features of 8192 steps
(11 min) near 30 ms on 2 cores.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .trigger import HOP, SR, true_runs

N_FFT = 512
N_MELS = 40
LOW_BINS = slice(3, 16)               # 94-470 Hz at 31.25 Hz per bin
N_LOW = LOW_BINS.stop - LOW_BINS.start
ENERGY = N_MELS + N_LOW               # column of the listen log energy
PITCH = ENERGY + 1                    # column of log(F0 / 150 Hz) where voiced, else 0
VOICING = ENERGY + 2                  # column of the pitch's strength (normalised autocorrelation peak)
LISTEN_FEATURES = ENERGY + 3
FEATURES = LISTEN_FEATURES + 1        # + speak log energy (the last column)
SPEAK_FLOOR = math.log(1e-6)
RISE = 2.3                            # 10 dB in natural-log power
_MEL: torch.Tensor | None = None
_WINDOW = torch.hann_window(N_FFT)
F0_RANGE = (70.0, 400.0)              # Hz: adult and child voices
PITCH_BINS = 64                       # the spectrum below 2 kHz: strong harmonics, and a smooth autocorrelation
                                      # whose peak an integer lag does not miss (octave-down errors)
VOICED_STRENGTH = 0.5                 # a frame with a weaker autocorrelation peak has no pitch
_LAGS = slice(int(SR / F0_RANGE[1]), int(SR / F0_RANGE[0]) + 1)
OCTAVE_COST = 0.02                    # per octave of lag: a periodic frame correlates as well at two periods
_LAG_BASIS: torch.Tensor | None = None
_OCTAVE_COST: torch.Tensor | None = None


def mel_matrix() -> torch.Tensor:
    """(N_FFT // 2 + 1, N_MELS) so that power @ matrix is the mel spectrum."""
    global _MEL
    if _MEL is None:
        import librosa

        _MEL = torch.from_numpy(librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=60, fmax=7600)
                                .astype(np.float32)).T.contiguous()
    return _MEL


def _samples(pcm: np.ndarray, n_steps: int) -> torch.Tensor:
    """The first n_steps * HOP samples as float32 (zero-padded if short), without a copy when possible."""
    x = torch.from_numpy(np.ascontiguousarray(pcm[:n_steps * HOP], dtype=np.float32))
    return torch.nn.functional.pad(x, (0, n_steps * HOP - len(x))) if len(x) < n_steps * HOP else x


def _step_energy(pcm: np.ndarray | None, n_steps: int) -> torch.Tensor:
    """Log mean square per step from every 8th sample (`SPEAK_FLOOR` for silence or no channel)."""
    if pcm is None:
        return torch.full((n_steps,), SPEAK_FLOOR)
    sub = _samples(pcm, n_steps).reshape(n_steps, HOP)[:, ::8]
    return torch.log(torch.linalg.vector_norm(sub, dim=1) ** 2 / sub.shape[1] + 1e-6)


def frame_pitch(power: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per frame: F0 in Hz and its strength in [0, 1], from the autocorrelation (the inverse FFT of the
    power spectrum below 2 kHz) divided by the window's own, as in Boersma (1993): the division stops the
    window's taper from favouring short lags (octave-up errors); a small cost per octave of lag, as in
    Praat, breaks the near-tie of one period with two (octave-down errors)."""
    global _LAG_BASIS, _OCTAVE_COST
    if _LAG_BASIS is None:
        w = torch.fft.rfft(_WINDOW)
        window_ac = torch.fft.irfft(w.real ** 2 + w.imag ** 2, n=N_FFT)
        lags = torch.arange(_LAGS.start, _LAGS.stop, dtype=torch.float64)
        bins = torch.arange(PITCH_BINS, dtype=torch.float64)[:, None]
        weight = torch.where(bins == 0, 1.0, 2.0)                 # an rfft bin above 0 stands for two
        # the inverse FFT at the lags only, as one matrix product, each lag divided by the window's own
        basis = weight * torch.cos(2 * math.pi * bins * lags / N_FFT) / (window_ac / window_ac[0])[_LAGS].double()
        _LAG_BASIS = torch.cat([weight, basis], 1).float()      # column 0: lag 0
        _OCTAVE_COST = OCTAVE_COST * torch.log2(lags.float() / _LAGS.start)
    ac = power[:, :PITCH_BINS] @ _LAG_BASIS
    normalised = ac[:, 1:] / ac[:, :1].clamp(min=1e-12)
    lag = (normalised - _OCTAVE_COST).argmax(1, keepdim=True)
    return SR / (lag[:, 0] + _LAGS.start).float(), normalised.gather(1, lag)[:, 0].clamp(0.0, 1.0)


def stream_features(listen: np.ndarray, speak: np.ndarray | None, n_steps: int) -> np.ndarray:
    """(n_steps, FEATURES) float32: listen log-mel, low-harmonic log power and log energy, each minus
    its 10th percentile over the stream (the noise floor); the listen pitch (`PITCH`, `VOICING`); then
    the speak log energy."""
    if n_steps <= 0:
        return np.zeros((0, FEATURES), np.float32)
    x = _samples(listen, n_steps)
    offset = (HOP - N_FFT) // 2                                   # the frame sits at the step's centre
    spec = torch.stft(x[offset:offset + (n_steps - 1) * HOP + N_FFT], n_fft=N_FFT, hop_length=HOP,
                      window=_WINDOW, center=False, return_complex=True)
    power = (spec.real ** 2 + spec.imag ** 2).T.contiguous()      # (steps, N_FFT // 2 + 1)
    listen_feats = torch.log(torch.cat([power @ mel_matrix(), power[:, LOW_BINS], power.sum(1, keepdim=True)], 1)
                             + 1e-6)
    listen_feats -= torch.quantile(listen_feats[::4], 0.1, dim=0)
    f0, strength = frame_pitch(power)
    voiced = strength >= VOICED_STRENGTH
    log_f0 = torch.where(voiced, torch.log(f0 / 150.0), torch.zeros_like(f0))
    speak_energy = _step_energy(speak, n_steps)
    return torch.cat([listen_feats, log_f0[:, None], strength[:, None], speak_energy[:, None]], 1).numpy()


def robot_speaking(feats: np.ndarray) -> np.ndarray:
    """Steps where the speak channel is 10 dB over digital silence."""
    return feats[:, LISTEN_FEATURES] >= SPEAK_FLOOR + RISE


SPEECH_BANDS = slice(3, 32)           # mel bands from 340 Hz to 3.9 kHz: above hum and rumble
SPEECH_RISE = 1.5                     # 6.5 dB in natural-log power


ECHO_TAIL_STEPS = 6                   # 0.48 s: how late an echo of the robot may come (paper §4.1: 0.1-0.5 s)


def user_voiced(feats: np.ndarray) -> np.ndarray:
    """Steps where the listen channel's speech bands are on average SPEECH_RISE over their floor while
    the robot is silent: the user's own speech. Echo overlaps the robot and is left out with it, but a
    delayed echo outlasts the robot's voice on the speak channel; a voiced run that lies wholly within
    ECHO_TAIL_STEPS after the robot's voice is that echo, not a user (heard as one, it started the next
    user's session early). A user who starts that soon and goes on is kept."""
    robot = robot_speaking(feats)
    voiced = (feats[:, SPEECH_BANDS].mean(1) > SPEECH_RISE) & ~robot
    recent = robot.copy()
    for k in range(1, min(ECHO_TAIL_STEPS, len(robot)) + 1):
        recent[k:] |= robot[:-k]
    for s, e in true_runs(voiced):
        if recent[s:e + 1].all():
            voiced[s:e + 1] = False
    return voiced


def user_turns(voiced: np.ndarray, a: int, b: int, *, min_steps: int = 8, gap_steps: int = 3) -> list[tuple[int, int]]:
    """(start, end) inclusive runs of `voiced` within [a, b], joined across gaps of `gap_steps` or
    fewer; runs shorter than `min_steps` (echo tails, coughs) are not turns."""
    turns: list[tuple[int, int]] = []
    for s, e in true_runs(voiced[a:b + 1]):
        if turns and s - turns[-1][1] - 1 <= gap_steps:
            turns[-1] = (turns[-1][0], e)
        else:
            turns.append((s, e))
    return [(a + s, a + e) for s, e in turns if e - s + 1 >= min_steps]

"""Decoding and validating camera images and microphone audio before any model sees them.

Bad input raises `MediaError` with a reason a user can act on; nothing here crashes on odd formats.
"""
from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np

from ..errors import EgomemError

log = logging.getLogger(__name__)


class MediaError(EgomemError, ValueError):
    """An image or audio clip that cannot be used (corrupt, empty, NaN, wrong layout...)."""


# --- images -------------------------------------------------------------------------------------
def to_rgb8(array: np.ndarray, *, max_side: int = 0) -> np.ndarray:
    """Any HxW / HxWx{1,3,4} array of uint8/uint16/float -> contiguous HxWx3 uint8 RGB.

    16-bit and float images are rescaled to 8 bits; alpha is dropped; images whose longest side exceeds
    `max_side` (if > 0) are downscaled, keeping the aspect ratio.
    """
    img = np.asarray(array)
    if img.size == 0 or img.ndim not in (2, 3):
        raise MediaError(f"image must be HxW or HxWxC with pixels, got shape {img.shape}")
    if img.ndim == 3 and img.shape[2] not in (1, 3, 4):
        raise MediaError(f"image must have 1, 3 or 4 channels, got {img.shape[2]}")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype.kind == "f":
        if not np.all(np.isfinite(img)):
            raise MediaError("image has NaN/inf pixels")
        scale = 255.0 if img.max(initial=0) <= 1.0 else 1.0
        img = np.clip(img * scale, 0, 255).astype(np.uint8)
    elif img.dtype == bool:
        img = img.astype(np.uint8) * 255
    elif img.dtype != np.uint8:
        raise MediaError(f"unsupported pixel type {img.dtype}")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 4:
        img = img[:, :, :3]
    h, w = img.shape[:2]
    if max_side and max(h, w) > max_side:
        from PIL import Image

        scale = max_side / max(h, w)
        img = np.asarray(Image.fromarray(img).resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                                     Image.BILINEAR))
    return np.ascontiguousarray(img)


# Limits a robot needs (docs/ros.md, "Input limits"): an 8K camera frame is 33 MP, studio audio 192 kHz.
# Larger frames only cost memory (a 144 MP JPEG took replay to 2.4 GB) and higher rates time.
MAX_IMAGE_PIXELS = 50_000_000
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 192_000


def load_image(source: str | Path | bytes, *, max_side: int = 0) -> np.ndarray:
    """Decode a file or encoded bytes (JPEG, PNG, BMP, WebP, TIFF, 16-bit PNG...) to RGB uint8."""
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        if isinstance(source, (bytes, bytearray)):
            if not source:
                raise MediaError("empty image data")
            im = Image.open(io.BytesIO(source))
        else:
            path = Path(source)
            if not path.is_file() or path.stat().st_size == 0:
                raise MediaError(f"image file missing or empty: {path}")
            im = Image.open(path)
        # PIL refuses only above twice MAX_IMAGE_PIXELS and warns below: refuse at the limit itself,
        # from the header, before anything is decompressed
        if im.size[0] * im.size[1] > MAX_IMAGE_PIXELS:
            raise MediaError(f"image of {im.size[0]}x{im.size[1]} pixels is over the {MAX_IMAGE_PIXELS:,}-pixel "
                             "limit (a decompression bomb, or not a camera frame)")
        im.load()
    except MediaError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise MediaError(f"cannot decode image: {err}") from None
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im).astype(np.uint32)
        arr = (arr >> 8).astype(np.uint8) if arr.max(initial=0) > 255 else arr.astype(np.uint8)
    elif im.mode not in ("RGB", "RGBA", "L"):
        arr = np.asarray(im.convert("RGB"))
    else:
        arr = np.asarray(im)
    return to_rgb8(arr, max_side=max_side)


# --- audio --------------------------------------------------------------------------------------
def resample(pcm: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return pcm
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(sr_in), int(sr_out))
    return resample_poly(pcm, sr_out // g, sr_in // g).astype(np.float32)


MAX_CHANNELS = 64  # a microphone array; more is a transposed buffer, not audio


def clean_audio(pcm: np.ndarray, sample_rate: int, target_rate: int = 16_000, *,
                min_seconds: float = 0.0, allow_silence: bool = False) -> np.ndarray:
    """Validate and convert to mono float32 in [-1, 1] at `target_rate`.

    Rejects empty, NaN/inf and (unless `allow_silence`, as a dialog stream needs) all-zero audio and
    impossible sample rates; integer PCM is scaled;
    stereo is averaged; heavy clipping is logged (it degrades speaker embeddings) but kept.
    """
    x = np.asarray(pcm)
    if not MIN_SAMPLE_RATE <= int(sample_rate) <= MAX_SAMPLE_RATE:
        raise MediaError(f"sample rate {sample_rate} Hz is outside {MIN_SAMPLE_RATE:,}-{MAX_SAMPLE_RATE:,} Hz")
    if x.size == 0:
        raise MediaError("empty audio")
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        x = x.astype(np.float32) / max(abs(info.min), info.max)
    elif x.dtype.kind == "f":
        x = x.astype(np.float32)
    else:
        raise MediaError(f"unsupported sample type {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise MediaError("audio has NaN/inf samples")
    if x.ndim == 2:  # samples x channels, as audio messages and sound files carry it
        if x.shape[1] > MAX_CHANNELS or x.shape[1] > x.shape[0]:
            raise MediaError(f"audio of shape {x.shape} is not samples x channels (at most {MAX_CHANNELS} channels)")
        x = x.mean(axis=1)
    elif x.ndim != 1:
        raise MediaError(f"audio must be 1-D or 2-D (samples x channels), got shape {x.shape}")
    peak = float(np.max(np.abs(x)))
    if peak == 0.0 and not allow_silence:
        raise MediaError("audio is all zeros")
    if peak > 1.0:
        x = x / peak
    clipped = float(np.mean(np.abs(x) >= 0.999))
    if clipped > 0.01:
        log.warning("audio is clipped (%.1f%% of samples at full scale)", 100 * clipped)
    x = resample(x, int(sample_rate), target_rate)
    if x.size < min_seconds * target_rate:
        raise MediaError(f"audio too short: {x.size / target_rate:.2f} s < {min_seconds:.2f} s")
    return x


def load_audio(path: str | Path, target_rate: int = 16_000) -> np.ndarray:
    """Read WAV/FLAC/OGG/MP3 (anything libsndfile reads), any rate and channel count."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise MediaError(f"audio file missing or empty: {path}")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except (RuntimeError, sf.LibsndfileError, ValueError) as err:
        raise MediaError(f"cannot decode audio {path.name}: {err}") from None
    return clean_audio(data, sr, target_rate)

"""ROS message <-> numpy, without ROS. Works on rclpy messages and on rosbags' message classes alike
(same field names), so the nodes and `egomem replay` share it and the tests exercise it with rosbags.

Inputs: sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8, 8UC1/3/4, mono16 rescaled; 16UC1 and
32FC1 depth images refused), sensor_msgs/CompressedImage (jpeg, png, ...), audio_common_msgs audio
(+ AudioInfo: S16LE, S16BE, S32LE, F32LE, F64LE, U8, any channel count and rate), egomem_msgs/AudioFrame.
Outputs are plain field dictionaries (see `msg_fields.py`).
"""
from __future__ import annotations

import threading
from collections import deque

import numpy as np

from .retrieval.media import MAX_IMAGE_PIXELS, MediaError, load_image

_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8uc1": 1, "8uc3": 3, "8uc4": 4,
             "mono16": 1}
_REFUSED = {"16uc1": "a 16-bit depth image", "32fc1": "a float depth image", "16sc1": "a 16-bit signed image"}


def _buffer(data) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data.view(np.uint8).ravel()
    return np.frombuffer(bytes(data), dtype=np.uint8)


def image_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image -> HxWx3 uint8 RGB; raises MediaError with the reason on bad input."""
    enc = (msg.encoding or "").lower()
    if enc in _REFUSED:
        raise MediaError(f"image encoding {msg.encoding!r} is {_REFUSED[enc]}, not a camera frame: "
                         "remap the identity node to a colour or mono camera topic")
    if enc not in _CHANNELS:
        raise MediaError(f"unsupported image encoding {msg.encoding!r} (rgb8, bgr8, rgba8, bgra8, mono8, mono16)")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h == 0 or w == 0:
        raise MediaError("empty image (0 x 0)")
    if h * w > MAX_IMAGE_PIXELS:
        raise MediaError(f"image of {w}x{h} pixels is over the {MAX_IMAGE_PIXELS:,}-pixel limit")
    ch = _CHANNELS[enc]
    bpp = 2 if enc == "mono16" else 1
    raw = _buffer(msg.data)
    if step < w * ch * bpp or raw.size < step * (h - 1) + w * ch * bpp:
        raise MediaError(f"image data too short: {raw.size} bytes for {w}x{h} {msg.encoding} with step {step}")
    rows = np.lib.stride_tricks.as_strided(raw, shape=(h, w * ch * bpp), strides=(step, 1))
    if enc == "mono16":
        dtype = ">u2" if getattr(msg, "is_bigendian", 0) else "<u2"
        img = (np.ascontiguousarray(rows).view(dtype).reshape(h, w) >> 8).astype(np.uint8)
        return np.repeat(img[:, :, None], 3, axis=2)
    img = np.ascontiguousarray(rows).reshape(h, w, ch)
    if ch == 1:
        return np.repeat(img, 3, axis=2)
    if enc.startswith("bgr"):
        img = img[:, :, [2, 1, 0]]
    return np.ascontiguousarray(img[:, :, :3])


def compressed_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg, png, ...) -> RGB uint8."""
    return load_image(bytes(_buffer(msg.data)))


_SAMPLE_TYPES = {"S16LE": "<i2", "S16BE": ">i2", "S32LE": "<i4", "S32BE": ">i4", "F32LE": "<f4", "F32BE": ">f4",
                 "F64LE": "<f8", "U8": "u1", "S8": "i1"}


def audio_to_pcm(data, channels: int, sample_rate: int, sample_format: str = "S16LE") -> tuple[np.ndarray, int]:
    """Raw interleaved audio bytes -> (samples x channels) array in its own dtype, and the rate.

    `clean_audio` later scales, mixes to mono and resamples. Unsupported formats raise MediaError.
    """
    fmt = (sample_format or "S16LE").upper()
    if fmt not in _SAMPLE_TYPES:
        raise MediaError(f"unsupported audio sample format {sample_format!r} ({', '.join(_SAMPLE_TYPES)})")
    if channels < 1:
        raise MediaError(f"audio with {channels} channels")
    raw = _buffer(data)
    dtype = np.dtype(_SAMPLE_TYPES[fmt])
    usable = raw.size - raw.size % (dtype.itemsize * channels)
    if usable == 0:
        raise MediaError("empty audio message")
    pcm = raw[:usable].view(dtype).astype(dtype.newbyteorder("="))
    if fmt == "U8":
        pcm = pcm.astype(np.int16) - 128
        pcm = (pcm * 256).astype(np.int16)
    return pcm.reshape(-1, channels), int(sample_rate)


def audio_frame_to_pcm(msg) -> tuple[np.ndarray, int]:
    """egomem_msgs/AudioFrame (interleaved int16) -> (samples x channels, rate)."""
    data = np.asarray(msg.data, dtype=np.int16)
    ch = max(1, int(msg.channels))
    if data.size == 0:
        raise MediaError("empty audio frame")
    return data[:data.size - data.size % ch].reshape(-1, ch), int(msg.sample_rate)


def audio_msg_to_pcm(msg, info: tuple[int, int, str] | None) -> tuple[np.ndarray, int]:
    """Any supported audio message -> (samples x channels, rate).

    egomem_msgs/AudioFrame carries its own format; audio_common_msgs AudioDataStamped / AudioData need
    the latest AudioInfo as (channels, sample_rate, sample_format), and without one the chunk is refused.
    """
    if hasattr(msg, "sample_rate") and hasattr(msg, "channels"):
        return audio_frame_to_pcm(msg)
    if info is None:
        raise MediaError("audio before any audio_common_msgs/AudioInfo: rate and format unknown, chunk dropped")
    data = msg.audio.data if hasattr(msg, "audio") else msg.data
    return audio_to_pcm(data, *info)


def audio_info_of(msg) -> tuple[int, int, str]:
    return int(msg.channels), int(msg.sample_rate), msg.sample_format


class AudioFormat:
    """The microphone's format (from AudioInfo) and the chunks that came before it. A latched AudioInfo
    reaches a new subscriber only after discovery, so the first chunks often come first: they are held
    (up to `hold` of them) and decoded when the format is known, never dropped."""

    def __init__(self, hold: int = 100):
        self.info: tuple[int, int, str] | None = None
        self._early: deque = deque(maxlen=hold)
        self._lock = threading.Lock()   # sensor callbacks run on several threads

    def set(self, msg) -> list:
        """Take an AudioInfo; returns the held chunks, to be handled now in their order."""
        with self._lock:
            self.info = audio_info_of(msg)
            early = list(self._early)
            self._early.clear()
        return early

    def decode(self, msg) -> tuple[np.ndarray, int] | None:
        """(samples x channels, rate), or None while the chunk waits for the AudioInfo."""
        if not (hasattr(msg, "sample_rate") and hasattr(msg, "channels")):
            with self._lock:
                if self.info is None:
                    self._early.append(msg)
                    return None
        return audio_msg_to_pcm(msg, self.info)


def stamp_to_sec(stamp) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def sec_to_stamp(t: float) -> dict[str, int]:
    sec = int(np.floor(t))
    return {"sec": sec, "nanosec": int(round((t - sec) * 1e9)) % 1_000_000_000}

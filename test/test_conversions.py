"""Message conversion with rosbags' real ROS 2 message classes: every image encoding, compressed
jpeg/png, and audio formats (S16LE, F32LE, mono/stereo, any rate)."""
import io

import numpy as np
import pytest
from PIL import Image as PILImage

from egomem_ros.msg_conversions import (audio_frame_to_pcm, audio_to_pcm, compressed_to_rgb, image_to_rgb, sec_to_stamp,
                                        stamp_to_sec)
from egomem_ros.retrieval.media import MediaError, clean_audio
from egomem_ros.ros_types import make, typestore

RGB = np.random.default_rng(0).integers(0, 255, (6, 5, 3), dtype=np.uint8)


def _roundtrip(typename, fields):
    """Serialize to CDR and back, as a bag or DDS would, before converting."""
    ts = typestore()
    return ts.deserialize_cdr(ts.serialize_cdr(make(typename, fields), typename), typename)


def _image(encoding, pixels, channels, step_pad=0):
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1)
    if step_pad:
        rows = np.concatenate([rows, np.zeros((h, step_pad), rows.dtype)], 1)
    return _roundtrip("sensor_msgs/msg/Image", {"encoding": encoding, "height": h, "width": w,
                                                "step": rows.shape[1] * rows.itemsize,
                                                "data": np.ascontiguousarray(rows).view(np.uint8).ravel()})


@pytest.mark.parametrize("encoding,pixels,expect", [
    ("rgb8", RGB, RGB),
    ("bgr8", RGB[:, :, ::-1].copy(), RGB),
    ("rgba8", np.concatenate([RGB, np.full((6, 5, 1), 255, np.uint8)], 2), RGB),
    ("bgra8", np.concatenate([RGB[:, :, ::-1], np.zeros((6, 5, 1), np.uint8)], 2), RGB),
    ("mono8", RGB[:, :, 0].copy(), np.repeat(RGB[:, :, :1], 3, 2)),
])
def test_image_encodings(encoding, pixels, expect):
    np.testing.assert_array_equal(image_to_rgb(_image(encoding, pixels, 3)), expect)
    np.testing.assert_array_equal(image_to_rgb(_image(encoding, pixels, 3, step_pad=4)), expect)  # row padding


def test_mono16_is_rescaled_and_depth_is_refused():
    mono16 = (RGB[:, :, 0].astype(np.uint16) << 8)
    assert image_to_rgb(_image("mono16", mono16, 1))[0, 0, 0] == RGB[0, 0, 0]
    with pytest.raises(MediaError, match="depth image"):
        image_to_rgb(_image("16UC1", mono16, 1))
    with pytest.raises(MediaError, match="unsupported image encoding"):
        image_to_rgb(_image("yuv422", RGB, 3))
    short = _roundtrip("sensor_msgs/msg/Image", {"encoding": "rgb8", "height": 10, "width": 10, "step": 30,
                                                 "data": np.zeros(20, np.uint8)})
    with pytest.raises(MediaError, match="too short"):
        image_to_rgb(short)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_compressed(fmt):
    buf = io.BytesIO()
    PILImage.fromarray(np.full((16, 16, 3), 120, np.uint8)).save(buf, format=fmt)
    msg = _roundtrip("sensor_msgs/msg/CompressedImage", {"format": fmt.lower(), "data": np.frombuffer(buf.getvalue(), np.uint8)})
    assert abs(int(compressed_to_rgb(msg)[8, 8, 0]) - 120) <= 2
    bad = _roundtrip("sensor_msgs/msg/CompressedImage", {"format": "jpeg", "data": np.frombuffer(b"garbage", np.uint8)})
    with pytest.raises(MediaError):
        compressed_to_rgb(bad)


def test_audio_formats_channels_and_rates():
    tone = 0.5 * np.sin(np.arange(4800) / 7.0)
    s16 = (tone * 32767).astype("<i2")
    msg = _roundtrip("audio_common_msgs/msg/AudioDataStamped", {"audio": {"data": s16.view(np.uint8)}})
    pcm, rate = audio_to_pcm(msg.audio.data, 1, 48000, "S16LE")
    assert rate == 48000 and pcm.shape == (4800, 1) and np.array_equal(pcm[:, 0], s16)
    stereo = np.stack([s16, s16], 1).ravel()
    pcm, _ = audio_to_pcm(stereo.view(np.uint8), 2, 44100, "S16LE")
    assert pcm.shape == (4800, 2)
    f32 = tone.astype("<f4")
    pcm, _ = audio_to_pcm(f32.view(np.uint8), 1, 8000, "F32LE")
    assert np.allclose(pcm[:, 0], tone, atol=1e-6)
    x = clean_audio(pcm, 8000)                 # to 16 kHz mono float
    assert abs(len(x) - 9600) <= 1
    with pytest.raises(MediaError, match="sample format"):
        audio_to_pcm(s16.view(np.uint8), 1, 16000, "MP3")
    with pytest.raises(MediaError, match="empty"):
        audio_to_pcm(np.zeros(1, np.uint8), 1, 16000, "S16LE")


def test_audio_frame_and_stamps():
    frame = _roundtrip("egomem_msgs/msg/AudioFrame", {"sample_rate": 22050, "channels": 2,
                                                      "data": np.arange(10, dtype=np.int16)})
    pcm, rate = audio_frame_to_pcm(frame)
    assert rate == 22050 and pcm.shape == (5, 2)
    t = 1700000000.25
    stamp = make("builtin_interfaces/msg/Time", sec_to_stamp(t))
    assert stamp_to_sec(stamp) == pytest.approx(t)


def test_one_decoder_for_every_audio_message():
    from egomem_ros.msg_conversions import audio_info_of, audio_msg_to_pcm

    s16 = np.arange(8, dtype="<i2")
    stamped = _roundtrip("audio_common_msgs/msg/AudioDataStamped", {"audio": {"data": s16.view(np.uint8)}})
    with pytest.raises(MediaError, match="AudioInfo"):
        audio_msg_to_pcm(stamped, None)
    info = audio_info_of(_roundtrip("audio_common_msgs/msg/AudioInfo",
                                    {"channels": 2, "sample_rate": 16000, "sample_format": "S16LE"}))
    pcm, rate = audio_msg_to_pcm(stamped, info)
    assert pcm.shape == (4, 2) and rate == 16000
    frame = _roundtrip("egomem_msgs/msg/AudioFrame", {"sample_rate": 8000, "channels": 1, "data": s16})
    pcm, rate = audio_msg_to_pcm(frame, None)   # carries its own format
    assert pcm.shape == (8, 1) and rate == 8000


def test_audio_before_its_audio_info_is_held_not_dropped():
    """A latched AudioInfo reaches a new subscriber after discovery: the chunks that came first wait."""
    from types import SimpleNamespace

    from egomem_ros.msg_conversions import AudioFormat

    fmt = AudioFormat(hold=2)
    chunk = lambda v: SimpleNamespace(audio=SimpleNamespace(data=np.full(4, v, np.int16).view(np.uint8)))  # noqa: E731
    assert fmt.decode(chunk(1)) is None and fmt.decode(chunk(2)) is None and fmt.decode(chunk(3)) is None
    early = fmt.set(SimpleNamespace(channels=1, sample_rate=16000, sample_format="S16LE"))
    assert len(early) == 2   # bounded: the oldest went
    pcm, rate = fmt.decode(early[0])
    assert rate == 16000 and pcm.shape[0] == 4 and pcm[0, 0] > 0
    assert fmt.decode(chunk(4)) is not None

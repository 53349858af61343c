import io
import logging

import numpy as np
import pytest
from PIL import Image

from egomem_ros.retrieval.media import MediaError, clean_audio, load_image, to_rgb8


def _encode(arr, fmt="PNG", mode=None):
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format=fmt)
    return buf.getvalue()


def test_image_formats_become_rgb8():
    grey = np.full((40, 50), 128, np.uint8)
    rgba = np.zeros((40, 50, 4), np.uint8)
    deep = np.full((40, 50), 40000, np.uint16)
    for data in (_encode(grey), _encode(rgba), _encode(deep), _encode(np.zeros((40, 50, 3), np.uint8), "JPEG")):
        img = load_image(data)
        assert img.shape == (40, 50, 3) and img.dtype == np.uint8
    assert load_image(_encode(deep))[0, 0, 0] == 40000 >> 8
    assert to_rgb8(np.ones((10, 10), np.float32)).max() == 255


def test_huge_image_is_downscaled():
    img = to_rgb8(np.zeros((4000, 3000, 3), np.uint8), max_side=1280)
    assert max(img.shape[:2]) == 1280 and img.shape[2] == 3


@pytest.mark.parametrize("bad", [b"", b"not an image at all", _encode(np.zeros((8, 8, 3), np.uint8))[:40]])
def test_corrupt_or_empty_images_raise_media_error(bad):
    with pytest.raises(MediaError):
        load_image(bad)


def test_bad_arrays():
    for arr in (np.zeros((0, 0, 3), np.uint8), np.zeros((4, 4, 2), np.uint8), np.full((4, 4), np.nan, np.float32)):
        with pytest.raises(MediaError):
            to_rgb8(arr)


def test_audio_validation(caplog):
    sr = 16000
    tone = (0.3 * np.sin(np.arange(sr) / 10)).astype(np.float32)
    assert clean_audio(tone, sr).shape == (sr,)
    assert clean_audio((tone * 32767).astype(np.int16), sr).dtype == np.float32
    assert abs(clean_audio(np.stack([tone, tone], 1), 48000).size - sr // 3) <= 1  # stereo + resample
    assert clean_audio(tone, 8000).shape == (2 * sr,)
    for bad, rate in ((np.zeros(0), sr), (np.zeros(sr), sr), (np.full(sr, np.nan), sr), (np.full(sr, np.inf), sr),
                      (tone, 10), (np.zeros((2, 2, 2)), sr)):
        with pytest.raises(MediaError):
            clean_audio(bad, rate)
    with caplog.at_level(logging.WARNING):
        clean_audio(np.clip(tone * 10, -1, 1), sr)
    assert "clipped" in caplog.text


def test_a_microphone_array_is_mixed_not_shrunk():
    """9 or more channels (samples x channels) used to be averaged the wrong way: 16 samples were left."""
    from egomem_ros.retrieval.media import MediaError, clean_audio

    x = np.tile((0.1 * np.sin(np.arange(16000) / 7)).astype(np.float32)[:, None], (1, 16))
    assert len(clean_audio(x, 16000)) == 16000
    with pytest.raises(MediaError, match="not samples x channels"):
        clean_audio(x.T, 16000)


def test_images_over_the_pixel_limit_are_refused_from_the_header(monkeypatch):
    """PIL itself only refuses above twice its limit (and warns below): the limit is now the limit."""
    import io

    from PIL import Image

    from egomem_ros.retrieval import media

    buf = io.BytesIO()
    Image.new("L", (3000, 2000)).save(buf, format="PNG")
    monkeypatch.setattr(media, "MAX_IMAGE_PIXELS", 4_000_000)   # 6 MP: over the limit, under twice it
    with pytest.raises(media.MediaError, match="over the 4,000,000-pixel limit"):
        media.load_image(buf.getvalue())


def test_a_robot_needs_no_more_than_50_megapixels_or_192_khz():
    from types import SimpleNamespace

    from egomem_ros.msg_conversions import image_to_rgb

    huge = SimpleNamespace(encoding="rgb8", height=10_000, width=6_000, step=18_000, data=b"")
    with pytest.raises(MediaError, match="50,000,000-pixel limit"):
        image_to_rgb(huge)
    with pytest.raises(MediaError, match="outside 1,000-192,000 Hz"):
        clean_audio(np.ones(1000, np.float32), 383_993)
    assert clean_audio(np.ones(4800, np.float32) * 0.1, 48_000).size == 1600

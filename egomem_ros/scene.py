"""Writing ROS 2 bags of a scene without ROS: camera frames, microphone audio, and text topics.

Used by `egomem demo` (which builds its scene at run time) and by the tests (which build bags from
../shared/data). The topics and types are what a robot records: sensor_msgs/Image (rgb8) or
CompressedImage (jpeg), audio_common_msgs/AudioDataStamped (S16LE) with a latched AudioInfo, and
std_msgs/String for transcripts and the dialog model's text.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from . import msg_fields as F
from .ros_types import make, typestore

CAMERA, COMPRESSED, AUDIO, AUDIO_INFO = "/camera/image_raw", "/camera/image_raw/compressed", "/audio", "/audio_info"
TRANSCRIPT, DIALOG_TEXT = "/asr/transcript", "/egomem/dialog/text"
SPEAK_AUDIO = "/egomem/dialog/audio_out"  # the robot's own voice (the speak channel), as the dialog node publishes it


class SceneBag:
    def __init__(self, path: str | Path, *, sample_rate: int = 16_000, mcap: bool = True):
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.ts = typestore()
        self.rate = sample_rate
        self.writer = Writer(Path(path), version=8,
                             storage_plugin=StoragePlugin.MCAP if mcap else StoragePlugin.SQLITE3)
        self.writer.open()
        self._conns: dict[str, object] = {}
        self._info_written = False

    def _write(self, topic: str, msgtype: str, t: float, fields: dict) -> None:
        if topic not in self._conns:
            self._conns[topic] = self.writer.add_connection(topic, msgtype, typestore=self.ts)
        self.writer.write(self._conns[topic], int(t * 1e9), self.ts.serialize_cdr(make(msgtype, fields), msgtype))

    def image(self, t: float, rgb: np.ndarray, *, compressed: bool = False) -> None:
        if compressed:
            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
            self._write(COMPRESSED, "sensor_msgs/msg/CompressedImage", t,
                        {"header": F.header(t, "camera"), "format": "jpeg", "data": np.frombuffer(buf.getvalue(), np.uint8)})
        else:
            self._write(CAMERA, "sensor_msgs/msg/Image", t, F.image_fields(rgb, t, "camera"))

    def audio(self, t: float, pcm: np.ndarray) -> None:
        """Mono float audio at the bag's rate, written as S16LE chunks."""
        if not self._info_written:
            self._write(AUDIO_INFO, "audio_common_msgs/msg/AudioInfo", t,
                        {"channels": 1, "sample_rate": self.rate, "sample_format": "S16LE",
                         "bitrate": self.rate * 16, "coding_format": "WAVE"})
            self._info_written = True
        data = F.pcm16(pcm).view(np.uint8)
        self._write(AUDIO, "audio_common_msgs/msg/AudioDataStamped", t,
                    {"header": F.header(t, "mic"), "audio": {"data": data}})

    def audio_frame(self, topic: str, t: float, pcm: np.ndarray) -> None:
        """Mono float audio as an egomem_msgs/AudioFrame (what the dialog node publishes)."""
        self._write(topic, "egomem_msgs/msg/AudioFrame", t, F.audio_frame_fields(pcm, self.rate, t, "speaker"))

    def text(self, topic: str, t: float, text: str) -> None:
        self._write(topic, "std_msgs/msg/String", t, {"data": text})

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> SceneBag:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""espeak-ng, the one wrapper: the demo's two voices and the synthetic speech of data generation both
speak through `espeak_wav`."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def espeak_exe() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    return exe


def espeak_wav(text: str, out: Path, voice: str, *, speed: int = 150, pitch: int | None = None,
               data_path: str | Path | None = None) -> Path:
    """`text` spoken by espeak-ng `voice` into the WAV file `out` (espeak's own rate, 22.05 kHz)."""
    args = [espeak_exe(), *([f"--path={data_path}"] if data_path else []), "-v", voice, "-s", str(speed)]
    args += ["-p", str(pitch)] if pitch is not None else []
    subprocess.run([*args, "-w", str(out), text], check=True, capture_output=True)
    return Path(out)

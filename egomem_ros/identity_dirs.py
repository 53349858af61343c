"""Collections of faces or voices laid out as DIR/<identity>/<files>: the shared test data, a household's
enrolment photos. Evaluation and data generation both read them; this is the floor below both.
"""
from __future__ import annotations

from pathlib import Path

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
AUDIO_EXT = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}


def identity_files(root: str | Path, extensions: set[str]) -> dict[str, list[Path]]:
    """identity -> sorted files with one of `extensions` (identities with no such file are skipped)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"not a directory: {root}")
    out: dict[str, list[Path]] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted((f for f in sub.iterdir() if f.suffix.lower() in extensions and f.is_file()),
                       key=lambda f: (len(f.stem), f.stem))
        if files:
            out[sub.name] = files
    if not out:
        raise FileNotFoundError(f"{root}: expected sub-directories per identity holding "
                                f"{'/'.join(sorted(extensions))} files")
    return out

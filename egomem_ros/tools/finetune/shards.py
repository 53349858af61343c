"""Token-stream shards on disk: safetensors files plus one JSON manifest with their checksums.

    DATA/manifest.json        {"format": "egomem-streams/1", "checkpoint", "tokenizer", "layout",
                               "max_steps", "transcripts", "shards": [{"file", "sha256", "streams": [...]}]}
    DATA/shard_00000.safetensors
        "<stream id>/codes"   int32 [17, T]: text, 8 robot (speak) and 8 user (listen) Mimi codebooks
        "<stream id>/labels"  int8 [T]: episodic-trigger labels 0/1/2/3 per 80 ms step

Each stream entry in the manifest holds its dialogs, turns, step spans and MemChunk texts (see
`streams.StreamBuilder`); `masks.py` turns them into samples. A shard whose checksum does not match is
skipped with a log line. Shards are written to a temporary name and renamed, and the manifest is
rewritten after every shard, so an interrupted run keeps what it finished and resumes after it.
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
FORMAT = "egomem-streams/1"
MANIFEST = "manifest.json"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class Stream:
    id: str
    codes: np.ndarray   # [17, T] int32
    labels: np.ndarray  # [T] int8
    meta: dict[str, Any]


class ShardWriter:
    """Appends shards of `per_shard` streams to DATA and keeps the manifest current."""

    def __init__(self, folder: Path, header: dict[str, Any], per_shard: int = 64):
        self.folder, self.per_shard = Path(folder), per_shard
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / MANIFEST
        self.manifest = json.loads(path.read_text()) if path.is_file() else {"format": FORMAT, **header, "shards": []}
        if self.manifest.get("format") != FORMAT:
            raise ValueError(f"{path} is not an {FORMAT} manifest")
        self._pending: list[Stream] = []

    @property
    def done_streams(self) -> set[str]:
        return {s["id"] for shard in self.manifest["shards"] for s in shard["streams"]}

    def add(self, stream: Stream) -> None:
        self._pending.append(stream)
        if len(self._pending) >= self.per_shard:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        from safetensors.numpy import save_file

        name = f"shard_{len(self.manifest['shards']):05d}.safetensors"
        tensors = {}
        for s in self._pending:
            tensors[f"{s.id}/codes"] = np.ascontiguousarray(s.codes, dtype=np.int32)
            tensors[f"{s.id}/labels"] = np.ascontiguousarray(s.labels, dtype=np.int8)
        tmp = self.folder / (name + ".tmp")
        save_file(tensors, str(tmp))
        tmp.replace(self.folder / name)
        self.manifest["shards"].append({"file": name, "sha256": sha256_file(self.folder / name),
                                        "streams": [{"id": s.id, **s.meta} for s in self._pending]})
        self._pending = []
        tmp_manifest = self.folder / (MANIFEST + ".tmp")
        tmp_manifest.write_text(json.dumps(self.manifest, indent=1), encoding="utf-8")
        tmp_manifest.replace(self.folder / MANIFEST)


def read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no {MANIFEST}: not a make-data streams folder")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT}")
    return manifest


def iter_streams(folder: Path, *, verify: bool = True) -> Iterator[Stream]:
    """Every stream of every intact shard; a missing or corrupt shard is skipped with a log line."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    folder = Path(folder)
    for shard in read_manifest(folder)["shards"]:
        path = folder / shard["file"]
        if not path.is_file():
            log.warning("shard %s is missing: skipped", shard["file"])
            continue
        if verify and sha256_file(path) != shard["sha256"]:
            log.warning("shard %s fails its checksum (corrupt or changed): skipped", shard["file"])
            continue
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as err:
            log.warning("shard %s cannot be read (%s): skipped", shard["file"], err)
            continue
        for entry in shard["streams"]:
            meta = {k: v for k, v in entry.items() if k != "id"}
            yield Stream(entry["id"], tensors[f"{entry['id']}/codes"], tensors[f"{entry['id']}/labels"], meta)


def write_streams(folder: Path, header: dict[str, Any], jobs: Sequence[tuple[str, Any]],
                  build: Callable[[Any], Stream], *, per_shard: int = 64,
                  progress: Callable[[Iterable], Iterable] | None = None) -> dict[str, Any]:
    """Build and store the streams of `jobs` (id, spec) not already in DATA; returns the manifest."""
    writer = ShardWriter(folder, header, per_shard)
    todo = [job for job in jobs if job[0] not in writer.done_streams]
    for _, spec in progress(todo) if progress else todo:
        writer.add(build(spec))
    writer.flush()
    return writer.manifest

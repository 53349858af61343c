"""Open a bag for replay, and recover what a truncated mcap bag still holds (a recorder killed before it
closed the file).

An mcap file's index sits at its end, so rosbags cannot open a file cut short. Its messages are in
chunks (about 1 MiB each); every chunk before the cut is whole. This streams the file with the `mcap`
library and copies the complete chunks' messages into a new rosbag2 bag, as `mcap recover` does.
"""
from __future__ import annotations

import logging
import shutil
import struct
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from .errors import EgomemError

log = logging.getLogger(__name__)


class BagError(EgomemError, RuntimeError):
    """A bag that cannot be read at all (not a bag, or cut before its first complete chunk)."""


def mcap_file(bag: Path) -> Path | None:
    """The mcap file of a bag given as a file or a rosbag2 directory, if it is one."""
    if bag.is_file():
        return bag if bag.suffix == ".mcap" else None
    files = sorted(bag.glob("*.mcap")) if bag.is_dir() else []
    return files[0] if len(files) == 1 else None


def recover_mcap(src: Path, dst: Path) -> int:
    """Write the messages of `src`'s complete chunks to the new bag `dst`; returns how many."""
    from mcap.exceptions import McapError
    from mcap.records import Channel, Message, Schema
    from mcap.stream_reader import StreamReader
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    schemas: dict[int, Schema] = {}
    conns: dict[int, object] = {}
    count = 0
    writer = Writer(dst, version=8, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    try:
        with src.open("rb") as f:
            try:
                for rec in StreamReader(f, skip_magic=False, emit_chunks=False).records:
                    if isinstance(rec, Schema):
                        schemas[rec.id] = rec
                    elif isinstance(rec, Channel) and rec.schema_id in schemas:
                        schema = schemas[rec.schema_id]
                        types = get_typestore(Stores.EMPTY)
                        types.register(get_types_from_msg(schema.data.decode(), schema.name))
                        conns[rec.id] = writer.add_connection(rec.topic, schema.name, typestore=types,
                                                              serialization_format=rec.message_encoding)
                    elif isinstance(rec, Message) and rec.channel_id in conns:
                        writer.write(conns[rec.channel_id], rec.log_time, rec.data)
                        count += 1
            except (McapError, EOFError, ValueError, struct.error) as err:  # the cut: everything before it is copied
                log.info("%s: stopped at the cut (%s) after %d messages", src, type(err).__name__, count)
    finally:
        writer.close()
    return count


def open_bag(bag: Path, ts, scratch: Path, stack: ExitStack) -> tuple[Any, str]:
    """An AnyReader on the bag, and a note when it is cut short: a truncated mcap is read from a copy of its
    complete chunks written to `scratch` (removed when `stack` closes). Raises BagError for one that
    cannot be read at all."""
    from rosbags.highlevel import AnyReader

    try:
        reader = AnyReader([bag], default_typestore=ts)
        reader.open()
        return reader, ""
    except Exception as err:  # noqa: BLE001 - rosbags raises several types for unreadable bags
        error = err
    cut = "magic" in str(error).lower() or "truncat" in str(error).lower()
    src = mcap_file(bag) if cut else None
    if src is not None:
        shutil.rmtree(scratch, ignore_errors=True)
        stack.callback(shutil.rmtree, scratch, True)
        count = recover_mcap(src, scratch)
        if count:
            note = (f"the bag is cut short (a recorder killed before closing it): the {count} messages "
                    "of its complete chunks were replayed, the rest is lost")
            log.warning("bag %s: %s", bag, note)
            reader = AnyReader([scratch], default_typestore=ts)
            reader.open()
            return reader, note
    if cut:
        why = (f"not a readable mcap bag: {error}; it holds no complete chunk, so it is either cut before its "
               "first one (a recorder killed early) or not a bag at all")
    elif bag.is_dir() and not (bag / "metadata.yaml").exists() and not list(bag.glob("*.mcap")):
        why = "not a ROS 2 bag: the folder has no metadata.yaml and no .mcap file"
    elif bag.is_file() and bag.suffix != ".mcap":
        why = "not a ROS 2 bag: give the bag's folder (with its metadata.yaml) or its .mcap file"
    else:
        why = str(error)
    raise BagError(f"cannot open bag {bag}: {why}") from None

"""Recover what a truncated mcap bag still holds (a recorder killed before it closed the file).

An mcap file's index sits at its end, so rosbags cannot open a file cut short. Its messages are in
chunks (about 1 MiB each); every chunk before the cut is whole. This streams the file with the `mcap`
library and copies the complete chunks' messages into a new rosbag2 bag, as `mcap recover` does.
"""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


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
            except (McapError, EOFError, ValueError) as err:  # the cut: everything before it is copied
                log.info("%s: stopped at the cut (%s) after %d messages", src, type(err).__name__, count)
    finally:
        writer.close()
    return count

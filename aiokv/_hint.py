"""Hint files: a segment's index entries without its values, for a fast open.

``NNNNNNNN.hint`` describes the records of ``NNNNNNNN.data`` from its file header up to
``covered`` bytes: every record's key, kind, place, sequence number, expiry and (for a
tombstone) target. Opening a store reads the hint instead of every value, then scans only what
lies past ``covered`` (the active segment grows after its hint is written at close).

A hint is written like compaction output: under a temporary name, fsynced, renamed, and the
directory fsynced. Any doubt about one (a bad checksum, another segment's number, a ``covered``
beyond the data file's end) means it is ignored and the data file scanned instead::

    header (32 bytes)
    +--------+------+-----------------------------------------------+
    | offset | size | field (little-endian)                         |
    +--------+------+-----------------------------------------------+
    |      0 |    8 | magic b"AIOKVHNT"                             |
    |      8 |    1 | format version (1)                            |
    |      9 |    3 | reserved, zero                                |
    |     12 |    4 | segment number                                |
    |     16 |    8 | the segment's created_seq                     |
    |     24 |    8 | covered: the data file's bytes described      |
    +--------+------+-----------------------------------------------+
    then n entries of 30 bytes each, in file order:
        kind u8, key length u8, offset u32, size u32, seq u64, expiry f64, target u32
    then the n keys back to back (UTF-8)
    then the trailer: n u32, keys' total length u32, CRC-32 of every byte before it u32

Entries and keys are kept apart so that the entries parse with one ``struct.iter_unpack``.
"""

from __future__ import annotations

import itertools
import os
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Final, NamedTuple

from . import _files
from ._record import FORMAT_VERSION, KIND_DELETE, KIND_PUT, MAX_KEY_BYTES
from ._segment import TMP_SUFFIX

HINT_MAGIC: Final = b"AIOKVHNT"
_HEADER = struct.Struct("<8sB3xIQQ")
_ENTRY = struct.Struct("<BBIIQdI")
_TRAILER = struct.Struct("<III")
HINT_HEADER_SIZE: Final = _HEADER.size  # 32
HINT_ENTRY_SIZE: Final = _ENTRY.size  # 30, plus the key
HINT_OVERHEAD: Final = _HEADER.size + _TRAILER.size  # a hint with no entries
_NAME = re.compile(r"^(\d{8})\.hint$")


def hint_name(segment_id: int) -> str:
    return f"{segment_id:08d}.hint"


def entry_size(key_length: int) -> int:
    """What one record adds to its segment's hint."""
    return HINT_ENTRY_SIZE + key_length


class HintBuilder:
    """The entries of one segment's hint, gathered as its records are written."""

    __slots__ = ("_keys", "_table", "count")

    def __init__(self) -> None:
        self._table = bytearray()
        self._keys = bytearray()
        self.count = 0

    def extend(self, hint: Hint) -> None:
        """Take a checked hint's entries (the active segment's, at open) to go on from."""
        self._table += hint.table
        self._keys += hint.keys
        self.count += len(hint.table) // HINT_ENTRY_SIZE

    def add(
        self, kind: int, key: bytes, offset: int, size: int, seq: int, expiry: float, target: int
    ) -> None:
        self._table += _ENTRY.pack(kind, len(key), offset, size, seq, expiry, target)
        self._keys += key
        self.count += 1

    @property
    def size(self) -> int:
        """The size of the hint file these entries make."""
        return HINT_OVERHEAD + len(self._table) + len(self._keys)

    def encode(self, segment_id: int, created_seq: int, covered: int) -> bytes:
        head = _HEADER.pack(HINT_MAGIC, FORMAT_VERSION, segment_id, created_seq, covered)
        body = b"".join(
            (head, self._table, self._keys, struct.pack("<II", self.count, len(self._keys)))
        )
        return body + struct.pack("<I", zlib.crc32(body))


class BadHint(Exception):
    """The hint cannot be trusted; the caller scans the data file instead."""


class Hint(NamedTuple):
    segment_id: int
    created_seq: int
    covered: int
    table: bytes
    keys: bytes


def decode_hint(data: bytes) -> Hint:
    """Check a hint file's framing and checksum; raise :class:`BadHint` at any doubt."""
    if len(data) < HINT_OVERHEAD:
        raise BadHint("too short")
    count, keys_length, crc = _TRAILER.unpack_from(data, len(data) - _TRAILER.size)
    if zlib.crc32(memoryview(data)[:-4]) != crc:
        raise BadHint("checksum mismatch")
    magic, version, segment_id, created_seq, covered = _HEADER.unpack_from(data)
    if magic != HINT_MAGIC or version != FORMAT_VERSION:
        raise BadHint("not an aiokv hint of this version")
    table_end = HINT_HEADER_SIZE + count * HINT_ENTRY_SIZE
    if table_end + keys_length + _TRAILER.size != len(data):
        raise BadHint("lengths do not add up")
    return Hint(
        segment_id,
        created_seq,
        covered,
        data[HINT_HEADER_SIZE:table_end],
        data[table_end : table_end + keys_length],
    )


def iter_entries(hint: Hint) -> Iterator[tuple[int, int, int, int, int, float, int]]:
    """``(kind, key length, offset, size, seq, expiry, target)`` per entry, in file order.

    The keys are ``hint.keys`` cut at the key lengths in turn. Call :func:`check_entries`
    first: this does no checking of its own, for speed.
    """
    return _ENTRY.iter_unpack(hint.table)


def check_entries(hint: Hint) -> None:
    """Raise :class:`BadHint` unless the entries' kinds, key lengths and keys are sound.

    Column-wise, at C speed: the checksum already vouches for every byte, so this guards
    against a hint that was written wrong, not one that was damaged.
    """
    table = hint.table
    kinds = table[0::HINT_ENTRY_SIZE]
    key_lengths = table[1::HINT_ENTRY_SIZE]
    if kinds and not set(kinds) <= {KIND_PUT, KIND_DELETE}:
        raise BadHint("an entry of an unknown kind")
    if key_lengths and not 0 < min(key_lengths) <= max(key_lengths) <= MAX_KEY_BYTES:
        raise BadHint("a key length no record could have")
    if sum(key_lengths) != len(hint.keys):
        raise BadHint("key lengths do not add up")
    try:
        hint.keys.decode("utf-8")
    except UnicodeDecodeError:
        raise BadHint("keys that are not UTF-8") from None


def split_keys(hint: Hint) -> list[str]:
    """The entries' keys, in order."""
    keys = hint.keys
    ends = list(itertools.accumulate(hint.table[1::HINT_ENTRY_SIZE]))
    starts = [0, *ends[:-1]]
    if keys.isascii():  # one decode, then slicing by characters is slicing by bytes
        text = keys.decode("ascii")
        return [text[a:b] for a, b in zip(starts, ends, strict=True)]
    return [keys[a:b].decode("utf-8") for a, b in zip(starts, ends, strict=True)]


def has_tombstones(hint: Hint) -> bool:
    return KIND_DELETE in hint.table[0::HINT_ENTRY_SIZE]


def first_entry_seq(hint: Hint) -> int:
    """The sequence number of the first entry of a hint that has one."""
    return int(_ENTRY.unpack_from(hint.table)[4])


def last_entry_seq(hint: Hint) -> int:
    """The sequence number of the last entry (the highest: entries are in file order)."""
    return int(_ENTRY.unpack_from(hint.table, len(hint.table) - HINT_ENTRY_SIZE)[4])


def write_hint(directory: Path, segment_id: int, data: bytes) -> None:
    """Write a hint file whole: temporary name, fsync, rename over any older hint.

    The caller fsyncs the directory to make the new name durable.
    """
    final = directory / hint_name(segment_id)
    temporary = final.with_name(final.name + TMP_SUFFIX)
    fd = _files.create_file(temporary)
    try:
        _files.write_all(fd, data)
        os.fsync(fd)  # complete on disk before it has the name a reader trusts
    except BaseException:
        os.close(fd)
        temporary.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(temporary, final)


def parse_hint_name(name: str) -> int | None:
    match = _NAME.match(name)
    return int(match.group(1)) if match else None

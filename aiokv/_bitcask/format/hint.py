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
    then the n entries, in file order, stored column by column:
        n kinds u8, n key lengths u8, n offsets u32, n sizes u32, n seqs u64,
        n expiries f64, n targets u32
    then the n keys (UTF-8), each followed by the byte 0xFF (which UTF-8 never uses)
    then the trailer: n u32, the keys' total length u32, CRC-32 of every byte before it u32

Columns and separated keys let an open load a hint with array casts and one ``split``
instead of a Python loop over its entries: a million keys are a few C calls.
"""

from __future__ import annotations

import mmap
import operator
import struct
import sys
from array import array
from itertools import chain
from pathlib import Path
from typing import Any, Final, NamedTuple, TypeAlias

from aiokv._bitcask.format.crc import crc32
from aiokv._bitcask.format.record import (
    BATCH_SIZE,
    FILE_HEADER_SIZE,
    FORMAT_VERSION,
    HEADER_SIZE,
    KIND_DELETE,
    KIND_PUT,
    MAX_KEY_BYTES,
    MAX_RECORD_SIZE,
)

HINT_MAGIC: Final = b"AIOKVHNT"
_HEADER = struct.Struct("<8sB3xIQQ")
_TRAILER = struct.Struct("<III")
# (typecode, itemsize) of each column, in file order: kind, key length, offset, size, seq,
# expiry, target.
_COLUMNS: Final = (("B", 1), ("B", 1), ("I", 4), ("I", 4), ("Q", 8), ("d", 8), ("I", 4))
for _code, _size in _COLUMNS:  # the format is fixed-width little-endian; arrays are native
    assert array(_code).itemsize == _size, f"array({_code!r}) is not {_size} bytes here"
_SWAP: Final = sys.byteorder != "little"
KEY_END: Final = b"\xff"
HINT_HEADER_SIZE: Final = _HEADER.size  # 32
HINT_ENTRY_SIZE: Final = sum(size for _code, size in _COLUMNS) + len(KEY_END)  # 31, + the key
HINT_OVERHEAD: Final = _HEADER.size + _TRAILER.size  # a hint with no entries
_CHECK_PIECE: Final = 1 << 20


def entry_size(key_length: int) -> int:
    """What one record adds to its segment's hint."""
    return HINT_ENTRY_SIZE + key_length


def _column(code: str, data: memoryview) -> Column:
    """A column of a hint read as it lies in the file: no copy where the byte order allows."""
    if not _SWAP:
        column_view: memoryview[Any] = data.cast(code)  # type: ignore[call-overload]
        return column_view
    column: array[Any] = array(code)
    column.frombytes(data)
    column.byteswap()
    return column


Column: TypeAlias = "array[Any] | memoryview[Any]"
"""A hint's column: a view of the file where it can be one, else an array."""


class Hint(NamedTuple):
    """A checked hint: its columns and its keys (the separated blob), as views of the file
    read, or as arrays and bytes (a hint being built)."""

    segment_id: int
    created_seq: int
    covered: int
    columns: tuple[Column, ...]
    keys: bytes | memoryview

    @property
    def length(self) -> int:
        """How many entries it holds."""
        return len(self.columns[0])


class HintBuilder:
    """The entries of one segment's hint, gathered as its records are written.

    The active segment's builder goes on from the hint the segment had when the store opened
    (:meth:`inherit`) without holding those entries: a segment's hint can run to tens of
    megabytes, so they are read back from that file when the next hint is made.
    """

    __slots__ = ("_base", "_columns", "_keys")

    def __init__(self) -> None:
        self._columns: tuple[array[Any], ...] = tuple(array(code) for code, _size in _COLUMNS)
        self._keys = bytearray()
        self._base: tuple[Path, int, int] | None = None  # (hint file, its entries, keys' length)

    @property
    def count(self) -> int:
        return len(self._columns[0]) + (self._base[1] if self._base else 0)

    def inherit(self, path: Path, hint: Hint) -> None:
        """Go on from ``hint``, checked and read from ``path``, which must stay there until
        :meth:`encode` (the active segment's hint, at open; only :meth:`encode`'s hint will
        replace it)."""
        assert self._base is None
        assert not self._keys
        self._base = (path, hint.length, len(hint.keys))

    def add(
        self, kind: int, key: bytes, offset: int, size: int, seq: int, expiry: float, target: int
    ) -> None:
        kinds, lengths, offsets, sizes, seqs, expiries, targets = self._columns
        kinds.append(kind)
        lengths.append(len(key))
        offsets.append(offset)
        sizes.append(size)
        seqs.append(seq)
        expiries.append(expiry)
        targets.append(target)
        self._keys += key
        self._keys += KEY_END

    def add_puts(
        self,
        keys: list[bytes],
        offsets: list[int],
        sizes: list[int],
        seqs: range,
        expiries: list[float],
    ) -> None:
        """:meth:`add` of a batch of puts, a column at a time."""
        self._add_columns(KIND_PUT, keys, offsets, sizes, seqs, expiries, None)

    def add_deletes(
        self,
        keys: list[bytes],
        offsets: list[int],
        sizes: list[int],
        seqs: range,
        targets: list[int],
    ) -> None:
        """:meth:`add` of a batch of tombstones, a column at a time."""
        self._add_columns(KIND_DELETE, keys, offsets, sizes, seqs, None, targets)

    def _add_columns(
        self,
        kind: int,
        keys: list[bytes],
        offsets: list[int],
        sizes: list[int],
        seqs: range,
        expiries: list[float] | None,
        targets: list[int] | None,
    ) -> None:
        """Extend the columns by a batch; ``None`` is a column of zeros. Lists go in with
        ``fromlist`` and constant columns as a one-item array repeated: C loops, about four
        times faster than ``extend`` from an iterator."""
        count = len(keys)
        kind_col, length_col, offset_col, size_col, seq_col, expiry_col, target_col = self._columns
        kind_col.extend(array(kind_col.typecode, (kind,)) * count)
        length_col.extend(map(len, keys))
        offset_col.fromlist(offsets)
        size_col.fromlist(sizes)
        seq_col.extend(seqs)
        for column, values in ((expiry_col, expiries), (target_col, targets)):
            if values is None:
                column.frombytes(bytes(count * column.itemsize))  # zeros, 0.0 as well
            else:
                column.fromlist(values)
        self._keys += KEY_END.join(keys)
        self._keys += KEY_END

    @property
    def size(self) -> int:
        """The size of the hint file these entries make."""
        keys = len(self._keys) + (self._base[2] if self._base else 0)
        return HINT_OVERHEAD + self.count * (HINT_ENTRY_SIZE - len(KEY_END)) + keys

    @property
    def base_path(self) -> Path | None:
        """The hint file gone on from (see :meth:`inherit`), whose bytes :meth:`encode` needs."""
        return self._base[0] if self._base else None

    def encode(
        self, segment_id: int, created_seq: int, covered: int, base: bytes | None = None
    ) -> bytes:
        """The hint file of these entries; ``base`` is the file at :attr:`base_path`, read by
        the caller, for a builder that went on from one.

        :raises BadHint: the hint gone on from is no longer the one read: no complete hint
            can be made, and the segment keeps the one it has, which stays right for the part
            it covers.
        """
        columns: list[Any] = list(self._columns)
        keys: bytes | bytearray = self._keys
        if self._base is not None:
            _path, count, keys_length = self._base
            if base is None:
                raise BadHint("the hint gone on from was not read")
            decoded = decode_hint(base)
            if (decoded.segment_id, decoded.created_seq, decoded.length, len(decoded.keys)) != (
                segment_id,
                created_seq,
                count,
                keys_length,
            ):
                raise BadHint("the hint gone on from has changed")
            columns = [
                array(mine.typecode, theirs) + mine
                for theirs, mine in zip(decoded.columns, columns, strict=True)
            ]
            keys = bytes(decoded.keys) + keys
        head = _HEADER.pack(HINT_MAGIC, FORMAT_VERSION, segment_id, created_seq, covered)
        parts = [head]
        for column in columns:
            if _SWAP:
                column = array(column.typecode, column)
                column.byteswap()
            parts.append(column.tobytes())
        parts.append(bytes(keys))
        parts.append(struct.pack("<II", len(columns[0]), len(keys)))
        body = b"".join(parts)
        return body + struct.pack("<I", crc32(body))


class BadHint(Exception):
    """The hint cannot be trusted; the caller scans the data file instead."""


def decode_hint(data: bytes | mmap.mmap) -> Hint:
    """Check a hint file's framing and checksum; raise :class:`BadHint` at any doubt.

    The hint returned holds views of ``data`` (the file's bytes, or a map of it), not
    copies: an open reads hints of tens of megabytes, and each copy of one would outlast it
    as free memory the process keeps.
    """
    if len(data) < HINT_OVERHEAD:
        raise BadHint("too short")
    count, keys_length, crc = _TRAILER.unpack_from(data, len(data) - _TRAILER.size)
    if crc32(memoryview(data)[:-4]) != crc:
        raise BadHint("checksum mismatch")
    magic, version, segment_id, created_seq, covered = _HEADER.unpack_from(data)
    if magic != HINT_MAGIC or version != FORMAT_VERSION:
        raise BadHint("not an aiokv hint of this version")
    table = count * (HINT_ENTRY_SIZE - len(KEY_END))
    if HINT_HEADER_SIZE + table + keys_length + _TRAILER.size != len(data):
        raise BadHint("lengths do not add up")
    view = memoryview(data)
    position = HINT_HEADER_SIZE
    columns: list[Column] = []
    for code, size in _COLUMNS:
        columns.append(_column(code, view[position : position + count * size]))
        position += count * size
    return Hint(
        segment_id, created_seq, covered, tuple(columns), view[position : position + keys_length]
    )


def check_entries(hint: Hint) -> None:
    """Raise :class:`BadHint` unless the entries' kinds and key lengths are sound.

    Column-wise, at C speed: the checksum already vouches for every byte, so this guards
    against a hint that was written wrong, not one that was damaged. The keys themselves are
    checked as :func:`split_keys` cuts them.
    """
    kinds, lengths, offsets, sizes = hint.columns[:4]
    if kinds and not set(kinds) <= {KIND_PUT, KIND_DELETE}:
        raise BadHint("an entry of an unknown kind")
    if lengths and not 0 < min(lengths) <= max(lengths) <= MAX_KEY_BYTES:
        raise BadHint("a key length no record could have")
    if sum(lengths) + len(lengths) * len(KEY_END) != len(hint.keys):
        raise BadHint("key lengths do not add up")
    if sizes and not HEADER_SIZE < min(sizes) <= max(sizes) <= MAX_RECORD_SIZE:
        raise BadHint("a record size no record could have")
    # The records described lie back to back from the file header to ``covered``: each one
    # starts where the one before ends, or a batch record (not in the hint) after it. Anything
    # else would send reads (and the scan of what the hint does not cover) into the middle of
    # a record. (Compared by C-level iterators: no list or array of a million offsets.)
    ends = map(operator.add, offsets, sizes)
    gaps = map(operator.sub, offsets, chain((FILE_HEADER_SIZE,), ends))
    end = offsets[-1] + sizes[-1] if offsets else FILE_HEADER_SIZE
    if end != hint.covered or not set(gaps) <= {0, BATCH_SIZE}:
        raise BadHint("its entries do not lie back to back up to what it covers")


def split_keys(hint: Hint) -> list[bytes]:
    """The entries' keys, in order; :class:`BadHint` if they do not match the lengths."""
    parts = bytes(hint.keys).split(KEY_END)
    if parts.pop() != b"" or len(parts) != hint.length:
        raise BadHint("keys and entries do not match")
    if list(map(len, parts)) != hint.columns[1].tolist():
        raise BadHint("keys and key lengths do not match")
    check_keys(hint)
    return parts


def check_keys(hint: Hint) -> None:
    """Raise :class:`BadHint` unless every key is UTF-8 and the blob holds one separator per
    entry (where each key ends is checked as they are cut: by :func:`split_keys`, or by the
    key directory's load; with as many separators as keys, none can be inside a key)."""
    # Every key is UTF-8 if the blob is once its separators are made ASCII: a separator cuts
    # short any sequence begun before it, and 0xFF never occurs in UTF-8 itself. One C-level
    # check, instead of a decode per key.
    # Checked a piece at a time (each ending after a separator), not the blob at once: that
    # would make two copies of it.
    keys = hint.keys
    start = separators = 0
    while start < len(keys):
        end = bytes(keys[start + _CHECK_PIECE : start + _CHECK_PIECE + MAX_KEY_BYTES + 1]).find(
            KEY_END
        )
        end = len(keys) if end < 0 else start + _CHECK_PIECE + end + 1
        piece = bytes(keys[start:end])
        separators += piece.count(KEY_END)
        try:
            piece.replace(KEY_END, b"\n").decode("utf-8")
        except UnicodeDecodeError:
            raise BadHint("keys that are not UTF-8") from None
        start = end
    if separators != hint.length:
        raise BadHint("keys and entries do not match")


_ZEROS: Final = bytes(1 << 16)


def has_expiries(hint: Hint) -> bool:
    """Whether any entry may carry an expiry: False for certain when the column is all zero
    bytes (nearly always), compared a piece at a time at C speed, where ``any`` would make a
    float object per entry."""
    raw = memoryview(hint.columns[5]).cast("B")
    for start in range(0, len(raw), len(_ZEROS)):
        piece = bytes(raw[start : start + len(_ZEROS)])
        if piece != _ZEROS[: len(piece)]:
            return any(hint.columns[5])  # -0.0 is no expiry either
    return False


def first_entry_seq(hint: Hint) -> int:
    """The sequence number of the first entry of a hint that has one."""
    return int(hint.columns[4][0])

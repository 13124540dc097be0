"""The on-disk record format: pure encode/decode functions, no I/O.

A store is a directory of segment files named ``NNNNNNNN.data``. Each segment starts with a
32-byte file header and then holds records back to back, appended and never rewritten::

    file header (32 bytes)
    +--------+------+-----------------------------------------------+
    | offset | size | field (little-endian)                         |
    +--------+------+-----------------------------------------------+
    |      0 |    8 | magic b"AIOKVSEG"                             |
    |      8 |    1 | file format version: 2 (1: the same file, but |
    |        |      | never holding a batch record; still read)     |
    |      9 |    1 | file kind: 1 = log, 2 = compacted             |
    |     10 |    6 | reserved, zero                                |
    |     16 |    8 | created_seq: the store's next sequence number |
    |        |      | when the file was made                        |
    |     24 |    4 | source: for a compacted file, the number of   |
    |        |      | the segment it was compacted from; else 0     |
    |     28 |    4 | CRC-32 of bytes 0..27                         |
    +--------+------+-----------------------------------------------+

A *log* file is appended to by the writer; every record in it has ``seq >= created_seq``, and
only the newest log file can end in a torn write. A *compacted* file is written whole by
compaction, fsynced and only then renamed into place, so it is never torn; it holds every record
of its source files that was still needed at ``created_seq``.

    record (28-byte header, then the key, then the value)
    +--------+------+-----------------------------------------------+
    | offset | size | field (little-endian)                         |
    +--------+------+-----------------------------------------------+
    |      0 |    4 | CRC-32 of every byte after this field         |
    |      4 |    1 | format version (1)                            |
    |      5 |    1 | kind: 1 = put, 2 = delete (tombstone)         |
    |      6 |    1 | key length in bytes, 1..128                   |
    |      7 |    1 | value encoding: 0 = JSON, 1 = JSON whose      |
    |        |      | integers all fit 64 bits (delete: 0)          |
    |      8 |    4 | value length in bytes, 0..16384 (4: delete)   |
    |     12 |    8 | sequence number, unsigned, strictly rising    |
    |     20 |    8 | expiry deadline: float64 Unix seconds, 0=none |
    |     28 |    k | key, UTF-8                                    |
    |   28+k |    v | put: the value, compact UTF-8 JSON            |
    |        |      | delete: u32, the segment that held the record |
    |        |      | it deleted (its *target*)                     |
    +--------+------+-----------------------------------------------+

A *batch* (``create_many``, ``delete_many``) is written as one batch record followed by its
put or delete records, all in one ``write``::

    batch record (28-byte header of kind 3, no key, a 12-byte value)
    +--------+------+-----------------------------------------------+
    |      0 |    4 | CRC-32 of every byte after this field         |
    |      4 |    1 | format version (1)                            |
    |      5 |    1 | kind: 3 = batch                               |
    |      6 |    1 | key length: 0                                 |
    |      7 |    1 | value encoding: 0                             |
    |      8 |    4 | value length: 12                              |
    |     12 |    8 | the sequence number of its first record       |
    |     20 |    8 | 0.0                                           |
    |     28 |    4 | the length in bytes of the records that follow|
    |     32 |    4 | how many records follow                       |
    |     36 |    4 | CRC-32 of those records' bytes                |
    +--------+------+-----------------------------------------------+

A reader takes the batch's records only if all of them are there and their CRC matches: a
crash in the middle of the write leaves the store with the whole batch or none of it (only
the newest log segment can be torn, and its tail is cut off at the batch record). Batch
records appear only in files of version 2, whose readers know them; a store written before
keeps opening, and its files are read as they are.

The CRC covers the whole record but itself, so a torn write, a zeroed page or a flipped bit
anywhere in a record is caught. The sequence number, not the file order and never the clock,
decides which record of a key is newest. The deadline is absolute wall-clock time, so a TTL holds
across close and reopen; float64 keeps sub-second precision (about 0.2 µs at today's dates).

A tombstone names its target so that compaction knows when it may drop it: once neither the
target segment nor a file compacted from it (see ``source``) remains, no older record of the
key can come back.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from itertools import count
from typing import Any, Final, NamedTuple

from aiokv._bitcask.format.crc import crc32
from aiokv._core.codec import MAX_VALUE_BYTES, VALUE_JSON, VALUE_JSON64

FORMAT_VERSION: Final = 1
"""Of a record's layout, and of a hint file's."""

FILE_VERSION: Final = 2
"""Of a segment file: what a new one is written as."""
FILE_VERSIONS: Final = frozenset({1, 2})
"""The segment file versions read: 1 is 2 without batch records."""

FILE_MAGIC: Final = b"AIOKVSEG"
FILE_LOG: Final = 1
FILE_COMPACTED: Final = 2
_FILE_HEADER = struct.Struct("<8sBB6xQI")
FILE_HEADER_SIZE: Final = _FILE_HEADER.size + 4  # 32, with the CRC

KIND_PUT: Final = 1
KIND_DELETE: Final = 2
KIND_BATCH: Final = 3

_HEADER = struct.Struct("<IBBBBIQd")
HEADER_SIZE: Final = _HEADER.size  # 28
_BODY = struct.Struct("<BBBBIQd")  # the header after the CRC
_CRC = struct.Struct("<I")
_TARGET = struct.Struct("<I")
TOMBSTONE_VALUE_SIZE: Final = _TARGET.size
_BATCH = struct.Struct("<III")  # the records' length, their count, their CRC-32
BATCH_SIZE: Final = HEADER_SIZE + _BATCH.size  # 40: a batch record
MAX_BATCH_BYTES: Final = 2**32 - 1
"""The most bytes of records one batch record can cover (its length field is 32 bits)."""

MAX_SEQ: Final = 2**64 - 1
"""The largest sequence number a record can carry (an unsigned 64-bit field)."""

MAX_KEY_BYTES: Final = 128  # 32 code points of at most 4 UTF-8 bytes each
MAX_RECORD_SIZE: Final = HEADER_SIZE + MAX_KEY_BYTES + MAX_VALUE_BYTES

MAX_SEGMENT_BYTES: Final = 1 << 32
"""A segment's size limit: a hint records each record's offset in 32 bits."""


class Record(NamedTuple):
    """A decoded record header, with the key and where the value lies in the buffer."""

    kind: int
    seq: int
    expiry: float
    key: bytes
    value_start: int
    size: int
    encoding: int = VALUE_JSON  # of a put's value


def encode_put(
    seq: int, key: bytes, value: bytes, expiry: float, encoding: int = VALUE_JSON
) -> bytes:
    """Encode a put record. ``expiry`` is the absolute deadline, or 0.0 for none."""
    body = (
        _BODY.pack(FORMAT_VERSION, KIND_PUT, len(key), encoding, len(value), seq, expiry)
        + key
        + value
    )
    return _CRC.pack(crc32(body)) + body


def encode_puts_py(
    first_seq: int,
    keys: list[bytes],
    values: list[bytes],
    expiries: list[float],
    encodings: list[int],
) -> tuple[bytes, list[int]]:
    """The put records of a batch back to back, numbered from ``first_seq``, and the size of
    each: :func:`encode_put` of each item of the four lists (which must be as long as one
    another). The specification of the C function :func:`encode_puts` uses where it can."""
    if not len(keys) == len(values) == len(expiries) == len(encodings):
        raise ValueError("encode_puts: the lists differ in length")
    parts = list(map(encode_put, count(first_seq), keys, values, expiries, encodings))
    return b"".join(parts), list(map(len, parts))


_encode_puts_c: Callable[..., tuple[Any, list[int]] | None] | None = None


def encode_puts(
    first_seq: int,
    keys: list[bytes],
    values: list[bytes],
    expiries: list[float],
    encodings: list[int],
) -> tuple[bytes, list[int]]:
    """:func:`encode_puts_py`, built in C where it was compiled (one buffer for the batch, no
    record object apiece); the C function declines what it cannot pack, which the Python one
    then encodes, or refuses with its own error."""
    if _encode_puts_c is not None:
        built = _encode_puts_c(first_seq, keys, values, expiries, encodings)
        if built is not None:
            return built
    return encode_puts_py(first_seq, keys, values, expiries, encodings)


def encode_batch_puts(
    first_seq: int,
    keys: list[bytes],
    values: list[bytes],
    expiries: list[float],
    encodings: list[int],
) -> tuple[bytearray, list[int]]:
    """The batch record (see :func:`encode_batch`) and the put records after it, in one
    buffer, and the size of each put record: :func:`encode_puts` builds the records a batch
    record's room into a buffer, and the batch record is put there in place, so a batch of
    megabytes is not copied again before it is written."""
    built = None
    if _encode_puts_c is not None:
        built = _encode_puts_c(first_seq, keys, values, expiries, encodings, BATCH_SIZE)
    if built is None:
        records, sizes = encode_puts_py(first_seq, keys, values, expiries, encodings)
        built = _after_room(records), sizes
    data, sizes = built
    assert isinstance(data, bytearray)  # the C function's answer with a headroom
    return _head(first_seq, data, len(keys)), sizes


def encode_batch_deletes(
    first_seq: int, keys: list[bytes], targets: list[int]
) -> tuple[bytearray, list[int]]:
    """The batch record and the tombstones after it (see :func:`encode_delete`), numbered
    from ``first_seq``, in one buffer, and the size of each tombstone."""
    records = list(map(encode_delete, count(first_seq), keys, targets))
    data = _head(first_seq, _after_room(b"".join(records)), len(keys))
    return data, list(map(len, records))


def _after_room(records: bytes) -> bytearray:
    """``records`` a batch record's room into a new buffer (see :func:`_head`)."""
    data = bytearray(BATCH_SIZE)
    data += records
    return data


def _head(first_seq: int, data: bytearray, count: int) -> bytearray:
    """Put the batch record of the ``count`` records after ``data``'s first ``BATCH_SIZE``
    bytes into those bytes, in place; return ``data``."""
    with memoryview(data) as view:
        data[:BATCH_SIZE] = encode_batch(first_seq, view[BATCH_SIZE:], count)
    return data


def encode_delete(seq: int, key: bytes, target: int) -> bytes:
    """Encode a tombstone: the key is deleted as of ``seq``; its record was in ``target``."""
    body = (
        _BODY.pack(FORMAT_VERSION, KIND_DELETE, len(key), 0, TOMBSTONE_VALUE_SIZE, seq, 0.0)
        + key
        + _TARGET.pack(target)
    )
    return _CRC.pack(crc32(body)) + body


def encode_batch(first_seq: int, records: bytes | memoryview, count: int) -> bytes:
    """The batch record that goes before ``records`` (``count`` of them, numbered from
    ``first_seq``), to be written with them in one piece."""
    value = _BATCH.pack(len(records), count, crc32(records))
    body = _BODY.pack(FORMAT_VERSION, KIND_BATCH, 0, 0, len(value), first_seq, 0.0) + value
    return _CRC.pack(crc32(body)) + body


def tombstone_target(buf: bytes | bytearray | memoryview, record: Record) -> int:
    """The target segment of a decoded tombstone lying in ``buf``."""
    (target,) = _TARGET.unpack_from(buf, record.value_start)
    return int(target)


def put_size(key: bytes, value: bytes) -> int:
    return HEADER_SIZE + len(key) + len(value)


def delete_size(key: bytes) -> int:
    return HEADER_SIZE + len(key) + TOMBSTONE_VALUE_SIZE


class BadRecord(Exception):
    """Raised by :func:`decode`; the caller turns it into a torn tail or a CorruptionError."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = 0  # set by the scanner: where in the file the bad record starts


def decode(buf: bytes | bytearray | memoryview, offset: int = 0) -> Record:
    """Decode and verify the record starting at ``buf[offset]``.

    Raises :class:`BadRecord` when the header is implausible, the record runs past the end of
    ``buf``, or the CRC does not match. Lengths are checked before the CRC is computed, so a
    garbage length never makes us read or hash megabytes.
    """
    end_of_buf = len(buf)
    if end_of_buf - offset < HEADER_SIZE:
        raise BadRecord("truncated header")
    crc, version, kind, key_len, encoding, value_len, seq, expiry = _HEADER.unpack_from(buf, offset)
    if version != FORMAT_VERSION:
        raise BadRecord(f"unknown format version {version}")
    if kind == KIND_PUT:
        if value_len > MAX_VALUE_BYTES:
            raise BadRecord(f"value length {value_len} over the limit")
        if encoding not in (VALUE_JSON, VALUE_JSON64):
            raise BadRecord(f"unknown value encoding {encoding}")
    elif kind == KIND_DELETE:
        if value_len != TOMBSTONE_VALUE_SIZE:
            raise BadRecord(f"tombstone with a value of {value_len} bytes")
        if encoding:
            raise BadRecord(f"tombstone with a value encoding {encoding}")
    elif kind == KIND_BATCH:
        return _decode_batch(buf, offset, crc, key_len, encoding, value_len, seq, expiry)
    else:
        raise BadRecord(f"unknown record kind {kind}")
    if not 0 < key_len <= MAX_KEY_BYTES:
        raise BadRecord(f"key length {key_len} out of range")
    size = HEADER_SIZE + key_len + value_len
    if end_of_buf - offset < size:
        raise BadRecord("truncated record")
    if crc32(memoryview(buf)[offset + 4 : offset + size]) != crc:
        raise BadRecord("checksum mismatch")
    if not expiry >= 0.0:  # also refuses NaN
        raise BadRecord("negative expiry")
    key_start = offset + HEADER_SIZE
    key = bytes(buf[key_start : key_start + key_len])
    return Record(kind, seq, expiry, key, key_start + key_len, size, encoding)


def check_put(buf: bytes, key: bytes) -> tuple[int, float, int] | None:
    """``(value_start, expiry, encoding)`` if ``buf`` is exactly one sound put record of
    ``key``, else None (the caller then runs :func:`decode` to say what is wrong).

    The read path's check: the tests of :func:`decode`, with no record object made, but for
    the key length's range, which the comparison with ``key`` (a checked key, 1 to 128 bytes)
    stands in for.
    """
    try:
        crc, version, kind, key_len, encoding, value_len, _seq, expiry = _HEADER.unpack_from(buf)
    except struct.error:
        return None
    value_start = HEADER_SIZE + key_len
    if (
        version == FORMAT_VERSION
        and kind == KIND_PUT
        and value_start + value_len == len(buf)
        and buf[HEADER_SIZE:value_start] == key
        and encoding in (VALUE_JSON64, VALUE_JSON)
        and value_len <= MAX_VALUE_BYTES
        and expiry >= 0.0
        and crc32(memoryview(buf)[4:]) == crc
    ):
        return value_start, expiry, encoding
    return None


def value_start(buf: bytes | bytearray | memoryview, key: bytes, /) -> int:
    """Where the value begins in ``buf`` if :func:`check_put` accepts it as a put of ``key``
    with no deadline (expiry 0.0) in the ``VALUE_JSON64`` encoding; else -1.

    For the read path's common case, which then hands the value straight to orjson: an int
    is all it needs, and ``format._crecord`` gives it without check_put's tuple. Everything
    else (a deadline, the json encoding, a damaged record) goes through check_put, and then
    :func:`decode` to say what is wrong. This is the specification of the C function, which
    is used in its place where it was built.
    """
    # check_put is typed for the bytes the store reads, but unpacks and hashes any buffer.
    checked = check_put(buf, key)  # type: ignore[arg-type]
    if checked is not None and checked[1] == 0.0 and checked[2] == VALUE_JSON64:
        return checked[0]
    # A key that is not bytes-like compares unequal in check_put; the C function cannot take
    # it, so neither does this one.
    memoryview(key).release()
    return -1


def put_value(
    buf: bytes | bytearray | memoryview | mmap.mmap, offset: int, size: int, key: bytes, /
) -> bytes | None:
    """The value's bytes if ``buf[offset:offset + size]`` is a record :func:`value_start`
    accepts as a put of ``key``; else None, as for a span that is not inside ``buf``.

    The read path's common case in one call: the record checked where it lies (in a
    segment's memory map, say) and only the value copied out, as the ``bytes`` orjson decodes
    fastest. This is the specification of the C function, used in its place where built.
    """
    with memoryview(buf) as view:
        if offset < 0 or size < 0 or offset + size > len(view):
            return None
        record = bytes(view[offset : offset + size])
    start = value_start_py(record, key)
    return record[start:] if start > 0 else None


value_start_py: Final = value_start
"""The pure-Python :func:`value_start`, whichever one is in use (for comparing the two)."""
put_value_py: Final = put_value
"""The pure-Python :func:`put_value`, likewise."""

if not os.environ.get("AIOKV_PURE_PYTHON"):
    with contextlib.suppress(ImportError):  # not built where no C compiler was found
        from aiokv._bitcask.format._crecord import (  # C: the same functions, in place
            encode_puts as _encode_puts_c,
        )
        from aiokv._bitcask.format._crecord import (
            put_value,
            use_crc32,
            value_start,
        )

        # The C check calls zlib itself, or the faster CRC the package uses, through Python.
        use_crc32(None if crc32 is zlib.crc32 else crc32)

IN_C: Final = value_start is not value_start_py
"""Whether the C record check (``format._crecord``) is the one in use."""


def _decode_batch(
    buf: bytes | bytearray | memoryview,
    offset: int,
    crc: int,
    key_len: int,
    encoding: int,
    value_len: int,
    seq: int,
    expiry: float,
) -> Record:
    """A batch record's header, checked (:func:`decode` has read its fields); its value is
    the records' length, count and CRC, which :func:`batch_span` reads."""
    if key_len or encoding or value_len != _BATCH.size or expiry != 0.0:
        raise BadRecord("malformed batch record")
    if len(buf) - offset < BATCH_SIZE:
        raise BadRecord("truncated record")
    if crc32(memoryview(buf)[offset + 4 : offset + BATCH_SIZE]) != crc:
        raise BadRecord("checksum mismatch")
    return Record(KIND_BATCH, seq, 0.0, b"", offset + HEADER_SIZE, BATCH_SIZE)


def batch_span(buf: bytes | bytearray | memoryview, record: Record) -> tuple[int, int]:
    """``(length, count)`` of the records after the batch ``record`` lying in ``buf`` (at
    ``record.value_start - HEADER_SIZE``), checked whole: :class:`BadRecord` if they run past
    the end of ``buf`` or do not match their CRC (a batch cut short by a crash)."""
    length, count, crc = _BATCH.unpack_from(buf, record.value_start)
    if (count == 0) != (length == 0) or count * HEADER_SIZE > length:
        raise BadRecord("malformed batch record")
    start = record.value_start + _BATCH.size
    if len(buf) - start < length:
        raise BadRecord("the batch's records are cut short")
    if crc32(memoryview(buf)[start : start + length]) != crc:
        raise BadRecord("the batch's records do not match its checksum")
    return length, count


def scan(data: bytes, start: int = FILE_HEADER_SIZE) -> Iterator[tuple[int, Record]]:
    """Yield ``(offset, record)`` for each good put and delete record in ``data`` from
    ``start`` on.

    ``start`` is the file header's end when ``data`` is a whole segment, 0 for a piece read
    from its middle. Stops at the end of ``data``; raises :class:`BadRecord` (with
    ``.offset`` set) at the first record that does not decode, so the caller can decide
    between a torn tail and corruption. A batch record is not yielded: its records are, once
    all of them are found whole and none yielded before (else the batch record is the bad
    one: a torn batch is cut off whole, and nothing of it was taken).
    """
    offset = start
    end = len(data)
    while offset < end:
        try:
            record = decode(data, offset)
            batch = _batch_records(data, offset, record) if record.kind == KIND_BATCH else None
        except BadRecord as exc:
            exc.offset = offset
            raise
        if batch is None:
            yield offset, record
            offset += record.size
        else:
            yield from batch
            offset += BATCH_SIZE + _BATCH.unpack_from(data, record.value_start)[0]


def _batch_records(data: bytes, offset: int, record: Record) -> list[tuple[int, Record]]:
    """The records of the batch whose batch ``record`` lies at ``offset``, all checked."""
    length, count = batch_span(data, record)
    position = offset + BATCH_SIZE
    batch_end = position + length
    found = []
    while position < batch_end:
        inner = decode(data, position)
        if inner.kind == KIND_BATCH:
            raise BadRecord("a batch record inside a batch")
        found.append((position, inner))
        position += inner.size
    if position != batch_end or len(found) != count:
        raise BadRecord("a batch's records do not fill its length")
    return found


class FileHeader(NamedTuple):
    kind: int
    created_seq: int
    source: int


def encode_file_header(
    kind: int, created_seq: int, source: int = 0, version: int = FILE_VERSION
) -> bytes:
    """A segment's file header; ``version`` other than the current one only for tests of
    stores written before."""
    head = _FILE_HEADER.pack(FILE_MAGIC, version, kind, created_seq, source)
    return head + _CRC.pack(crc32(head))


def decode_file_header(buf: bytes | bytearray | memoryview) -> FileHeader:
    """Decode and verify a segment's file header, or raise :class:`BadRecord`."""
    if len(buf) < FILE_HEADER_SIZE:
        raise BadRecord("truncated file header")
    magic, version, kind, created_seq, source = _FILE_HEADER.unpack_from(buf)
    if magic != FILE_MAGIC:
        raise BadRecord("not an aiokv segment (bad magic)")
    (crc,) = _CRC.unpack_from(buf, _FILE_HEADER.size)
    if crc32(memoryview(buf)[: _FILE_HEADER.size]) != crc:
        raise BadRecord("file header checksum mismatch")
    if version not in FILE_VERSIONS:
        raise BadRecord(f"unknown format version {version}")
    if kind not in (FILE_LOG, FILE_COMPACTED):
        raise BadRecord(f"unknown file kind {kind}")
    return FileHeader(kind, created_seq, source)


def file_version(buf: bytes | bytearray | memoryview) -> int:
    """The version of a file header :func:`decode_file_header` accepted."""
    return int(_FILE_HEADER.unpack_from(buf)[1])


def record_seq(header: bytes | bytearray | memoryview) -> int:
    """The sequence number in a record header (unchecked: for ordering files at open)."""
    return int(_HEADER.unpack_from(header)[6])

"""Fuzzing the parsers of untrusted bytes: records, file headers, hints and a whole directory.

Every decoder of on-disk bytes must, on any input, either give a sound parse or raise its one
documented exception (``BadRecord`` for records and file headers, ``BadHint`` for hints,
``CorruptionError`` for :func:`engine.recovery.recover`); never another exception, never hang,
never allocate more than the input could justify. Inputs are random bytes and valid encodings
mutated (bits flipped, bytes overwritten with interesting lengths, cut, spliced, and checksums
recomputed so that the framing checks behind the CRC are reached too).

A sound parse is checked for what it claims: a decoded record or hint re-encodes to exactly
the bytes it was decoded from, and a recovered directory keeps every sealed segment as it was.

``CORPUS_*`` hold inputs that once broke a parser, or that sit on its edges; they are replayed
on every run. Hypothesis runs derandomized (a fixed seed), so a failure reproduces; its
falsifying example is printed in the failure message.
"""

from __future__ import annotations

import os
import struct
import tempfile
import threading
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from _internals import (
    BATCH_SIZE,
    FILE_COMPACTED,
    FILE_HEADER_SIZE,
    FILE_LOG,
    HEADER_SIZE,
    HINT_HEADER_SIZE,
    KIND_BATCH,
    KIND_DELETE,
    KIND_PUT,
    MAX_RECORD_SIZE,
    BadHint,
    BadRecord,
    FileHeader,
    HintBuilder,
    Record,
    Recovered,
    check_entries,
    check_put,
    decode,
    decode_file_header,
    decode_hint,
    encode_batch,
    encode_delete,
    encode_file_header,
    encode_put,
    file_version,
    index_locations,
    iter_entries,
    offset_of,
    recover,
    scan,
    segment_of,
    size_of,
    split_keys,
    tombstone_target,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import DataObject

from aiokv import CorruptionError

EXAMPLES = 300  # per test, times the soak factor
MEMORY_LIMIT = 16 * 2**20  # traced bytes one parse may allocate: inputs here are under 64 KiB
CALL_TIMEOUT_S = 20.0  # a parse still running after this long is taken for a hang
NOW = 1_700_000_000.0

T = TypeVar("T")


def fuzz_settings(soak: int, examples: int = EXAMPLES) -> settings:
    """CI-sized Hypothesis settings, scaled by ``--soak``; deterministic and database-free."""
    return settings(
        max_examples=examples * soak,
        derandomize=True,
        database=None,
        deadline=None,  # hangs are caught by bounded_call, not by timing a shared machine
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def bounded_call(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a thread; fail if it hangs or its allocations peak over the limit.

    Whatever ``fn`` raises is raised here, so the caller decides which exceptions are allowed.
    Allocations are traced during the call only (tracing all of Hypothesis would triple the
    run time).
    """
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:
            error.append(exc)

    already_tracing = tracemalloc.is_tracing()
    if already_tracing:
        tracemalloc.reset_peak()
    else:
        tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    try:
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(CALL_TIMEOUT_S)
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        if not already_tracing:
            tracemalloc.stop()
    assert not thread.is_alive(), f"the parse did not finish within {CALL_TIMEOUT_S} s"
    assert peak < MEMORY_LIMIT, f"the parse allocated {peak} bytes at its peak"
    if error:
        raise error[0]
    return result[0]


# -- mutations ------------------------------------------------------------------------------

INTERESTING = {
    1: [0, 1, 2, 3, 4, 127, 128, 129, 255],
    4: [0, 1, 4, 28, 16383, 16384, 16385, 2**16, 2**31 - 1, 2**31, 2**32 - 1],
    8: [0, 1, 31, 32, 33, 2**32, 2**63, 2**64 - 1],
}


Field = tuple[int, int]  # (offset, width) of a field; a negative offset counts from the end

RECORD_FIELDS: list[Field] = [(4, 1), (5, 1), (6, 1), (7, 1), (8, 4), (12, 8), (20, 8)]
FILE_HEADER_FIELDS: list[Field] = [(8, 1), (9, 1), (10, 1), (16, 8), (24, 4)]
HINT_FIELDS: list[Field] = [(8, 1), (9, 1), (12, 4), (16, 8), (24, 8), (-12, 4), (-8, 4)]


def mutate(
    data: DataObject,
    buf: bytes,
    forge: Callable[[bytearray], None] | None,
    fields: list[Field] | None = None,
) -> bytes:
    """Apply one to four random edits to ``buf``; ``forge`` recomputes a checksum in place;
    ``fields`` are where the lengths and numbers lie, for edits aimed at them."""
    out = bytearray(buf)
    ops = ["flip", "byte", "word", "cut", "extend", "insert", "delete"]
    if forge is not None:
        ops.append("forge")
    if fields:
        ops += ["field", "field"]
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        op = data.draw(st.sampled_from(ops), label="op")
        position = data.draw(st.integers(0, max(0, len(out) - 1)), label="position")
        if op == "flip" and out:
            out[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")
        elif op == "byte" and out:
            out[position] = data.draw(st.integers(0, 255), label="byte")
        elif op == "word":
            width = data.draw(st.sampled_from([1, 4, 8]), label="width")
            value = data.draw(
                st.sampled_from(INTERESTING[width]) | st.integers(0, 2 ** (8 * width) - 1),
                label="value",
            )
            if position + width <= len(out):
                out[position : position + width] = value.to_bytes(width, "little")
        elif op == "field" and fields:
            start, width = data.draw(st.sampled_from(fields), label="field")
            start += len(out) if start < 0 else 0
            if start >= 0 and start + width <= len(out):
                old = int.from_bytes(out[start : start + width], "little")
                value = data.draw(
                    st.sampled_from(INTERESTING[width])
                    | st.sampled_from([old - 1, old + 1, old // 2])
                    | st.integers(0, 2 ** (8 * width) - 1),
                    label="value",
                ) % 2 ** (8 * width)
                out[start : start + width] = value.to_bytes(width, "little")
        elif op == "cut":
            del out[position:]
        elif op == "extend":
            out += data.draw(st.binary(min_size=1, max_size=40), label="tail")
        elif op == "insert":
            out[position:position] = data.draw(st.binary(min_size=1, max_size=8), label="ins")
        elif op == "delete":
            del out[position : position + data.draw(st.integers(1, 8), label="n")]
        elif op == "forge" and forge is not None:
            forge(out)
    return bytes(out)


def forge_record_crc(buf: bytearray, offset: int = 0) -> None:
    """Make the CRC of the record at ``offset`` match whatever its header now claims."""
    if len(buf) - offset < HEADER_SIZE:
        return
    key_len, value_len = buf[offset + 6], int.from_bytes(buf[offset + 8 : offset + 12], "little")
    end = offset + HEADER_SIZE + key_len + value_len
    if end <= len(buf):
        struct.pack_into("<I", buf, offset, zlib.crc32(buf[offset + 4 : end]))


def forge_file_header_crc(buf: bytearray) -> None:
    """Make a segment file header's CRC match its first 28 bytes."""
    if len(buf) >= FILE_HEADER_SIZE:
        struct.pack_into("<I", buf, 28, zlib.crc32(buf[:28]))


def forge_hint_crc(buf: bytearray) -> None:
    """Make a hint's trailer CRC match everything before it."""
    if len(buf) >= 4:
        struct.pack_into("<I", buf, len(buf) - 4, zlib.crc32(buf[:-4]))


# -- records --------------------------------------------------------------------------------

record_keys = st.binary(min_size=1, max_size=128)
expiries = st.sampled_from([0.0, -0.0, 1.5, 1e9, 1.7e9]) | st.floats(
    min_value=0.0, allow_nan=False, allow_infinity=True
)


@st.composite
def records(draw: Any) -> bytes:
    """A sound put or tombstone record of any key, value, sequence number and deadline."""
    if draw(st.booleans()):
        return encode_put(
            draw(st.integers(0, 2**64 - 1)),
            draw(record_keys),
            draw(st.binary(max_size=300)),
            draw(expiries),
            draw(st.sampled_from([0, 1])),
        )
    return encode_delete(
        draw(st.integers(0, 2**64 - 1)), draw(record_keys), draw(st.integers(0, 2**32 - 1))
    )


def check_record(buf: bytes, offset: int) -> Record | None:
    """Decode ``buf`` at ``offset``: ``BadRecord`` or a record that re-encodes exactly."""
    try:
        record = bounded_call(lambda: decode(buf, offset))
    except BadRecord as bad:
        reason: str | None = bad.reason
    else:
        reason = None
    if reason is not None:
        assert reason, "a BadRecord must say why"
        return None
    if record.kind == KIND_BATCH:  # its records are checked as a scan reads them
        assert (record.key, record.size, record.expiry) == (b"", BATCH_SIZE, 0.0)
        assert offset + BATCH_SIZE <= len(buf)
        return record
    assert 1 <= len(record.key) <= 128
    assert offset + HEADER_SIZE + len(record.key) == record.value_start
    assert offset + record.size <= len(buf)
    assert record.expiry >= 0.0
    whole = buf[offset : offset + record.size]
    if record.kind == KIND_PUT:
        value = buf[record.value_start : offset + record.size]
        again = encode_put(record.seq, record.key, value, record.expiry, record.encoding)
    else:
        assert record.kind == KIND_DELETE
        assert record.size == HEADER_SIZE + len(record.key) + 4
        again = encode_delete(record.seq, record.key, tombstone_target(buf, record))
        # A tombstone's expiry field is not used (encode_delete writes 0.0): left out.
        whole = whole[:20] + again[20:28] + whole[28:]
        again = whole[:4] + again[4:]  # and so is the CRC that covers it
    assert again == whole, "decode accepted bytes that are not the encoding of what it returned"
    return record


def check_quick_put(buf: bytes, key: bytes) -> None:
    """The read path's check accepts exactly a whole sound put record of ``key``."""
    checked = bounded_call(lambda: check_put(buf, key))
    try:
        record: Record | None = decode(buf)
    except BadRecord:
        record = None
    expected = (
        record is not None
        and record.kind == KIND_PUT
        and record.key == key
        and record.size == len(buf)
    )
    assert (checked is not None) == expected, (checked, record)


BATCHED = encode_put(5, b"a", b"{}", 0.0) + encode_delete(6, b"b", 3)
BATCH = encode_batch(5, BATCHED, 2)

CORPUS_RECORDS: list[Any] = [
    pytest.param(b"", 0, id="empty"),
    pytest.param(bytes(HEADER_SIZE), 0, id="zero-header"),
    pytest.param(b"\xff" * 64, 0, id="all-ones"),
    pytest.param(encode_put(1, b"k", b"{}", 0.0), 1, id="offset-inside"),
    pytest.param(encode_put(1, b"k", b"{}", 0.0), 10**6, id="offset-past-end"),
    pytest.param(encode_put(1, b"k", b"{}", 0.0)[:-1], 0, id="one-short"),
    pytest.param(encode_put(2**64 - 1, b"k" * 128, b"v" * 16384, 2e9), 0, id="largest"),
    pytest.param(encode_delete(1, b"k", 7) + b"junk", 0, id="trailing-junk"),
    pytest.param(BATCH + BATCHED, 0, id="batch"),
    pytest.param(BATCH, 0, id="batch-record-alone"),
]


@pytest.mark.parametrize(("buf", "offset"), CORPUS_RECORDS)
def test_record_corpus_replays(buf: bytes, offset: int) -> None:
    """Guards inputs on the record decoder's edges (and past crashers) on every run."""
    check_record(buf, offset)


def test_decode_random_bytes_gives_a_record_or_bad_record(soak: int) -> None:
    """Guards ``decode`` against arbitrary bytes at arbitrary offsets."""

    @fuzz_settings(soak)
    @given(buf=st.binary(max_size=400), offset=st.integers(0, 420))
    def run(buf: bytes, offset: int) -> None:
        check_record(buf, offset)

    run()


@pytest.mark.slow
def test_decode_mutated_records_gives_the_original_or_bad_record(soak: int) -> None:
    """Guards ``decode`` and ``check_put`` against damaged records, forged CRCs included:
    without a forged CRC only the untouched original may decode."""

    @fuzz_settings(soak)
    @given(original=records(), prefix=st.binary(max_size=40), data=st.data())
    def run(original: bytes, prefix: bytes, data: DataObject) -> None:
        forged = data.draw(st.booleans(), label="may forge")
        buf = mutate(
            data,
            prefix + original,
            (lambda b: forge_record_crc(b, len(prefix))) if forged else None,
            [(len(prefix) + start, width) for start, width in RECORD_FIELDS],
        )
        record = check_record(buf, len(prefix))
        if record is not None and not forged:
            assert buf[len(prefix) : len(prefix) + record.size] == original
        key_len = original[6]
        check_quick_put(buf[len(prefix) :], original[HEADER_SIZE : HEADER_SIZE + key_len])

    run()


# -- file headers ---------------------------------------------------------------------------


def check_file_header(buf: bytes) -> FileHeader | None:
    """Decode ``buf``: ``BadRecord``, or a header that re-encodes to the bytes it came from."""
    try:
        header = bounded_call(lambda: decode_file_header(buf))
    except BadRecord as bad:
        reason: str | None = bad.reason
    else:
        reason = None
    if reason is not None:
        assert reason, "a BadRecord must say why"
        return None
    assert header.kind in (FILE_LOG, FILE_COMPACTED)
    version = file_version(buf)  # 1 (before batch records) or 2, both read
    again = encode_file_header(header.kind, header.created_seq, header.source, version)
    # Bytes 10..15 are reserved: the decoder need not look at them, but the CRC covers them.
    assert again[:10] + again[16:28] == bytes(buf[:10]) + bytes(buf[16:28])
    assert zlib.crc32(bytes(buf[:28])) == int.from_bytes(buf[28:32], "little")
    return header


CORPUS_FILE_HEADERS: list[Any] = [
    pytest.param(b"", id="empty"),
    pytest.param(b"AIOKVSEG", id="magic-only"),
    pytest.param(encode_file_header(FILE_LOG, 1)[:-1], id="one-short"),
    pytest.param(encode_file_header(FILE_COMPACTED, 2**64 - 1, 2**32 - 1), id="largest"),
    pytest.param(encode_file_header(FILE_LOG, 1) + b"x" * 100, id="followed-by-records"),
]


@pytest.mark.parametrize("buf", CORPUS_FILE_HEADERS)
def test_file_header_corpus_replays(buf: bytes) -> None:
    """Guards inputs on the file header decoder's edges (and past crashers) on every run."""
    check_file_header(buf)


@pytest.mark.slow
def test_decode_file_header_on_random_and_mutated_bytes(soak: int) -> None:
    """Guards ``decode_file_header``: a header or ``BadRecord``, never anything else."""
    headers = st.builds(
        encode_file_header,
        st.sampled_from([FILE_LOG, FILE_COMPACTED, 0, 3, 255]),
        st.integers(0, 2**64 - 1),
        st.integers(0, 2**32 - 1),
    )

    @fuzz_settings(soak)
    @given(start=st.binary(max_size=64) | headers, data=st.data())
    def run(start: bytes, data: DataObject) -> None:
        forged = data.draw(st.booleans(), label="may forge")
        buf = mutate(data, start, forge_file_header_crc if forged else None, FILE_HEADER_FIELDS)
        header = check_file_header(buf)
        if header is not None and not forged and len(start) >= FILE_HEADER_SIZE:
            assert buf[:FILE_HEADER_SIZE] == start[:FILE_HEADER_SIZE]

    run()


# -- hints ----------------------------------------------------------------------------------

Entry = tuple[int, bytes, int, int, int, float, int]  # kind, key, offset, size, seq, expiry, target


@st.composite
def hint_entries(draw: Any) -> list[Entry]:
    """Entries of a sound hint: records of possible sizes lying back to back from the file
    header on (the hint covers up to the end of the last one, see :func:`covered_by`)."""
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from([KIND_PUT, KIND_DELETE]),
                st.text(min_size=1, max_size=32).map(lambda text: text.encode("utf-8")),
                st.integers(HEADER_SIZE + 1, MAX_RECORD_SIZE),
                st.integers(0, 2**64 - 1),
                st.floats(allow_nan=False),
                st.integers(0, 2**32 - 1),
            ),
            max_size=12,
        )
    )
    entries: list[Entry] = []
    offset = FILE_HEADER_SIZE
    for kind, key, size, seq, expiry, target in rows:
        entries.append((kind, key, offset, size, seq, expiry, target))
        offset += size
    return entries


def covered_by(entries: list[Entry]) -> int:
    """Where the records of ``entries`` end: what their hint covers."""
    return entries[-1][2] + entries[-1][3] if entries else FILE_HEADER_SIZE


def hint_fields(count: int) -> list[Field]:
    """The framing fields of a hint of ``count`` entries, and its key lengths, offsets, sizes."""
    columns: list[Field] = []
    for entry in range(min(count, 3)):
        columns += [
            (HINT_HEADER_SIZE + count + entry, 1),
            (HINT_HEADER_SIZE + 2 * count + 4 * entry, 4),
            (HINT_HEADER_SIZE + 6 * count + 4 * entry, 4),
        ]
    return HINT_FIELDS + columns


def encode_hint(entries: list[Entry], segment_id: int, created_seq: int, covered: int) -> bytes:
    """A sound hint file holding ``entries``."""
    builder = HintBuilder()
    for entry in entries:
        builder.add(*entry)
    return builder.encode(segment_id, created_seq, covered)


def check_hint(buf: bytes) -> list[bytes] | None:
    """Decode, check and split ``buf``: ``BadHint`` at some step, or a hint that re-encodes."""

    def parse() -> tuple[Any, list[bytes]]:
        hint = decode_hint(buf)
        check_entries(hint)
        return hint, split_keys(hint)

    try:
        hint, keys = bounded_call(parse)
    except BadHint as bad:
        reason: str | None = str(bad)
    else:
        reason = None
    if reason is not None:
        assert reason, "a BadHint must say why"
        return None
    entries = [
        (kind, key, offset, size, seq, expiry, target)
        for key, (kind, _length, offset, size, seq, expiry, target) in zip(
            keys, iter_entries(hint), strict=True
        )
    ]
    assert all(kind in (KIND_PUT, KIND_DELETE) for kind, *_ in entries)
    assert all(1 <= len(key) <= 128 for key in keys)
    for key in keys:
        key.decode("utf-8")  # split_keys vouches for it
    again = encode_hint(entries, hint.segment_id, hint.created_seq, hint.covered)
    # Bytes 9..11 are reserved (see check_file_header); the CRC then differs with them.
    assert again[:9] + again[12:-4] == bytes(buf[:9]) + bytes(buf[12:-4])
    return keys


CORPUS_HINTS: list[Any] = [
    pytest.param(b"", id="empty"),
    pytest.param(bytes(44), id="zeros-of-overhead-size"),
    pytest.param(encode_hint([], 1, 1, 32), id="no-entries"),
    pytest.param(encode_hint([(1, b"k", 32, 40, 1, 0.0, 0)], 1, 1, 72)[:-1], id="one-short"),
    pytest.param(
        encode_hint([(1, b"k", 32, 40, 1, 0.0, 0)], 1, 1, 72)[:-12]
        + struct.pack("<II", 2**32 - 1, 2)
        + b"\0\0\0\0",
        id="huge-count",
    ),
]


@pytest.mark.parametrize("buf", CORPUS_HINTS)
def test_hint_corpus_replays(buf: bytes) -> None:
    """Guards inputs on the hint decoder's edges (and past crashers) on every run."""
    mutable = bytearray(buf)
    forge_hint_crc(mutable)
    check_hint(buf)
    check_hint(bytes(mutable))


def test_decode_hint_on_random_bytes(soak: int) -> None:
    """Guards ``decode_hint``/``check_entries``/``split_keys`` against arbitrary bytes, with
    and without a CRC made to match (so that the framing checks are reached)."""

    @fuzz_settings(soak)
    @given(buf=st.binary(max_size=600), forged=st.booleans())
    def run(buf: bytes, forged: bool) -> None:
        mutable = bytearray(buf)
        if forged:
            forge_hint_crc(mutable)
        check_hint(bytes(mutable))

    run()


@pytest.mark.slow
def test_decode_hint_on_mutated_hints(soak: int) -> None:
    """Guards the hint parsers against damaged valid hints, forged CRCs included: without a
    forged CRC only the untouched original may parse."""

    @fuzz_settings(soak)
    @given(
        entries=hint_entries(),
        segment_id=st.integers(0, 2**32 - 1),
        created_seq=st.integers(0, 2**64 - 1),
        data=st.data(),
    )
    def run(entries: list[Entry], segment_id: int, created_seq: int, data: DataObject) -> None:
        original = encode_hint(entries, segment_id, created_seq, covered_by(entries))
        assert check_hint(original) == [entry[1] for entry in entries]
        forged = data.draw(st.booleans(), label="may forge")
        buf = mutate(data, original, forge_hint_crc if forged else None, hint_fields(len(entries)))
        keys = check_hint(buf)
        if keys is not None and not forged:
            assert buf == original

    run()


# -- recover --------------------------------------------------------------------------------

STORE_KEYS = [b"a", b"b", b"k1", "ключ".encode(), "🙂".encode(), b"x" * 128]


@st.composite
def segment_files(draw: Any, segment_id: int) -> tuple[bytes, bytes, list[int]]:
    """A sound segment's bytes, a sound hint for it, and where its records start."""
    kind = draw(st.sampled_from([FILE_LOG, FILE_LOG, FILE_COMPACTED]))
    created_seq = draw(st.integers(1, 50) | st.just(2**64 - 2))
    source = draw(st.integers(0, 9)) if kind == FILE_COMPACTED else 0
    out = bytearray(encode_file_header(kind, created_seq, source))
    builder = HintBuilder()
    seq = created_seq
    offsets = []
    for _ in range(draw(st.integers(0, 6))):
        key = draw(st.sampled_from(STORE_KEYS))
        offset = len(out)
        offsets.append(offset)
        if draw(st.integers(0, 3)):
            expiry = draw(st.sampled_from([0.0, 0.0, NOW - 1, NOW + 100]))
            value = draw(st.sampled_from([b"{}", b'{"a":1}', b'{"s":"' + b"v" * 200 + b'"}']))
            record = encode_put(seq, key, value, expiry, draw(st.sampled_from([0, 1])))
            target = 0
        else:
            expiry = 0.0
            target = draw(st.integers(0, 9))
            record = encode_delete(seq, key, target)
        out += record
        builder.add(record[5], key, offset, len(record), seq, expiry, target)
        seq = min(seq + 1, 2**64 - 1)
    return bytes(out), builder.encode(segment_id, created_seq, len(out)), offsets


@st.composite
def store_directories(draw: Any) -> dict[str, bytes]:
    """File name -> contents of a store directory, sound, damaged or made up."""
    files: dict[str, bytes] = {}
    ids = draw(st.lists(st.integers(0, 6), min_size=0, max_size=4, unique=True))
    for segment_id in ids:
        data, hint, offsets = draw(segment_files(segment_id))
        how = draw(st.sampled_from(["sound", "sound", "mutated", "forged", "random", "short"]))
        fields = FILE_HEADER_FIELDS + [
            (offset + start, width) for offset in offsets[:3] for start, width in RECORD_FIELDS
        ]

        def forge_segment(buf: bytearray, offsets: list[int] = offsets) -> None:
            forge_file_header_crc(buf)
            for offset in offsets:
                forge_record_crc(buf, offset)

        if how in ("mutated", "forged"):
            data = mutate(draw(st.data()), data, forge_segment if how == "forged" else None, fields)
        elif how == "random":
            data = draw(st.binary(max_size=300))
        elif how == "short":
            data = data[: draw(st.integers(0, FILE_HEADER_SIZE + 1))]
        files[f"{segment_id:08d}.data"] = data
        hint_how = draw(st.sampled_from(["sound", "none", "mutated", "forged", "random"]))
        if hint_how in ("mutated", "forged"):
            hint = mutate(
                draw(st.data()),
                hint,
                forge_hint_crc if hint_how == "forged" else None,
                hint_fields(len(offsets)),
            )
        elif hint_how == "random":
            hint = draw(st.binary(max_size=200))
        if hint_how != "none":
            files[f"{segment_id:08d}.hint"] = hint
    extra = st.sampled_from(
        [
            "00000009.hint",  # an orphan
            "00000001.data.tmp",
            "00000002.hint.tmp",
            "LOCK",
            "notes.txt",
            "00000001.data.bak",
            "1.data",
            "000000001.data",
        ]
    )
    for name in draw(st.lists(extra, max_size=3, unique=True)):
        files.setdefault(name, draw(st.binary(max_size=100)))
    return files


def close_all(recovered: Recovered) -> None:
    """Close the segment files a successful recovery opened."""
    for segment in recovered.segments.values():
        segment.close()


def sound_prefix(data: bytes) -> int:
    """Where the run of sound records from the file header on ends in ``data``: as a scan
    reads them, a batch's records only whole."""
    try:
        for _record in scan(data):
            pass
    except BadRecord as bad:
        return bad.offset
    return max(len(data), FILE_HEADER_SIZE)


def check_recover(files: dict[str, bytes]) -> None:
    """``recover`` gives an index or ``CorruptionError``. A success removes no segment but a
    cut-off creation or one a remaining compacted file was made from, and leaves every other
    but the active one as it was; the active one is cut at most, and never inside the run of
    sound records it starts with; every indexed location lies inside its file; and a second
    recovery agrees with the first."""
    with tempfile.TemporaryDirectory(prefix="aiokv-fuzz-") as name:
        directory = Path(name)
        for file_name, data in files.items():
            (directory / file_name).write_bytes(data)
            os.chmod(directory / file_name, 0o600)
        try:
            recovered = bounded_call(lambda: recover(directory, NOW, 2**30))
        except CorruptionError as exc:
            message: str | None = str(exc)
        else:
            message = None
        if message is not None:
            assert message, "a CorruptionError must say what is wrong"
            return
        try:
            active = recovered.active.id if recovered.active is not None else None
            assert set(recovered.segments) == {
                int(p.name[:8]) for p in directory.glob("*.data") if len(p.name) == 13
            }
            for segment_id in recovered.segments:
                file_name = f"{segment_id:08d}.data"
                now = (directory / file_name).read_bytes()
                if segment_id == active:
                    assert files[file_name].startswith(now), "the active segment was rewritten"
                    assert len(now) >= sound_prefix(files[file_name]), (
                        f"sound records cut off the active segment: {len(now)} bytes left of "
                        f"{sound_prefix(files[file_name])} that decode"
                    )
                else:
                    assert now == files[file_name], f"sealed segment {file_name} was changed"
            # A compacted file is numbered after its source (its number is taken when it is made).
            copied = {
                s.source
                for s in recovered.segments.values()
                if s.kind == FILE_COMPACTED and s.source < s.id
            }
            for file_name, data in files.items():
                if file_name.endswith(".data") and not (directory / file_name).exists():
                    # Only a cut-off creation (no more than a file header) or the source of a
                    # compacted file that remains (an interrupted compaction) may go.
                    assert len(data) <= FILE_HEADER_SIZE or int(file_name[:8]) in copied, (
                        f"{file_name} ({len(data)} bytes) was removed, and no compacted copy "
                        "of it remains"
                    )
            assert recovered.next_seq < 2**64, "the next sequence number cannot be written"
            locations = index_locations(recovered.index)
            assert len(locations) == len(recovered.index)
            for loc in locations:
                segment = recovered.segments[segment_of(loc)]
                assert offset_of(loc) + size_of(loc) <= segment.size, (
                    f"an entry at {offset_of(loc)}+{size_of(loc)} lies past the end of "
                    f"segment {segment.id} ({segment.size} bytes)"
                )
        finally:
            close_all(recovered)
        again = bounded_call(lambda: recover(directory, NOW, 2**30))
        try:
            assert index_locations(again.index) == locations, "a second recovery disagrees"
        finally:
            close_all(again)


def _forged_active_hint(covered_delta: int, last_size_delta: int) -> dict[str, bytes]:
    """A sound one-segment store whose hint has a CRC that matches wrong lengths."""
    first = encode_put(1, b"a", b'{"a":1}', 0.0, 1)
    second = encode_put(2, b"b", b'{"b":2}', 0.0, 1)
    data = encode_file_header(FILE_LOG, 1) + first + second
    entries: list[Entry] = [
        (KIND_PUT, b"a", FILE_HEADER_SIZE, len(first), 1, 0.0, 0),
        (KIND_PUT, b"b", FILE_HEADER_SIZE + len(first), len(second) + last_size_delta, 2, 0.0, 0),
    ]
    return {
        "00000001.data": data,
        "00000001.hint": encode_hint(entries, 1, 1, len(data) + covered_delta),
    }


CORPUS_DIRECTORIES: list[Any] = [
    # Found by test_recover_on_random_directories: a compacted file whose header names itself
    # as its source is taken for an interrupted compaction, and recovery deletes it.
    pytest.param(
        {
            "00000001.data": encode_file_header(FILE_COMPACTED, 5, 1)
            + encode_put(5, b"a", b'{"a":1}', 0.0, 1)
        },
        id="compacted-file-naming-itself-as-source",
    ),
    # The same with a source numbered after the compacted file (compaction numbers its output
    # after its source, so this cannot be an interrupted compaction).
    pytest.param(
        {
            "00000001.data": encode_file_header(FILE_COMPACTED, 5, 2)
            + encode_put(5, b"a", b'{"a":1}', 0.0, 1),
            "00000002.data": encode_file_header(FILE_LOG, 6) + encode_put(6, b"b", b"{}", 0.0, 1),
        },
        id="compacted-file-naming-a-newer-source",
    ),
    # Found by test_recover_on_random_directories: the newest record has the largest
    # sequence number, so the next one cannot be written.
    pytest.param(
        {
            "00000001.data": encode_file_header(FILE_LOG, 2**64 - 1)
            + encode_put(2**64 - 1, b"a", b'{"a":1}', 0.0, 1)
        },
        id="sequence-numbers-exhausted",
    ),
    # Found by test_bitflips.py: a hint whose CRC matches a ``covered`` one byte short of the
    # active segment's end makes recovery cut its last (sound) record off as a torn tail.
    pytest.param(_forged_active_hint(-1, 0), id="hint-covered-short-of-the-end"),
    # Found by test_bitflips.py: a hint whose CRC matches a wrong record size is trusted; the
    # index then points past the end of the segment.
    pytest.param(_forged_active_hint(0, 1), id="hint-size-past-the-end"),
    pytest.param({}, id="empty"),
    pytest.param({"00000001.data": b""}, id="empty-segment"),
    pytest.param({"00000001.data": encode_file_header(FILE_LOG, 1)}, id="header-only"),
    pytest.param(
        {
            "00000001.data": encode_file_header(FILE_LOG, 1) + b"junk",
            "00000002.data": encode_file_header(FILE_LOG, 5),
        },
        id="older-segment-damaged",
    ),
    pytest.param(
        {"00000001.hint": b"orphan", "00000003.data.tmp": b"x", "00000004.hint.tmp": b""},
        id="leftovers-only",
    ),
]


@pytest.mark.parametrize("files", CORPUS_DIRECTORIES)
def test_recover_corpus_replays(files: dict[str, bytes]) -> None:
    """Guards directory contents on recovery's edges (and past crashers) on every run."""
    check_recover(files)


@pytest.mark.slow
def test_recover_on_random_directories(soak: int) -> None:
    """Guards ``recover`` against any directory of segment-, hint- and temporary-named files
    holding sound, damaged, forged or random bytes."""

    @fuzz_settings(soak)
    @given(files=store_directories())
    def run(files: dict[str, bytes]) -> None:
        check_recover(files)

    run()

"""Recovery at open: torn tails are cut, damage elsewhere is refused, the newest seq wins."""

from __future__ import annotations

import gc
import json
import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import pytest
from _internals import (
    FILE_HEADER_SIZE,
    FILE_LOG,
    HEADER_SIZE,
    KIND_DELETE,
    BadHint,
    decode,
    decode_file_header,
    encode_delete,
    encode_file_header,
    encode_put,
    recovery,
    segment_name,
)

from aiokv import AsyncDataStore, CorruptionError, KeyNotFoundError, ManualClock

pytestmark = pytest.mark.purepy

FILE_HEADER = encode_file_header(FILE_LOG, 1)

SMALL = 2**20  # 64 KiB segments by default


def value_for(i: int, pad: int = 0) -> dict[str, Any]:
    return {"i": i, "pad": "v" * (20 + i % 7 + pad)}


def value_bytes(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def record_size(key: str, value: dict[str, Any]) -> int:
    return HEADER_SIZE + len(key.encode()) + len(value_bytes(value))


N = 6
KEYS = [f"k{i}" for i in range(N)]
VALUES = [value_for(i) for i in range(N)]
# BOUNDS[i] is where record i starts; BOUNDS[N] is the end of the file.
BOUNDS = [FILE_HEADER_SIZE]
for _key, _value in zip(KEYS, VALUES, strict=True):
    BOUNDS.append(BOUNDS[-1] + record_size(_key, _value))
LAST_START, END = BOUNDS[N - 1], BOUNDS[N]


def stored(start: int, stop: int) -> dict[str, dict[str, Any]]:
    """The keys and values of records ``start`` to ``stop - 1``."""
    return dict(zip(KEYS[start:stop], VALUES[start:stop], strict=True))


def size_of(path: Path) -> int:
    return path.stat().st_size


def segments(path: Path) -> list[Path]:
    return sorted(path.glob("*.data"))


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "aiokv" and record.levelno == logging.WARNING
    ]


def read_bytes(path: Path) -> bytes:
    return path.read_bytes()


def record_offsets(data: bytes) -> list[tuple[int, Any]]:
    """(offset, record) for every record of a segment's bytes."""
    found = []
    offset = FILE_HEADER_SIZE
    while offset < len(data):
        record = decode(data, offset)
        found.append((offset, record))
        offset += record.size
    return found


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as file:
        file.write(data)


def flip_byte(path: Path, offset: int, mask: int = 0x01) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        (byte,) = os.pread(fd, 1, offset)
        os.pwrite(fd, bytes([byte ^ mask]), offset)
    finally:
        os.close(fd)


async def write_keys(path: Path, items: list[tuple[str, dict[str, Any]]], **options: Any) -> None:
    """Write ``items`` as a process that then died would have left them.

    The store is closed cleanly, then the hint that only a clean close writes (the newest
    segment's) is removed; sealed segments keep theirs, as after a real crash.
    """
    async with AsyncDataStore(path, clock=ManualClock(), **options) as store:
        for key, value in items:
            await store.create(key, value)
    remove_hints(path, newest_only=True)


def remove_hints(path: Path, newest_only: bool = False) -> None:
    hints = sorted(path.glob("*.hint"))
    for hint in hints[-1:] if newest_only else hints:
        hint.unlink()


async def assert_reads(
    store: AsyncDataStore, present: dict[str, dict[str, Any]], absent: list[str]
) -> None:
    for key, value in present.items():
        assert await store.read(key) == value, key
    for key in absent:
        with pytest.raises(KeyNotFoundError):
            await store.read(key)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
async def six_records(store_path: Path) -> Path:
    await write_keys(store_path, list(zip(KEYS, VALUES, strict=True)))
    seg = store_path / segment_name(1)
    assert segments(store_path) == [seg]
    assert size_of(seg) == END
    return seg


# -- torn tail of the newest segment -------------------------------------------------------


def _kept(cut: int) -> int:
    """How many whole records a file cut at ``cut`` still holds."""
    return max(i for i in range(N + 1) if BOUNDS[i] <= cut)


TORN_CUTS = [
    *range(LAST_START + 1, END),  # every byte offset inside the last record
    BOUNDS[2] + 1,  # just after the start of an earlier record
    BOUNDS[2] + HEADER_SIZE // 2,  # in the middle of an earlier record's header
    BOUNDS[3] - 1,
]


@pytest.mark.parametrize("cut", TORN_CUTS)
async def test_torn_tail_is_cut_back_to_the_last_whole_record(
    store_path: Path, six_records: Path, caplog: pytest.LogCaptureFixture, cut: int
) -> None:
    os.truncate(six_records, cut)
    kept = _kept(cut)
    caplog.set_level(logging.WARNING, logger="aiokv")
    async with AsyncDataStore(store_path, clock=ManualClock()) as store:
        assert size_of(six_records) == BOUNDS[kept]
        await assert_reads(store, stored(0, kept), KEYS[kept:])
    assert size_of(six_records) == BOUNDS[kept]
    messages = warnings_logged(caplog)
    assert len(messages) == 1, messages
    assert str(six_records) in messages[0]
    assert f"offset {BOUNDS[kept]}" in messages[0]


@pytest.mark.parametrize("boundary", [N - 1, 3, 0])
async def test_cut_on_a_record_boundary_loses_only_what_was_cut(
    store_path: Path, six_records: Path, caplog: pytest.LogCaptureFixture, boundary: int
) -> None:
    os.truncate(six_records, BOUNDS[boundary])
    caplog.set_level(logging.WARNING, logger="aiokv")
    async with AsyncDataStore(store_path, clock=ManualClock()) as store:
        await assert_reads(store, stored(0, boundary), KEYS[boundary:])
    assert size_of(six_records) == BOUNDS[boundary]
    assert warnings_logged(caplog) == []  # nothing was torn: the file ends on a record


def _garbage(kind: str, length: int) -> bytes:
    if kind == "zeros":
        return bytes(length)
    if kind == "random":
        return random.Random(length).randbytes(length)
    if kind == "long-header":  # a plausible header promising more bytes than follow
        return encode_put(99, b"zz", b"x" * 16000, 0.0)[:length]
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "length"),
    [
        ("zeros", 1),
        ("zeros", HEADER_SIZE - 1),
        ("zeros", HEADER_SIZE),
        ("zeros", HEADER_SIZE + 3),
        ("zeros", 4096),
        ("random", 3),
        ("random", 50),
        ("random", 20_000),
        ("long-header", HEADER_SIZE + 2),
        ("long-header", 5000),
    ],
)
async def test_garbage_after_the_last_record_is_cut_off(
    store_path: Path,
    six_records: Path,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    length: int,
) -> None:
    append(six_records, _garbage(kind, length))
    caplog.set_level(logging.WARNING, logger="aiokv")
    async with AsyncDataStore(store_path, clock=ManualClock()) as store:
        assert size_of(six_records) == END
        await assert_reads(store, stored(0, N), [])
    assert size_of(six_records) == END
    messages = warnings_logged(caplog)
    assert len(messages) == 1, messages
    assert str(six_records) in messages[0]
    assert f"offset {END}" in messages[0]


async def test_writes_after_a_recovered_torn_tail_survive_another_reopen(
    store_path: Path, six_records: Path, caplog: pytest.LogCaptureFixture
) -> None:
    os.truncate(six_records, LAST_START + 10)
    caplog.set_level(logging.WARNING, logger="aiokv")
    new = {f"new{i}": value_for(100 + i) for i in range(5)}
    async with AsyncDataStore(store_path, clock=ManualClock()) as store:
        for key, value in new.items():
            await store.create(key, value)
        await store.create(KEYS[-1], {"again": True})  # the cut key may be created anew
        await store.delete(KEYS[0])
    assert len(warnings_logged(caplog)) == 1
    caplog.clear()
    expected = stored(1, N - 1) | new | {KEYS[-1]: {"again": True}}
    async with AsyncDataStore(store_path, clock=ManualClock()) as store:
        await assert_reads(store, expected, [KEYS[0]])
    assert warnings_logged(caplog) == []
    # The new records start exactly where the cut left the file: no gap, no leftover bytes.
    data = read_bytes(six_records)
    records = record_offsets(data)
    assert [offset for offset, _ in records][: N - 1] == BOUNDS[: N - 1]
    assert records[N - 1][0] == LAST_START
    assert records[-1][0] + records[-1][1].size == len(data)


async def test_torn_tail_of_the_newest_of_several_segments(
    store_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    items = [(f"key{i:03d}", {"i": i, "pad": "p" * 3000}) for i in range(80)]
    await write_keys(store_path, items, max_size=SMALL)
    files = segments(store_path)
    assert len(files) >= 3
    older = {path: path.read_bytes() for path in files[:-1]}
    newest = files[-1]
    last_offset, last = record_offsets(newest.read_bytes())[-1]
    last_key = last.key.decode()
    os.truncate(newest, last_offset + last.size - 1)
    caplog.set_level(logging.WARNING, logger="aiokv")
    async with AsyncDataStore(store_path, max_size=SMALL, clock=ManualClock()) as store:
        await assert_reads(store, {k: v for k, v in items if k != last_key}, [last_key])
    assert size_of(newest) == last_offset
    assert {path: path.read_bytes() for path in files[:-1]} == older
    assert len(warnings_logged(caplog)) == 1


# -- an interrupted segment creation -------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        *(FILE_HEADER[:n] for n in range(FILE_HEADER_SIZE)),
        bytes(1),
        bytes(FILE_HEADER_SIZE),  # the size reached the disk, the header bytes did not
        FILE_HEADER[:-1] + b"\x00",  # a full-length header with a bad checksum
        b"\xff" * 9,
    ],
)
@pytest.mark.parametrize("only_segment", [False, True], ids=["after-others", "only-one"])
async def test_newest_segment_shorter_than_its_header_opens(
    store_path: Path, content: bytes, only_segment: bool
) -> None:
    items = {} if only_segment else stored(0, N)
    await write_keys(store_path, list(items.items()))
    if only_segment:
        (store_path / segment_name(1)).unlink()
        partial = store_path / segment_name(1)
    else:
        partial = store_path / segment_name(2)
    partial.write_bytes(content)
    async with AsyncDataStore(store_path, clock=ManualClock()) as store:
        await assert_reads(store, items, ["fresh"])
        await store.create("fresh", {"after": "interrupted creation"})
    # The half-made file was removed; where it was the only segment, its number was reused
    # for a fresh one. Either way no file with a bad header is left.
    assert only_segment == partial.exists()
    if only_segment:
        assert decode_file_header(partial.read_bytes()).kind == FILE_LOG
    async with AsyncDataStore(store_path, clock=ManualClock()) as store:
        await assert_reads(store, items | {"fresh": {"after": "interrupted creation"}}, [])


# -- damage that is not a torn tail ----------------------------------------------------------


@pytest.fixture
async def many_segments(store_path: Path) -> list[tuple[str, dict[str, Any]]]:
    items = [(f"key{i:03d}", {"i": i, "pad": "p" * 2000}) for i in range(110)]  # > 200 KB
    await write_keys(store_path, items, max_size=SMALL)
    assert len(segments(store_path)) >= 4
    return items


@pytest.mark.parametrize("which", [0, -2], ids=["first-segment", "second-newest"])
@pytest.mark.parametrize(
    ("record_number", "where"),
    [(0, "crc"), (1, "seq"), (2, "key"), (3, "value"), (-1, "value-end")],
)
async def test_flipped_byte_in_an_older_segment_refuses_to_open(
    store_path: Path,
    many_segments: list[tuple[str, dict[str, Any]]],
    which: int,
    record_number: int,
    where: str,
) -> None:
    target = segments(store_path)[which]
    offset, record = record_offsets(target.read_bytes())[record_number]
    position = {
        "crc": offset + 2,
        "seq": offset + 12,
        "key": offset + HEADER_SIZE + 1,
        "value": offset + HEADER_SIZE + len(record.key) + 500,
        "value-end": offset + record.size - 1,
    }[where]
    flip_byte(target, position, 0x40)
    pattern = rf"{re.escape(str(target))}.*offset {offset}\b"
    # With its hint, the segment is not read at open: the damage shows when the record is.
    damaged_key = record.key.decode()
    async with AsyncDataStore(store_path, max_size=SMALL, clock=ManualClock()) as store:
        with pytest.raises(CorruptionError, match=pattern):
            await store.read(damaged_key)
    # Without hints every segment is scanned, and the open itself refuses.
    remove_hints(store_path)
    before = {path: path.read_bytes() for path in segments(store_path)}
    for _attempt in range(2):  # the failed open released the lock and changed nothing
        store = AsyncDataStore(store_path, max_size=SMALL, clock=ManualClock())
        with pytest.raises(CorruptionError, match=pattern):
            await store.open()
        await store.close()
    assert {path: path.read_bytes() for path in segments(store_path)} == before


async def test_bad_file_header_of_an_older_segment_refuses_to_open(
    store_path: Path, many_segments: list[tuple[str, dict[str, Any]]]
) -> None:
    target = segments(store_path)[1]
    flip_byte(target, 3)
    store = AsyncDataStore(store_path, max_size=SMALL, clock=ManualClock())
    with pytest.raises(CorruptionError, match=re.escape(str(target))):
        await store.open()
    await store.close()


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts /proc/self/fd")
async def test_refused_open_leaves_no_descriptor_for_the_collector(
    store_path: Path, many_segments: list[tuple[str, dict[str, Any]]]
) -> None:
    # The first segment is damaged and scanned (its hint is gone); the later segments' hints
    # were read (mapped) before the scan refused the open. Each map holds a descriptor,
    # which the refusal itself must give back: the collector is off, as it may well be
    # when a program retries an open in a loop.
    first = segments(store_path)[0]
    first.with_suffix(".hint").unlink()
    offset, _record = record_offsets(first.read_bytes())[1]
    flip_byte(first, offset + HEADER_SIZE + 3)
    assert len(list(store_path.glob("*.hint"))) >= 2
    fds = sorted(os.listdir("/proc/self/fd"))
    gc.disable()
    try:
        for _attempt in range(3):
            store = AsyncDataStore(store_path, max_size=SMALL, clock=ManualClock())
            with pytest.raises(CorruptionError, match=re.escape(str(first))):
                await store.open()
            await store.close()
            assert sorted(os.listdir("/proc/self/fd")) == fds
    finally:
        gc.enable()


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts /proc/self/fd")
async def test_a_hint_unusable_as_it_is_applied_is_dropped_and_its_segment_scanned(
    store_path: Path,
    many_segments: list[tuple[str, dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A hint whose checks passed may still fail as its entries are loaded (the key
    # directory's own checks). No file the store writes does that, so the failure is
    # injected for the second segment's hint: the open starts its rebuild again without that
    # hint, scans the segment, and leaves no descriptor of the hint's map behind.
    target = int(segments(store_path)[1].stem)
    apply_hint = recovery._Rebuild.apply_hint
    failed: list[int] = []

    def failing(self: Any, segment_id: int, hint: Any) -> None:
        if segment_id == target:  # each time: a hint kept after it failed would fail again
            failed.append(segment_id)
            raise BadHint("injected: an entry the key directory refuses")
        apply_hint(self, segment_id, hint)

    monkeypatch.setattr(recovery._Rebuild, "apply_hint", failing)
    fds = sorted(os.listdir("/proc/self/fd"))
    gc.disable()
    try:
        async with AsyncDataStore(store_path, max_size=SMALL, clock=ManualClock()) as store:
            await assert_reads(store, dict(many_segments), [])
    finally:
        gc.enable()
    assert failed == [target]
    assert any("injected" in message for message in warnings_logged(caplog))
    # The segment got its hint back (written from the scan) for the next open.
    assert segments(store_path)[1].with_suffix(".hint").exists()
    assert sorted(os.listdir("/proc/self/fd")) == fds


async def test_flipped_value_byte_in_open_store_makes_read_fail_not_lie(
    store_path: Path,
) -> None:
    items = {f"key{i:03d}": {"i": i, "pad": "p" * 2000} for i in range(60)}
    async with AsyncDataStore(store_path, max_size=SMALL, clock=ManualClock()) as store:
        for key, value in items.items():
            await store.create(key, value)
        files = segments(store_path)
        assert len(files) >= 2
        for target in (files[-1], files[0]):  # the newest segment, then an older one
            records = record_offsets(target.read_bytes())
            offset, record = records[1]
            key = record.key.decode()
            neighbour = records[0][1].key.decode()
            assert await store.read(key) == items[key]
            flip_byte(target, offset + HEADER_SIZE + len(record.key) + 7, 0x20)
            pattern = rf"{re.escape(str(target))}.*offset {offset}\b"
            for _ in range(2):
                with pytest.raises(CorruptionError, match=pattern):
                    await store.read(key)
            assert await store.read(neighbour) == items[neighbour]


async def test_swapped_records_of_equal_size_never_return_the_other_value(
    store_path: Path,
) -> None:
    async with AsyncDataStore(store_path, clock=ManualClock()) as store:
        await store.create("ka", {"owner": "a"})
        await store.create("kb", {"owner": "b"})
        target = segments(store_path)[-1]
        (first_offset, first), (second_offset, second) = record_offsets(target.read_bytes())
        assert first.size == second.size
        data = target.read_bytes()
        first_bytes = data[first_offset : first_offset + first.size]
        second_bytes = data[second_offset : second_offset + second.size]
        fd = os.open(target, os.O_RDWR)
        try:
            os.pwrite(fd, second_bytes, first_offset)
            os.pwrite(fd, first_bytes, second_offset)
        finally:
            os.close(fd)
        for key in ("ka", "kb"):
            with pytest.raises(CorruptionError, match=re.escape(str(target))):
                await store.read(key)


# -- the newest record wins by sequence number -----------------------------------------------


async def test_delete_in_a_later_segment_hides_a_put_in_an_earlier_one(store_path: Path) -> None:
    async with AsyncDataStore(store_path, max_size=SMALL, clock=ManualClock()) as store:
        await store.create("victim", {"v": 1})
        await store.create("reborn", {"v": 1})
        for i in range(40):
            await store.create(f"fill{i}", {"pad": "f" * 2000})
        await store.delete("victim")
        await store.delete("reborn")
        for i in range(40, 80):
            await store.create(f"fill{i}", {"pad": "f" * 2000})
        await store.create("reborn", {"v": 2})
    files = segments(store_path)
    assert len(files) >= 3
    first_keys = {record.key for _, record in record_offsets(files[0].read_bytes())}
    assert {b"victim", b"reborn"} <= first_keys
    tombstones = [
        (path, record.key)
        for path in files[1:]
        for _, record in record_offsets(path.read_bytes())
        if record.kind == KIND_DELETE
    ]
    assert {key for _, key in tombstones} == {b"victim", b"reborn"}
    async with AsyncDataStore(store_path, max_size=SMALL, clock=ManualClock()) as store:
        await assert_reads(store, {"reborn": {"v": 2}, "fill0": {"pad": "f" * 2000}}, ["victim"])


def _segment_file(path: Path, *records: bytes) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(FILE_HEADER + b"".join(records))


def _json(value: dict[str, Any]) -> bytes:
    return value_bytes(value)


async def test_sequence_number_not_file_order_decides(store_path: Path) -> None:
    # The older file holds the newer records: recovery must go by seq alone.
    _segment_file(
        store_path / segment_name(1),
        encode_put(10, b"a", _json({"a": "newest"}), 0.0),
        encode_delete(11, b"b", 1),
        encode_put(12, b"c", _json({"c": "newest"}), 0.0),
    )
    _segment_file(
        store_path / segment_name(2),
        encode_put(3, b"a", _json({"a": "stale"}), 0.0),
        encode_put(4, b"b", _json({"b": "stale"}), 0.0),
        encode_delete(5, b"c", 1),
    )
    async with AsyncDataStore(store_path, clock=ManualClock()) as store:
        await assert_reads(store, {"a": {"a": "newest"}, "c": {"c": "newest"}}, ["b"])
        # New writes must be numbered after every seq on disk, or the stale records would
        # win again after the next reopen.
        await store.delete("a")
        await store.create("b", {"b": "fresh"})
    async with AsyncDataStore(store_path, clock=ManualClock()) as store:
        await assert_reads(store, {"b": {"b": "fresh"}, "c": {"c": "newest"}}, ["a"])

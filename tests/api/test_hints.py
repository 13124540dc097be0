"""Hint files: written at roll-over, by compaction and at close; any doubt means a scan."""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import Any

import pytest
from _internals import (
    FILE_HEADER_SIZE,
    FILE_LOG,
    BadHint,
    HintBuilder,
    check_entries,
    decode_file_header,
    decode_hint,
    hint_name,
    index_of,
    iter_entries,
    split_keys,
    writer_of,
)

from aiokv import AsyncDataStore, KeyNotFoundError, ManualClock

pytestmark = pytest.mark.purepy

CAP = 2**20  # 64 KiB segments


def value(i: int) -> dict[str, Any]:
    return {"i": i, "pad": "h" * (300 + i % 50)}


async def build(path: Path) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """A store of several segments with deletes, expiries and a compaction behind it."""
    clock = ManualClock()
    live: dict[str, dict[str, Any]] = {}
    gone: set[str] = set()
    async with AsyncDataStore(path, max_size=CAP, clock=clock, compact_dead_ratio=None) as store:
        for i in range(600):
            await store.create(f"k{i}", value(i), ttl=5 if i % 10 == 0 else None)
            live[f"k{i}"] = value(i)
        for i in range(1, 600, 3):
            await store.delete(f"k{i}")
            del live[f"k{i}"]
            gone.add(f"k{i}")
        clock.advance(10)
        for i in range(0, 600, 10):
            live.pop(f"k{i}", None)
            gone.add(f"k{i}")
        await store.compact()
    return live, gone


async def snapshot(path: Path, keys: set[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    async with AsyncDataStore(path, max_size=CAP, clock=ManualClock(1_700_000_100.0)) as store:
        for key in sorted(keys):
            try:
                found[key] = await store.read(key)
            except KeyNotFoundError:
                found[key] = None
        found["<stats>"] = (await store.stats()).live_keys
    return found


def hints(path: Path) -> list[Path]:
    return sorted(path.glob("*.hint"))


async def test_every_segment_has_a_hint_after_a_clean_close(store_path: Path) -> None:
    await build(store_path)
    segments = sorted(store_path.glob("*.data"))
    assert len(segments) > 3
    assert [p.stem for p in hints(store_path)] == [p.stem for p in segments]
    for hint in hints(store_path):
        decoded = decode_hint(hint.read_bytes())
        data = store_path / f"{hint.stem}.data"
        assert decoded.segment_id == int(hint.stem)
        assert decoded.covered == data.stat().st_size


def damage_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-7])


def damage_flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def damage_other_segment(path: Path) -> None:
    # A hint renamed to another segment's number: framing and checksum are fine.
    others = [p for p in hints(path.parent) if p != path]
    path.write_bytes(others[0].read_bytes())


def damage_empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(
    "damage", [damage_truncate, damage_flip, damage_other_segment, damage_empty, Path.unlink]
)
async def test_a_bad_or_missing_hint_falls_back_to_scanning_with_identical_results(
    store_path: Path, damage: Any, caplog: pytest.LogCaptureFixture
) -> None:
    live, gone = await build(store_path)
    keys = set(live) | gone
    expected = await snapshot(store_path, keys)
    assert {k: v for k, v in expected.items() if k != "<stats>"} == {k: live.get(k) for k in keys}
    for hint in hints(store_path):
        damage(hint)
    caplog.set_level(logging.WARNING, logger="aiokv")
    assert await snapshot(store_path, keys) == expected
    if damage is not Path.unlink:
        assert any("ignoring the hint" in r.getMessage() for r in caplog.records)
    # The open that scanned wrote good hints again, for every segment.
    segments = sorted(store_path.glob("*.data"))
    assert [p.stem for p in hints(store_path)] == [p.stem for p in segments]
    for hint in hints(store_path):
        assert (
            decode_hint(hint.read_bytes()).covered
            == (store_path / f"{hint.stem}.data").stat().st_size
        )
    caplog.clear()
    assert await snapshot(store_path, keys) == expected
    assert not any("ignoring the hint" in r.getMessage() for r in caplog.records)


async def test_stale_hint_covering_more_than_the_segment_is_ignored(store_path: Path) -> None:
    live, gone = await build(store_path)
    logs = [
        p
        for p in sorted(store_path.glob("*.data"))
        if decode_file_header(p.read_bytes()[:FILE_HEADER_SIZE]).kind == FILE_LOG
    ]
    newest = logs[-1]  # the active segment: the only one a crash can tear
    expected = await snapshot(store_path, set(live) | gone)
    # The newest segment loses its last bytes after its hint was written (a torn tail).
    data = newest.read_bytes()
    newest.write_bytes(data[:-3])
    after = await snapshot(store_path, set(live) | gone)
    changed = {k for k in expected if after[k] != expected[k]}
    assert len(changed) <= 2  # the last record and the live-key count, nothing else
    assert (store_path / hint_name(int(newest.stem))).exists()  # rewritten at close


async def test_reopen_appends_after_the_hinted_prefix(store_path: Path) -> None:
    # Close writes the active segment's hint; a later session appends to the same segment,
    # and the next open takes the prefix from the hint and scans only the rest.
    async with AsyncDataStore(store_path) as store:
        for i in range(50):
            await store.create(f"a{i}", value(i))
    first = decode_hint((store_path / hint_name(1)).read_bytes())
    async with AsyncDataStore(store_path) as store:
        for i in range(50):
            await store.create(f"b{i}", value(i))
        await store.delete("a3")
    second = decode_hint((store_path / hint_name(1)).read_bytes())
    assert second.covered > first.covered
    (store_path / hint_name(1)).write_bytes((store_path / hint_name(1)).read_bytes())
    async with AsyncDataStore(store_path) as store:
        for i in range(50):
            if i != 3:
                assert await store.read(f"a{i}") == value(i)
            assert await store.read(f"b{i}") == value(i)
        with pytest.raises(KeyNotFoundError):
            await store.read("a3")


async def test_the_active_hint_goes_on_from_the_file_it_opened_with(store_path: Path) -> None:
    async with AsyncDataStore(store_path) as store:
        for i in range(30):
            await store.create(f"a{i}", value(i))
    first = decode_hint((store_path / hint_name(1)).read_bytes())
    async with AsyncDataStore(store_path) as store:
        builder = writer_of(store)._hint
        assert builder.count == first.length == 30
        assert len(builder._columns[0]) == 0  # the opened hint's entries are not held
        for i in range(20):
            await store.create(f"b{i}", value(i))
    second = decode_hint((store_path / hint_name(1)).read_bytes())
    assert second.length == 50
    assert split_keys(second) == [f"a{i}".encode() for i in range(30)] + [
        f"b{i}".encode() for i in range(20)
    ]
    assert second.covered == (store_path / "00000001.data").stat().st_size
    for column, was in zip(second.columns, first.columns, strict=True):
        assert list(column)[:30] == list(was)


@pytest.mark.parametrize("change", ["removed", "rewritten"])
async def test_a_hint_changed_under_the_store_is_not_spliced(
    store_path: Path, change: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncDataStore(store_path) as store:
        for i in range(30):
            await store.create(f"a{i}", value(i))
    async with AsyncDataStore(store_path) as store:
        for i in range(20):
            await store.create(f"b{i}", value(i))
        hint = store_path / hint_name(1)
        if change == "removed":
            hint.unlink()
        else:  # another segment's hint of the same length: its checksum is fine
            data = bytearray(hint.read_bytes())
            data[12] ^= 1
            body = bytes(data[:-4])
            hint.write_bytes(body + zlib.crc32(body).to_bytes(4, "little"))
        caplog.set_level(logging.WARNING, logger="aiokv")
    assert "its hint is not rewritten" in caplog.text
    async with AsyncDataStore(store_path) as store:  # scans what no hint covers
        for i in range(30):
            assert await store.read(f"a{i}") == value(i)
        for i in range(20):
            assert await store.read(f"b{i}") == value(i)


def test_hint_round_trips_every_field_and_any_key() -> None:
    builder = HintBuilder()
    rows = [
        (1, b"k", 32, 60, 7, 0.0, 0),
        (2, "🙂é\x00/".encode(), 92, 44, 8, 0.0, 3),
        (1, ("x" * 32).encode(), 136, 1000, 2**64 - 1, 1_700_000_123.25, 0),
    ]
    for row in rows:
        builder.add(*row)
    data = builder.encode(5, 99, 1136)
    assert len(data) == builder.size
    hint = decode_hint(data)
    assert (hint.segment_id, hint.created_seq, hint.covered, hint.length) == (5, 99, 1136, 3)
    check_entries(hint)
    keys = split_keys(hint)
    assert keys == [row[1] for row in rows]
    assert [
        (kind, key, offset, size, seq, expiry, target)
        for key, (kind, _length, offset, size, seq, expiry, target) in zip(
            keys, iter_entries(hint), strict=True
        )
    ] == rows


@pytest.mark.parametrize(
    "keys",
    [
        [b"\xc3"],  # a sequence cut short
        [b"a\xc3", b"\xa9b"],  # UTF-8 only if the two keys ran together
        [b"ok", b"\xed\xa0\x80"],  # an encoded surrogate
        [b"\x80"],  # a lone continuation byte
    ],
)
def test_hint_with_keys_that_are_not_utf8_is_refused(keys: list[bytes]) -> None:
    builder = HintBuilder()
    for position, key in enumerate(keys):
        builder.add(1, key, 32 + 100 * position, 100, position + 1, 0.0, 0)
    hint = decode_hint(builder.encode(1, 1, 32 + 100 * len(keys)))
    check_entries(hint)
    with pytest.raises(BadHint, match="not UTF-8"):
        split_keys(hint)


async def test_a_hint_whose_keys_are_not_where_its_lengths_say_is_dropped(
    store_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Checksum sound, columns plausible, but the key lengths swapped: only applying the hint
    # finds it out, part way through. The open starts again without it and scans.
    async with AsyncDataStore(store_path) as store:
        await store.create("a", value(1))
        await store.create("bcd", value(2))
    hint = store_path / hint_name(1)
    data = bytearray(hint.read_bytes())
    count = 2
    lengths = 32 + count  # the key-length column follows the kinds
    assert data[lengths : lengths + 2] == bytes([1, 3])
    data[lengths : lengths + 2] = bytes([3, 1])
    body = bytes(data[:-4])
    hint.write_bytes(body + zlib.crc32(body).to_bytes(4, "little"))
    caplog.set_level(logging.WARNING, logger="aiokv")
    async with AsyncDataStore(store_path) as store:
        assert await store.read("a") == value(1)
        assert await store.read("bcd") == value(2)
        assert len(index_of(store)) == 2
    assert "ignoring the hint" in caplog.text
    assert split_keys(decode_hint(hint.read_bytes())) == [b"a", b"bcd"]  # written anew at close

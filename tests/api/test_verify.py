"""verify(): every record, hint and index entry checked; damage reported, never raised; the
store usable meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import FrozenInstanceError
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from _internals import (
    HINT_HEADER_SIZE,
    KIND_DELETE,
    KIND_PUT,
    HintBuilder,
    PyKeyDir,
    Record,
    Segment,
    active_of,
    compactor_of,
    decode_hint,
    encode_put,
    files,
    hint_name,
    index_of,
    iter_entries,
    location,
    record,
    segments_of,
    split_keys,
    threads,
)
from _internals import verify as verify_module

from aiokv import (
    AsyncDataStore,
    CorruptionError,
    DataStore,
    KeyExistsError,
    KeyNotFoundError,
    ManualClock,
    Problem,
    StoreClosedError,
    VerifyReport,
)

pytestmark = pytest.mark.purepy

SMALL = 2**20  # 64 KiB segments: a few hundred records each


async def verify(store: AsyncDataStore) -> VerifyReport:
    """The store's verify(), as ``AsyncDataStore.verify`` makes it."""
    return await store.verify()


def value(i: int) -> dict[str, Any]:
    return {"i": i, "pad": "v" * (200 + i % 37)}


async def fill(
    store: AsyncDataStore, count: int = 1500, ttl: int | None = None, prefix: str = "k"
) -> int:
    """``count`` creates, and a delete after every fifth; returns the records written."""
    for i in range(count):
        await store.create(f"{prefix}{i}", value(i), ttl=ttl)
        if i % 5 == 4:
            await store.delete(f"{prefix}{i - 4}")
    return count + count // 5


def store_files(path: Path) -> list[Path]:
    return sorted([*path.glob("*.data"), *path.glob("*.hint")])


def sealed(store: AsyncDataStore) -> Segment:
    """A sealed segment from the middle of the store."""
    active = active_of(store)
    segments = sorted(
        (s for s in segments_of(store).values() if s is not active), key=lambda s: s.id
    )
    assert len(segments) >= 3
    return segments[len(segments) // 2]


def records(path: Path) -> list[tuple[int, Record]]:
    return list(record.scan(path.read_bytes()))


def flip(path: Path, offset: int) -> None:
    """Invert one byte of ``path``, as a bad sector or a stray write would."""
    with path.open("r+b") as file:
        file.seek(offset)
        byte = file.read(1)[0]
        file.seek(offset)
        file.write(bytes([byte ^ 0xFF]))


def places(report: VerifyReport) -> set[tuple[Path, int]]:
    return {(problem.file, problem.offset) for problem in report.problems}


def first_chunk_of(segment: Segment, func: Callable[..., Any]) -> bool:
    """Whether ``func``, about to run in a worker thread, reads ``segment``'s first chunk."""
    check = getattr(func, "__self__", None)
    return (
        isinstance(check, verify_module._SegmentCheck)
        and check.segment is segment
        and check.pos == 0
    )


@pytest.fixture
async def small(store_path: Path, clock: ManualClock) -> AsyncIterator[AsyncDataStore]:
    async with AsyncDataStore(
        store_path, max_size=SMALL, clock=clock, compact_dead_ratio=None, reaper_interval_s=3600
    ) as opened:
        yield opened


class TestReport:
    def test_a_report_is_frozen_and_ok_only_without_problems(self, tmp_path: Path) -> None:
        clean = VerifyReport(files=2, records=3, bytes_checked=400)
        assert clean.ok
        assert clean.problems == ()
        problem = Problem(tmp_path / "00000001.data", 32, "bad record: checksum mismatch")
        assert not VerifyReport(1, 1, 1, (problem,)).ok
        assert (
            str(problem)
            == f"{tmp_path / '00000001.data'}: offset 32: bad record: checksum mismatch"
        )
        with pytest.raises(FrozenInstanceError):
            clean.files = 3  # type: ignore[misc]


class TestCleanStore:
    async def test_counts_every_file_record_and_byte_of_a_clean_store(
        self, small: AsyncDataStore, store_path: Path
    ) -> None:
        written = await fill(small)
        report = await verify(small)
        assert report.ok, report.problems
        files = store_files(store_path)
        assert report.files == len(files)
        assert report.records == written
        assert report.bytes_checked == sum(f.stat().st_size for f in files)

    async def test_a_reopened_store_verifies_with_the_active_segments_hint(
        self, store_path: Path, clock: ManualClock
    ) -> None:
        async with AsyncDataStore(store_path, max_size=SMALL, clock=clock) as store:
            written = await fill(store, 700)
        async with AsyncDataStore(store_path, max_size=SMALL, clock=clock) as store:
            # Records past what the active segment's hint covers.
            for i in range(700, 720):
                await store.create(f"k{i}", value(i))
            report = await verify(store)
            files = store_files(store_path)
            assert (store_path / hint_name(active_of(store).id)).exists()
        assert report.ok, report.problems
        assert report.files == len(files)
        assert report.records == written + 20

    async def test_a_new_store_holds_one_empty_segment(self, store: AsyncDataStore) -> None:
        report = await verify(store)
        assert report == VerifyReport(files=1, records=0, bytes_checked=32)

    async def test_a_closed_store_refuses(self, small: AsyncDataStore) -> None:
        await small.close()
        with pytest.raises(StoreClosedError, match="closed"):
            await verify(small)


class TestDamage:
    async def test_a_flipped_byte_in_a_sealed_segment_is_reported_while_open(
        self, small: AsyncDataStore
    ) -> None:
        written = await fill(small)
        segment = sealed(small)
        offset, damaged = records(segment.path)[5]
        flip(segment.path, offset + damaged.size - 1)  # the last byte of its value
        report = await verify(small)
        assert places(report) <= {(segment.path, offset)}
        assert any("checksum mismatch" in p.what for p in report.problems)
        # The hint gives the next record's place, so only the damaged one goes unchecked.
        assert report.records == written - 1
        # The store goes on serving.
        await small.create("after", value(1))
        assert await small.read("after") == value(1)

    async def test_damage_made_while_closed_is_reported_after_reopen(
        self, store_path: Path, clock: ManualClock
    ) -> None:
        async with AsyncDataStore(store_path, max_size=SMALL, clock=clock) as store:
            await fill(store)
            segment = sealed(store)
            path = segment.path
            offset, damaged = next(
                (o, r) for o, r in records(path) if r.kind != KIND_DELETE and r.key != b"k0"
            )
        flip(path, offset + 20)  # inside the header: its expiry field
        # The segment's hint lets the store open without reading it; verify reads it.
        async with AsyncDataStore(store_path, max_size=SMALL, clock=clock) as store:
            report = await verify(store)
            assert (path, offset) in places(report)
            assert places(report) <= {(path, offset)}
            key = damaged.key.decode()
            with contextlib.suppress(CorruptionError, KeyNotFoundError):
                await store.read(key)  # live: the damage; deleted: absent
            await store.create("after", value(2))

    async def test_a_truncated_record_is_reported_with_its_offset(
        self, small: AsyncDataStore
    ) -> None:
        await fill(small)
        segment = sealed(small)
        offset, last = records(segment.path)[-1]
        os.truncate(segment.path, offset + last.size // 2)
        report = await verify(small)
        assert any(
            p.file == segment.path and p.offset == offset and "truncated" in p.what
            for p in report.problems
        ), report.problems
        assert {p.file for p in report.problems} <= {
            segment.path,
            segment.path.with_name(hint_name(segment.id)),
        }

    async def test_damage_in_the_active_segment_is_reported(self, small: AsyncDataStore) -> None:
        await fill(small, 300)
        active = active_of(small)
        offset, _first = records(active.path)[0]
        flip(active.path, offset + 30)  # a byte of its key
        report = await verify(small)
        assert places(report) <= {(active.path, offset)}
        assert any("checksum mismatch" in p.what for p in report.problems)

    async def test_a_damaged_file_header_is_reported(self, small: AsyncDataStore) -> None:
        await fill(small)
        segment = sealed(small)
        flip(segment.path, 17)  # its created_seq
        report = await verify(small)
        assert [(p.file, p.offset) for p in report.problems] == [(segment.path, 0)]
        assert "file header" in report.problems[0].what


class TestWrittenWrong:
    """Records whose checksum matches, but that an open would refuse or misorder."""

    @pytest.mark.parametrize(("fault", "said"), [("key", "not UTF-8"), ("seq", "sequence number")])
    async def test_a_record_written_wrong_is_reported(
        self, small: AsyncDataStore, fault: str, said: str
    ) -> None:
        await fill(small)
        segment = sealed(small)
        data = segment.path.read_bytes()
        rows = list(record.scan(data))
        offset, put = next((o, r) for o, r in rows[3:] if r.kind == KIND_PUT)
        value_bytes = data[put.value_start : offset + put.size]
        key = put.key[:-1] + b"\xff" if fault == "key" else put.key
        seq = rows[0][1].seq if fault == "seq" else put.seq
        rewritten = encode_put(seq, key, value_bytes, put.expiry, put.encoding)
        assert len(rewritten) == put.size
        with segment.path.open("r+b") as file:
            file.seek(offset)
            file.write(rewritten)
        report = await verify(small)
        hint = segment.path.with_name(hint_name(segment.id))
        assert (segment.path, offset) in places(report)
        assert any(said in p.what for p in report.problems if p.file == segment.path)
        # The hint (and the index, for a live key) now disagree with the record as well.
        assert {p.file for p in report.problems} == {segment.path, hint}
        assert places(report) - {(segment.path, offset)} == {
            (hint, HINT_HEADER_SIZE + 2 * len(rows) + 4 * rows.index((offset, put)))
        }


class TestChunks:
    """A data file is read a chunk at a time; what a chunk's end cuts is read again whole."""

    async def test_records_cut_by_the_ends_of_small_chunks_are_read_whole(
        self, small: AsyncDataStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(verify_module, "CHUNK_BYTES", 17_000)  # just over a record's most
        written = await fill(small)
        report = await verify(small)
        assert report.ok, report.problems
        assert report.records == written
        segment = sealed(small)
        offset, damaged = records(segment.path)[-3]
        flip(segment.path, offset + damaged.size - 1)
        assert places(await verify(small)) <= {(segment.path, offset)}

    @pytest.mark.skipif(
        not hasattr(AsyncDataStore, "create_many"), reason="a store without batch writes"
    )
    async def test_a_batch_longer_than_a_chunk_is_read_whole_and_checked(
        self, small: AsyncDataStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(verify_module, "CHUNK_BYTES", 17_000)
        await fill(small, 300)
        batch = {f"b{i}": value(i) for i in range(150)}  # about 40 KB of records
        await small.create_many(batch)  # type: ignore[attr-defined]
        await fill(small, 300, prefix="after")  # the batch's segment sealed
        report = await verify(small)
        assert report.ok, report.problems
        path = next(
            s.path
            for s in segments_of(small).values()
            if any(r.key == b"b75" for _o, r in records(s.path))
        )
        offset, damaged = next((o, r) for o, r in records(path) if r.key == b"b75")
        flip(path, offset + damaged.size - 1)
        report = await verify(small)
        assert {p.file for p in report.problems} == {path}
        assert (path, offset) in places(report)  # found by reading the batch record by record


class TestHints:
    async def test_a_damaged_hint_is_reported(self, small: AsyncDataStore) -> None:
        await fill(small)
        segment = sealed(small)
        hint = segment.path.with_name(hint_name(segment.id))
        flip(hint, HINT_HEADER_SIZE + 3)
        report = await verify(small)
        assert [(p.file, p.offset) for p in report.problems] == [(hint, 0)]
        assert "checksum mismatch" in report.problems[0].what

    @pytest.mark.parametrize("field", ["seq", "expiry", "key", "target"])
    async def test_a_hint_entry_that_disagrees_with_its_record_is_reported(
        self, small: AsyncDataStore, field: str
    ) -> None:
        await fill(small)
        segment = sealed(small)
        path = segment.path.with_name(hint_name(segment.id))
        decoded = decode_hint(path.read_bytes())
        keys = split_keys(decoded)
        entries = list(iter_entries(decoded))
        wrong = next(n for n, entry in enumerate(entries) if entry[0] == KIND_DELETE)
        rebuilt = HintBuilder()
        for n, (kind, _length, offset, size, seq, expiry, target) in enumerate(entries):
            key = keys[n]
            if n == wrong:  # written wrong, its checksum right: only verify can tell
                seq += field == "seq"
                expiry += 5.0 if field == "expiry" else 0.0
                key = key[:-1] + b"?" if field == "key" else key
                target += field == "target"
            rebuilt.add(kind, key, offset, size, seq, expiry, target)
        path.write_bytes(rebuilt.encode(segment.id, decoded.created_seq, decoded.covered))
        report = await verify(small)
        position = HINT_HEADER_SIZE + 2 * decoded.length + 4 * wrong
        assert [(p.file, p.offset) for p in report.problems] == [(path, position)]
        assert f"entry {wrong}, " in report.problems[0].what
        assert f" {field} " in report.problems[0].what


class TestIndex:
    async def test_an_entry_at_another_keys_record_is_reported(self, small: AsyncDataStore) -> None:
        await fill(small)
        index = index_of(small)
        target = index.find(b"k11")
        assert target is not None
        index._dir.put(b"k12", target)  # k12's entry now points at k11's record
        report = await verify(small)
        segment = segments_of(small)[target >> 48]
        assert places(report) == {(segment.path, target >> 16 & 0xFFFFFFFF)}
        assert "2 index entries" in report.problems[0].what

    async def test_an_entry_at_no_record_is_reported(self, small: AsyncDataStore) -> None:
        await fill(small)
        index = index_of(small)
        loc = index.find(b"k21")
        assert loc is not None
        index._dir.put(b"k21", loc + (1 << 16))  # one byte into the record
        report = await verify(small)
        segment = segments_of(small)[loc >> 48]
        assert places(report) == {(segment.path, (loc >> 16 & 0xFFFFFFFF) + 1)}
        assert "no sound record" in report.problems[0].what

    async def test_an_entry_into_a_missing_file_is_reported(
        self, small: AsyncDataStore, store_path: Path
    ) -> None:
        await fill(small)
        index_of(small)._dir.put(b"k31", location(9999, 32, 300))
        report = await verify(small)
        assert places(report) == {(store_path / "00009999.data", 32)}
        assert "does not have" in report.problems[0].what

    async def test_an_entry_at_a_tombstone_is_reported(self, small: AsyncDataStore) -> None:
        await fill(small)
        segment = sealed(small)
        offset, tombstone = next((o, r) for o, r in records(segment.path) if r.kind == KIND_DELETE)
        index_of(small)._dir.put(tombstone.key, location(segment.id, offset, tombstone.size))
        report = await verify(small)
        assert places(report) == {(segment.path, offset)}
        assert "tombstone" in report.problems[0].what

    async def test_a_deadline_the_record_does_not_carry_is_reported(
        self, small: AsyncDataStore
    ) -> None:
        await fill(small, ttl=60)
        index_of(small)._deadlines[b"k41"] += 1.0
        report = await verify(small)
        assert len(report.problems) == 1
        assert "deadline" in report.problems[0].what


class TestIndexByName:
    async def test_keys_whose_hashes_collide_verify_clean(self, store_path: Path) -> None:
        async with AsyncDataStore(store_path, max_size=SMALL, compact_dead_ratio=None) as store:
            # Eight hash values for all keys: most are kept by name beside the directory.
            index_of(store)._dir = PyKeyDir(os.urandom(16), hash_bits=3)
            written = await fill(store, 400)
            assert index_of(store)._named
            report = await verify(store)
        assert report.ok, report.problems
        assert report.records == written


class TestExpiry:
    async def test_expired_keys_verify_clean_before_and_after_the_reaper_and_reopen(
        self, store_path: Path, clock: ManualClock
    ) -> None:
        options: dict[str, Any] = {"max_size": SMALL, "clock": clock, "compact_dead_ratio": None}
        async with AsyncDataStore(store_path, reaper_interval_s=3600, **options) as store:
            for i in range(900):
                await store.create(f"k{i}", value(i), ttl=10 if i % 2 else 1000)
            clock.advance(60)  # half the keys expired, still indexed: the reaper has not run
            assert (await verify(store)).ok
            await store.compact()  # drops the expired keys first
            assert (await verify(store)).ok
        async with AsyncDataStore(store_path, **options) as store:
            report = await verify(store)
            assert report.ok, report.problems
            with pytest.raises(KeyNotFoundError):
                await store.read("k1")


class TestAlongsideTheStore:
    async def test_a_segment_compacted_away_while_verified_is_skipped(
        self, small: AsyncDataStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await fill(small)
        victim = sealed(small)
        hint = victim.path.with_name(hint_name(victim.id))
        files_before = store_files(victim.path.parent)

        async def run(func: Callable[..., Any], *args: Any) -> Any:
            # Just before the victim's first chunk is read, compaction retires it.
            if first_chunk_of(victim, func):
                assert await compactor_of(small).step(victim)
                assert victim.id not in segments_of(small)
            return await threads.run(func, *args)

        monkeypatch.setattr(verify_module, "_threads", SimpleNamespace(run=run))
        report = await verify(small)
        assert report.ok, report.problems
        assert victim.path not in store_files(victim.path.parent)
        # Neither it nor its hint was counted; the outputs made meanwhile were not checked.
        assert report.files == len([f for f in files_before if f not in (victim.path, hint)])

    async def test_closing_the_store_during_verify_stops_it_with_store_closed(
        self, small: AsyncDataStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await fill(small)
        victim = sealed(small)

        async def run(func: Callable[..., Any], *args: Any) -> Any:
            if first_chunk_of(victim, func):
                await small.close()
            return await threads.run(func, *args)

        monkeypatch.setattr(verify_module, "_threads", SimpleNamespace(run=run))
        with pytest.raises(StoreClosedError, match="closed"):
            await verify(small)

    async def test_other_tasks_run_while_verify_reads(self, small: AsyncDataStore) -> None:
        await fill(small)
        ticks = 0
        finished = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not finished.is_set():
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        report = await verify(small)
        finished.set()
        await task
        assert ticks >= report.files  # at least one turn per file read in a worker thread

    async def test_without_pread_or_maps_as_on_windows(
        self, store_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(files, "HAVE_PREAD", False)
        monkeypatch.delattr(os, "pread")
        monkeypatch.setattr(files, "MAP_WHOLE_FILES", False)
        async with AsyncDataStore(store_path, max_size=SMALL, compact_dead_ratio=None) as store:
            await fill(store)
            assert (await verify(store)).ok
            segment = sealed(store)
            offset, damaged = records(segment.path)[2]
            flip(segment.path, offset + damaged.size - 1)
            report = await verify(store)
        assert places(report) <= {(segment.path, offset)}
        assert report.problems

    @pytest.mark.slow
    async def test_verify_finds_nothing_wrong_while_100_tasks_write_and_compaction_runs(
        self, store_path: Path
    ) -> None:
        async with AsyncDataStore(store_path, max_size=4 * SMALL, compact_dead_ratio=0.1) as store:
            for i in range(2000):
                await store.create(f"k{i}", value(i))
            done = asyncio.Event()
            ops = [0]

            async def worker(n: int) -> None:
                rng = random.Random(n)
                while not done.is_set():
                    key = f"k{rng.randrange(2500)}"
                    roll = rng.random()
                    try:
                        if roll < 0.4:
                            await store.read(key)
                        elif roll < 0.7:
                            await store.delete(key)
                        else:
                            await store.create(key, value(n))
                    except (KeyNotFoundError, KeyExistsError):
                        pass  # another task got there first
                    ops[0] += 1

            async def compact_some() -> None:
                # A few steps, not compact(): under writes that never stop, that need not end.
                compactor = compactor_of(store)
                for segment in compactor.candidates()[:4]:
                    await compactor.step(segment)

            tasks = [asyncio.create_task(worker(n)) for n in range(100)]
            try:
                for _round in range(6):
                    before = ops[0]
                    report, _steps = await asyncio.gather(verify(store), compact_some())
                    assert report.ok, report.problems[:5]
                    assert report.records > 0
                    assert ops[0] > before, "no operation ran while verify did"
                assert compactor_of(store).last_compaction is not None
            finally:
                done.set()
                await asyncio.gather(*tasks)

    @pytest.mark.slow
    async def test_creates_are_not_held_up_by_verify_of_50k_keys(self, store_path: Path) -> None:
        async with AsyncDataStore(
            store_path, max_size=2**27, segment_max_bytes=2**21, compact_dead_ratio=None
        ) as store:
            for i in range(50_000):
                await store.create(f"k{i}", value(i))
            latencies: list[float] = []
            verifying = asyncio.ensure_future(verify(store))
            n = 0
            while not verifying.done():
                started = time.perf_counter()
                await store.create(f"new{n}", value(n))
                latencies.append(time.perf_counter() - started)
                n += 1
            report = await verifying
        assert report.ok, report.problems[:5]
        assert report.records >= 50_000
        assert len(latencies) > 10, "creates did not proceed while verify ran"
        assert max(latencies) < 0.2, f"a create waited {max(latencies) * 1000:.0f} ms"


def test_the_blocking_face_verifies(store_path: Path) -> None:
    with DataStore(store_path) as store:
        store.create_many({f"k{i}": {"i": i} for i in range(50)})
        report = store.verify()
        assert report.ok
        assert report.records == 50
    with pytest.raises(StoreClosedError):
        store.verify()

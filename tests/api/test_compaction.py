"""Compaction: dead records go, live ones stay, and a deleted key never comes back."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
from _fs import dir_bytes
from _internals import (
    FILE_COMPACTED,
    FILE_HEADER_SIZE,
    FILE_LOG,
    KIND_PUT,
    MIN_SEGMENT_MAX_BYTES,
    active_of,
    compactor_of,
    decode,
    decode_file_header,
    engine_of,
    index_of,
    segment_of,
    segments_of,
    tombstone_target,
)
from _machine import StoreMachine
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule

from aiokv import (
    AsyncDataStore,
    DataStore,
    KeyNotFoundError,
    ManualClock,
    StoreFullError,
    StoreStats,
)

pytestmark = pytest.mark.purepy

CAP = 2**20
SEGMENT = CAP // 16  # the default segment size for this cap: 64 KiB
HEADER = 28  # a record's header
TARGET = 4  # a tombstone's value: its target segment
DATA_NAME = re.compile(r"^(\d{8})\.data$")


# -- values and records ----------------------------------------------------------------


def encoded(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def blob(size: int, tag: object = 0) -> dict[str, Any]:
    """A value whose compact JSON is exactly ``size`` bytes."""
    value: dict[str, Any] = {"t": tag, "p": ""}
    value["p"] = "x" * (size - len(encoded(value)))
    assert len(encoded(value)) == size
    return value


def put_size(key: str, value: dict[str, Any]) -> int:
    return HEADER + len(key.encode()) + len(encoded(value))


def tombstone_size(key: str) -> int:
    return HEADER + len(key.encode()) + TARGET


def open_store(
    path: Path, clock: ManualClock, ratio: float | None = None, **options: Any
) -> AsyncDataStore:
    options.setdefault("reaper_interval_s", 0.01)
    return AsyncDataStore(path, max_size=CAP, compact_dead_ratio=ratio, clock=clock, **options)


async def check_contents(
    store: AsyncDataStore, live: dict[str, dict[str, Any]], gone: Iterable[str]
) -> None:
    for key, value in live.items():
        assert await store.read(key) == value, key
    for key in gone:
        try:
            value = await store.read(key)
        except KeyNotFoundError:
            continue
        pytest.fail(f"{key!r} should be gone, but reads {value!r}")


# -- the files, read independently of the store ------------------------------------------


@dataclass
class DataFile:
    id: int
    kind: int
    source: int
    size: int
    puts: list[str] = field(default_factory=list)
    tombstones: list[tuple[str, int, int]] = field(default_factory=list)  # key, target, size


def data_files(path: Path) -> dict[int, DataFile]:
    """Every ``NNNNNNNN.data`` file of the store, decoded record by record."""
    files = {}
    for name in os.listdir(path):
        match = DATA_NAME.match(name)
        if match is None:
            continue
        data = (path / name).read_bytes()
        head = decode_file_header(data)
        found = DataFile(int(match.group(1)), head.kind, head.source, len(data))
        offset = FILE_HEADER_SIZE
        while offset < len(data):
            record = decode(data, offset)
            key = record.key.decode()
            if record.kind == KIND_PUT:
                found.puts.append(key)
            else:
                found.tombstones.append((key, tombstone_target(data, record), record.size))
            offset += record.size
        files[found.id] = found
    return files


def active_file(files: dict[int, DataFile]) -> DataFile:
    """The segment being appended to: the newest log file."""
    return files[max(i for i, f in files.items() if f.kind == FILE_LOG)]


def assert_fully_compacted(path: Path, live: Iterable[str]) -> int:
    """After ``compact()``: every sealed file holds live puts and needed tombstones only.

    A tombstone is needed while its target segment, or a file compacted from it, exists.
    Returns the bytes of the tombstones in sealed files.
    """
    live = set(live)
    files = data_files(path)
    active = active_file(files)
    sealed_puts: list[str] = []
    tombstone_bytes = 0
    for f in files.values():
        if f is active:
            continue
        others = [o for o in files.values() if o is not f]
        needed = {o.id for o in others} | {o.source for o in others if o.source}
        for key in f.puts:
            assert key in live, f"file {f.id} still holds a dead put of {key!r}"
        sealed_puts += f.puts
        for key, target, size in f.tombstones:
            assert target in needed, (
                f"file {f.id} still holds the tombstone of {key!r} for segment {target}, "
                "which no longer exists"
            )
            tombstone_bytes += size
    duplicated = {key for key in sealed_puts if sealed_puts.count(key) > 1}
    assert not duplicated, f"sealed files hold several puts of {sorted(duplicated)}"
    return tombstone_bytes


def segments_on_disk(path: Path) -> int:
    return sum(1 for name in os.listdir(path) if DATA_NAME.match(name))


class Names:
    """Fresh key names: ``f0``, ``f1``, ..."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._numbers = itertools.count()

    def __next__(self) -> str:
        return f"{self._prefix}{next(self._numbers)}"


async def fill_until_roll(
    store: AsyncDataStore, live: dict[str, dict[str, Any]], names: Names, size: int = 3000
) -> list[str]:
    """Create keys until the active segment is sealed and a new one begun."""
    start = active_of(store).id
    made = []
    while active_of(store).id == start:
        key = next(names)
        value = blob(size, key)
        await store.create(key, value)
        live[key] = value
        made.append(key)
    return made


async def step_segment(store: AsyncDataStore, segment_id: int) -> int | None:
    """Compact the one segment ``segment_id``."""
    return await compactor_of(store).step(segments_of(store)[segment_id])


def compacted_from(store: AsyncDataStore, source: int) -> int:
    """The number of the file compacted from segment ``source``."""
    (found,) = [s.id for s in segments_of(store).values() if s.source == source]
    return found


# -- 1: compact() keeps what is live and drops the rest ------------------------------------


@pytest.mark.parametrize("ratio", [None, 0.3], ids=["manual", "background"])
async def test_compact_keeps_live_data_and_drops_the_rest(
    store_path: Path, ratio: float | None
) -> None:
    clock = ManualClock()
    rng = random.Random(1)
    live: dict[str, dict[str, Any]] = {}
    deleted: list[str] = []
    expiring: set[str] = set()
    tombstones_written = 0
    async with open_store(store_path, clock, ratio) as store:
        for i in range(400):
            key = f"key{i:03d}"
            value = blob(rng.randrange(300, 2500), i)
            if i % 7 == 0:
                await store.create(key, value, ttl=5)
                expiring.add(key)
            else:
                await store.create(key, value)
                live[key] = value
            if i % 3 == 0 and f"key{i - 1:03d}" in live:
                victim = f"key{i - 1:03d}"
                await store.delete(victim)
                del live[victim]
                deleted.append(victim)
                tombstones_written += tombstone_size(victim)
            if i % 20 == 19 and deleted:  # a deleted key comes back with a new value
                again = deleted.pop(0)
                live[again] = blob(rng.randrange(300, 2500), f"again{i}")
                await store.create(again, live[again])
        assert segments_on_disk(store_path) >= 8
        clock.advance(10)  # every TTL has run out
        gone = [*deleted, *expiring]

        before = await store.stats()
        reclaimed = await store.compact()
        after = await store.stats()
        assert reclaimed > 0
        if ratio is None:
            assert after.disk_bytes == before.disk_bytes - reclaimed
        await check_contents(store, live, gone)
        assert after.live_bytes >= sum(put_size(k, v) for k, v in live.items())
        assert after.disk_bytes == dir_bytes(store_path)
        assert after.segment_count == segments_on_disk(store_path)
        sealed_tombstones = assert_fully_compacted(store_path, live)
        active = active_file(data_files(store_path))
        assert after.dead_bytes <= active.size - FILE_HEADER_SIZE + sealed_tombstones
        assert after.dead_bytes <= SEGMENT + tombstones_written

    async with open_store(store_path, clock, ratio) as store:
        await check_contents(store, live, gone)
        stats = await store.stats()
        assert stats.live_keys == len(live)
        assert stats.live_bytes == sum(put_size(k, v) for k, v in live.items())
        assert stats.disk_bytes == dir_bytes(store_path)
        assert stats.dead_bytes <= SEGMENT + tombstones_written
        assert_fully_compacted(store_path, live)


# -- 2: a tombstone outlives the records it hides (basho/bitcask#82) ----------------------


async def test_tombstone_survives_partial_compaction(store_path: Path) -> None:
    clock = ManualClock()
    live: dict[str, dict[str, Any]] = {}
    names = Names("f")
    store = open_store(store_path, clock)
    await store.open()
    try:
        await store.create("k", {"v": "old"})
        k_loc = index_of(store).find(b"k")
        assert k_loc is not None
        assert segment_of(k_loc) == 1
        while active_of(store).id < 3:
            await fill_until_roll(store, live, names)
        # The tombstone's segment also holds dead records, so that compacting it rewrites it.
        await store.create("junk", blob(2000))
        await store.delete("junk")
        await store.delete("k")
        tomb_segment = active_of(store).id
        assert tomb_segment >= 3
        await fill_until_roll(store, live, names)

        # Compact only the tombstone's segment: the put it hides is still in segment 1.
        assert await step_segment(store, tomb_segment)
        assert tomb_segment not in segments_of(store)
        rewritten = compacted_from(store, tomb_segment)
        kept = data_files(store_path)[rewritten].tombstones
        assert [key for key, _target, _size in kept] == ["k"]
        assert kept[0][1] == 1
        await check_contents(store, live, ["k", "junk"])
    finally:
        await store.close()

    async with open_store(store_path, clock) as store:
        await check_contents(store, live, ["k", "junk"])
        # Then the segment with the put, and the tombstone's segment once more.
        await step_segment(store, 1)
        await step_segment(store, rewritten)
    async with open_store(store_path, clock) as store:
        await check_contents(store, live, ["k", "junk"])
        await store.compact()
        await store.compact()
    async with open_store(store_path, clock) as store:
        await check_contents(store, live, ["k", "junk"])
        assert_fully_compacted(store_path, live)


async def test_tombstone_survives_partial_compaction_of_a_recreated_key(
    store_path: Path,
) -> None:
    """k is created, deleted, created again and deleted again: neither put may come back."""
    clock = ManualClock()
    live: dict[str, dict[str, Any]] = {}
    names = Names("f")
    async with open_store(store_path, clock) as store:
        await store.create("k", {"v": "first"})
        while active_of(store).id < 3:
            await fill_until_roll(store, live, names)
        await store.create("junk1", blob(2000))
        await store.delete("junk1")
        await store.delete("k")  # tombstone 1, hiding the put in segment 1
        await store.create("k", {"v": "second"})
        second = active_of(store).id
        await fill_until_roll(store, live, names)
        await store.create("junk2", blob(2000))
        await store.delete("junk2")
        await store.delete("k")  # tombstone 2, hiding the put in segment `second`
        last = active_of(store).id
        assert second < last
        await fill_until_roll(store, live, names)

        # Newest tombstone first, then the segment with the second put and first tombstone.
        assert await step_segment(store, last)
        assert await step_segment(store, second)
        await check_contents(store, live, ["k", "junk1", "junk2"])
    async with open_store(store_path, clock) as store:
        await check_contents(store, live, ["k", "junk1", "junk2"])
        await step_segment(store, 1)
        await step_segment(store, compacted_from(store, second))
        await step_segment(store, compacted_from(store, last))
    async with open_store(store_path, clock) as store:
        await check_contents(store, live, ["k", "junk1", "junk2"])
        await store.compact()
        await store.compact()
    async with open_store(store_path, clock) as store:
        await check_contents(store, live, ["k", "junk1", "junk2"])
        assert_fully_compacted(store_path, live)


# -- 3: against a dict model --------------------------------------------------------------

MODEL_KEYS = [*(f"key{i:02d}" for i in range(27)), "é/ü", "🙂" * 8, "x" * 32]
sizes = st.integers(min_value=200, max_value=4000)
ttls = st.one_of(st.none(), st.integers(min_value=1, max_value=5))


class CompactionMachine(StoreMachine):
    """Model: key -> (value, deadline or None), with compact() and reopen among the rules."""

    ratio: ClassVar[float | None] = None

    def __init__(self) -> None:
        self.counter = 0
        super().__init__()

    def _open(self) -> AsyncDataStore:
        # The smallest segments: more of them, so more steps per example.
        store = open_store(
            self.path, self.clock, self.ratio, segment_max_bytes=MIN_SEGMENT_MAX_BYTES
        )
        self.run(store.open())
        return store

    def live_bytes(self) -> int:
        return sum(put_size(k, v) for k in self.model if (v := self.live(k)) is not None)

    def value(self, size: int) -> dict[str, Any]:
        self.counter += 1
        return blob(size, self.counter)

    def do_create(self, key: str, size: int, ttl: int | None) -> None:
        value = self.value(size)
        now = self.clock.time()
        expected = "KeyExistsError" if self.live(key) is not None else "ok"
        got, _ = self.outcome(self.opened.create(key, value, ttl))
        event(f"create: {got}")
        if got == "StoreFullError":
            assert self.live_bytes() >= CAP // 2, (
                f"StoreFullError with {self.live_bytes()} live bytes of {CAP}"
            )
            self.check_read(key)
            return
        assert got == expected, (key, got, expected)
        if got == "ok":
            self.model[key] = (value, None if ttl is None else now + ttl)

    def do_delete(self, key: str) -> None:
        expected = "ok" if self.live(key) is not None else "KeyNotFoundError"
        got, _ = self.outcome(self.opened.delete(key))
        assert got == expected, (key, got)
        if got == "ok":
            del self.model[key]

    def check_read(self, key: str) -> None:
        expected = self.live(key)
        got, value = self.outcome(self.opened.read(key))
        if expected is None:
            assert got == "KeyNotFoundError", (key, got)
        else:
            assert got == "ok", (key, got)
            assert value == expected, key

    def check_all(self) -> None:
        for key in MODEL_KEYS:
            self.check_read(key)

    @initialize(rounds=st.integers(min_value=1, max_value=4), size=sizes)
    def churn(self, rounds: int, size: int) -> None:
        """Start with some sealed segments full of dead records."""
        for _ in range(rounds):
            self.rewrite(MODEL_KEYS, size)

    @rule(key=st.sampled_from(MODEL_KEYS), size=sizes, ttl=ttls)
    def create(self, key: str, size: int, ttl: int | None) -> None:
        self.do_create(key, size, ttl)

    @rule(keys=st.lists(st.sampled_from(MODEL_KEYS), min_size=1, max_size=30), size=sizes)
    def rewrite(self, keys: list[str], size: int) -> None:
        """Delete (if live) and create again: the churn that makes dead records."""
        for key in keys:
            if self.live(key) is not None:
                self.do_delete(key)
            self.do_create(key, size, None)

    @rule(key=st.sampled_from(MODEL_KEYS))
    def read(self, key: str) -> None:
        self.check_read(key)

    @rule(key=st.sampled_from(MODEL_KEYS))
    def delete(self, key: str) -> None:
        self.do_delete(key)

    @rule(seconds=st.floats(min_value=0.0, max_value=3.0))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def compact(self) -> None:
        got, reclaimed = self.outcome(self.opened.compact())
        assert got == "ok", got
        assert reclaimed >= 0
        event(f"compact reclaimed bytes: {'some' if reclaimed else 'none'}")
        event(f"segments before compact: {min(segments_on_disk(self.path), 10)}+")
        self.check_all()
        if self.ratio is None:  # nothing else changes the files meanwhile
            stats = self.run(self.opened.stats())
            assert stats.disk_bytes == dir_bytes(self.path)

    @rule()
    def reopen(self) -> None:
        self.run(self.opened.close())
        self.store = None
        self.store = self._open()
        self.check_all()

    @invariant()
    def directory_within_cap(self) -> None:
        assert dir_bytes(self.path) <= CAP


class BackgroundCompactionMachine(CompactionMachine):
    ratio = 0.3


MACHINE_SETTINGS = settings(
    max_examples=30,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
CompactionMachine.TestCase.settings = MACHINE_SETTINGS
BackgroundCompactionMachine.TestCase.settings = MACHINE_SETTINGS
TestCompactOnDemandAgainstModel = pytest.mark.slow(CompactionMachine.TestCase)
TestBackgroundCompactionAgainstModel = pytest.mark.slow(BackgroundCompactionMachine.TestCase)


# -- 4 and 5: churn keeps the store small, and never full ---------------------------------

VALUE_1K = 1000


@pytest.mark.slow
@pytest.mark.parametrize("how", ["deleted", "expired"])
async def test_churn_stays_within_bounds(store_path: Path, how: str) -> None:
    """5,000 creates of 1 KB with at most 200 live: never full, and the disk stays near the
    live data (dead bytes under 30% of the sealed segments, plus the active segment)."""
    clock = ManualClock()
    live: dict[str, dict[str, Any]] = {}
    # Expired keys are dead to compaction whether or not the reaper has dropped them yet.
    async with open_store(store_path, clock, 0.3, reaper_interval_s=3600) as store:
        for i in range(5000):
            if how == "expired" and i % 100 == 0:
                clock.advance(2)  # every key created so far has expired
                live.clear()
            key = f"c{i:05d}"
            value = blob(VALUE_1K, i)
            await store.create(key, value, ttl=1 if how == "expired" else None)
            live[key] = value
            assert dir_bytes(store_path) <= CAP
            if how == "deleted" and len(live) > 200:
                oldest = next(iter(live))
                await store.delete(oldest)
                del live[oldest]
                assert dir_bytes(store_path) <= CAP
        for key in list(live)[-20:]:
            assert await store.read(key) == live[key]
        live_bytes = sum(put_size(k, v) for k, v in live.items())
        bound = 1.5 * live_bytes + SEGMENT + 8192
        stats = await settled_stats(store, bound)
    print(
        f"\nchurn ({how}): disk {stats.disk_bytes} B, live {live_bytes} B "
        f"(stats: {stats.live_bytes} B), disk/live {stats.disk_bytes / live_bytes:.2f}, "
        f"{stats.segment_count} segments"
    )
    assert stats.disk_bytes <= bound


async def settled_stats(store: AsyncDataStore, bound: float, within_s: float = 30.0) -> StoreStats:
    """The store's stats once its disk is within ``bound``, or after ``within_s``.

    Background compaction runs beside the writes, in threads; on a loaded machine it may
    still be a few segments behind when the last create returns. What matters is that it
    catches up, not how fast the test's loop writes.
    """
    pause = 0.05
    for _ in range(int(within_s / pause)):
        stats = await store.stats()
        if stats.disk_bytes <= bound:
            break
        await asyncio.sleep(pause)
    return stats


@pytest.mark.slow
@pytest.mark.parametrize(
    ("victims", "ratio", "value_size", "rounds"),
    [
        ("oldest", 0.3, VALUE_1K, 2000),
        ("random", 0.3, VALUE_1K, 2000),
        ("random", None, VALUE_1K, 600),
        ("random", None, 16000, 400),
    ],
)
async def test_churn_near_full_never_refuses(
    store_path: Path, victims: str, ratio: float | None, value_size: int, rounds: int
) -> None:
    """Live data at about 70% of max_size, then deletes and creates keeping it there.

    Deleting the oldest key leaves whole segments dead; deleting a random one leaves some
    dead bytes in every segment, so each step's output is most of a segment, for which
    room must have been kept. Without background compaction the store fills up to that
    room before creates make compaction run; with large values the room kept for deletes
    is small and cannot stand in for it.
    """
    clock = ManualClock()
    rng = random.Random(3)
    live: dict[str, dict[str, Any]] = {}
    async with open_store(store_path, clock, ratio) as store:
        i = 0
        while sum(put_size(k, v) for k, v in live.items()) < 0.7 * CAP:
            key = f"n{i:05d}"
            live[key] = blob(value_size, i)
            await store.create(key, live[key])
            i += 1
        count = len(live)
        for _ in range(rounds):
            victim = next(iter(live)) if victims == "oldest" else rng.choice(list(live))
            await store.delete(victim)
            del live[victim]
            assert dir_bytes(store_path) <= CAP
            key = f"n{i:05d}"
            live[key] = blob(value_size, i)
            await store.create(key, live[key])  # never StoreFullError
            i += 1
            assert dir_bytes(store_path) <= CAP
        assert len(live) == count
        stats = await store.stats()
        assert stats.live_bytes == sum(put_size(k, v) for k, v in live.items())
        await check_contents(store, live, [])
    print(
        f"\nnear full ({victims}, ratio {ratio}, {value_size} B values): {count} live keys, "
        f"{stats.live_bytes / CAP:.1%} of max_size live, disk {stats.disk_bytes / CAP:.1%}"
    )


async def test_full_means_the_live_data_does_not_fit(store_path: Path) -> None:
    clock = ManualClock()
    live: dict[str, dict[str, Any]] = {}
    async with open_store(store_path, clock, 0.3) as store:
        for i in itertools.count():
            key = f"u{i:05d}"
            value = blob(VALUE_1K, i)
            try:
                await store.create(key, value)
            except StoreFullError:
                refused = key, value
                break
            live[key] = value
            assert dir_bytes(store_path) <= CAP
        stats = await store.stats()
        usable = stats.live_bytes / CAP
        print(f"\nusable capacity: {stats.live_bytes} live bytes = {usable:.3f} of max_size")
        assert usable >= 0.75

        await store.compact()
        with pytest.raises(StoreFullError, match="full"):
            await store.create(*refused)
        with pytest.raises(KeyNotFoundError):
            await store.read(refused[0])
        await check_contents(store, live, [])
        for key in live:
            await store.delete(key)  # never StoreFullError
            assert dir_bytes(store_path) <= CAP
        await check_contents(store, {}, live)
        await store.create(*refused)  # room again once dead records can be reclaimed
        assert await store.read(refused[0]) == refused[1]


# -- 6: reads, writes and deletes while a step runs ---------------------------------------


async def prepared_store(path: Path, clock: ManualClock) -> tuple[AsyncDataStore, dict[str, Any]]:
    """A store whose segment 1 holds "k", live fillers and dead records; only it is sealed."""
    store = open_store(path, clock)
    await store.open()
    live: dict[str, dict[str, Any]] = {}
    names = Names("f")
    await store.create("k", {"v": "k"})
    made = await fill_until_roll(store, live, names, size=800)
    for key in made[1:-1:3]:  # dead records in segment 1; tombstones in segment 2
        await store.delete(key)
        del live[key]
    assert len(segments_of(store)) == 2
    return store, live


async def test_reads_and_writes_during_compaction_see_the_right_data(
    store_path: Path,
) -> None:
    clock = ManualClock()
    live: dict[str, dict[str, Any]] = {}
    names = Names("f")
    async with open_store(store_path, clock) as store:
        for _ in range(6):
            made = await fill_until_roll(store, live, names, size=700)
            for key in made[::2]:
                await store.delete(key)
                del live[key]
        stepping = compactor_of(store)._step_lock
        sealed_keys = list(live)
        logs = set(segments_of(store))
        compacting = asyncio.ensure_future(store.compact())
        rounds = during_a_step = from_a_copy = 0
        written: dict[str, dict[str, Any]] = {}
        while not compacting.done():
            for key in sealed_keys:
                during_a_step += stepping.locked()
                loc = index_of(store).find(key.encode())
                from_a_copy += loc is not None and segment_of(loc) not in logs
                assert await store.read(key) == live[key], key
            key = f"w{rounds}"
            written[key] = blob(500, key)
            await store.create(key, written[key])
            rounds += 1
            await asyncio.sleep(0)
        assert await compacting > 0
        assert during_a_step > 0, "no read overlapped a compaction step"
        assert from_a_copy > 0, "no read was served from a compacted file"
        live.update(written)
        await check_contents(store, live, [])
    async with open_store(store_path, clock) as store:
        await check_contents(store, live, [])


async def roll_and_compact_twice(store: AsyncDataStore, live: dict[str, Any]) -> None:
    """Seal the segment holding the newest tombstones, then compact everything twice."""
    await fill_until_roll(store, live, Names("roll"), size=2500)
    await store.compact()
    await store.compact()


# How far a step of segment 1 had got, in order.
PHASES = (
    "not begun",
    "reading and choosing",
    "output being written",
    "switched, source being removed",
    "after the step",
)


async def race_delete_with_step(path: Path, how: str, wait: Any) -> tuple[str, int]:
    """Start compact() (or one step of segment 1), let ``wait`` pick the moment, delete "k",
    and check it stays gone: after the step, after reopening, after compacting the
    tombstone's segment alone, and after compacting everything. Returns how far the step
    had got when "k" was deleted (one of PHASES), and the segment its tombstone names.

    compact() goes on to compact the step's output too, which drops a copy of "k" made
    before the delete; a single step leaves that copy for the tombstone to hide.
    """
    clock = ManualClock()
    store, live = await prepared_store(path, clock)
    try:
        space = engine_of(store).shared.space
        stepping = compactor_of(store)._step_lock
        if how == "compact":
            compacting = asyncio.ensure_future(store.compact())
        else:
            compacting = asyncio.ensure_future(step_segment(store, 1))
        await wait(store, compacting)
        if compacting.done():
            phase = "after the step"
        elif 1 not in segments_of(store):
            phase = "switched, source being removed"
        elif space.compaction_bytes:
            phase = "output being written"
        elif stepping.locked():
            phase = "reading and choosing"
        else:
            phase = "not begun"
        await store.delete("k")
        tomb_segment = active_of(store).id
        await compacting
        await check_contents(store, live, ["k"])
        tombstones = data_files(path)[tomb_segment].tombstones
        (target,) = [target for key, target, _size in tombstones if key == "k"]
    finally:
        await store.close()
    async with open_store(path, clock) as store:
        await check_contents(store, live, ["k"])
        await fill_until_roll(store, live, Names("seal"), size=2500)
        await step_segment(store, tomb_segment)
    async with open_store(path, clock) as store:
        await check_contents(store, live, ["k"])
        await roll_and_compact_twice(store, live)
        await check_contents(store, live, ["k"])
    async with open_store(path, clock) as store:
        await check_contents(store, live, ["k"])
        assert_fully_compacted(path, live)
    return phase, target


def assert_tombstone_fits_the_phase(phase: str, target: int) -> None:
    """Once the step has switched, the index points at the copy of "k", never again at
    segment 1: a delete made from then on names the file holding the copy. (One made
    before names segment 1, unless the switch got in before the writer planned it.)"""
    assert phase in PHASES
    if PHASES.index(phase) >= PHASES.index("switched, source being removed"):
        assert target != 1, (phase, target)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["compact", "step"])
@pytest.mark.parametrize("sleeps", [0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48])
async def test_key_deleted_during_a_step_stays_deleted(
    tmp_path: Path, sleeps: int, how: str
) -> None:
    """The delete made a number of event-loop turns after the step was started: moments
    between the phases that the test below stops at one by one. Which phase a number of
    turns lands in depends on how fast the worker threads read and write (12 turns is
    "reading and choosing" in one run and "output being written" in the next), so a case
    asserts what holds wherever it lands: "k" stays deleted, and its tombstone fits."""

    async def wait(_store: AsyncDataStore, _compacting: asyncio.Future[Any]) -> None:
        for _ in range(sleeps):
            await asyncio.sleep(0)

    phase, target = await race_delete_with_step(tmp_path / "store", how, wait)
    assert_tombstone_fits_the_phase(phase, target)


async def wait_for(condition: Any) -> None:
    """Yield to other tasks until ``condition()`` holds."""
    for _ in range(1_000_000):
        if condition():
            return
        await asyncio.sleep(0)
    pytest.fail("the condition never held")


@pytest.mark.parametrize("how", ["compact", "step"])
@pytest.mark.parametrize("phase", PHASES)
async def test_key_deleted_in_each_phase_of_a_step_stays_deleted(
    tmp_path: Path, phase: str, how: str
) -> None:
    async def wait(store: AsyncDataStore, compacting: asyncio.Future[Any]) -> None:
        space = engine_of(store).shared.space
        stepping = compactor_of(store)._step_lock
        if phase == "not begun":
            return  # the step's task is scheduled, not yet run
        if phase == "reading and choosing":
            # The step holds its lock from its first await, a read in a worker thread.
            await wait_for(stepping.locked)
        elif phase == "output being written":
            # Room for the output is claimed while it is written and fsynced.
            await wait_for(lambda: space.compaction_bytes > 0)
        elif phase == "switched, source being removed":
            # The index points at the output; the source is being unlinked.
            await wait_for(lambda: 1 not in segments_of(store))
        else:
            await wait_for(compacting.done)

    seen, target = await race_delete_with_step(tmp_path / "store", how, wait)
    assert seen == phase
    assert_tombstone_fits_the_phase(phase, target)


async def test_delete_in_flight_across_two_steps_stays_deleted(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delete whose write is slow (here, its fsync) while steps move its key.

    The tombstone names the segment its key was in when the delete was planned. Had the
    record been moved on twice before the delete took effect, the file holding the last copy
    would descend from that segment only through a file that is gone, and compacting the
    tombstone's segment would drop it while that copy exists. A step therefore waits for
    the delete before moving the index to its copies.
    """
    clock = ManualClock()
    live: dict[str, dict[str, Any]] = {}
    names = Names("f")
    gate = threading.Event()
    store = open_store(store_path, clock, durability="fsync")
    await store.open()
    try:
        await store.create("k", {"v": "k"})
        await store.create("soon", {"v": "expires"}, ttl=10)
        await store.create("junk", blob(2000))
        await fill_until_roll(store, live, names)
        await store.delete("junk")  # a dead record in segment 1

        entered = threading.Event()
        held = active_of(store).fd
        real_fsync = os.fsync

        def slow_fsync(fd: int) -> None:
            if fd == held:
                entered.set()
                assert gate.wait(10)
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", slow_fsync)
        deleting = asyncio.ensure_future(store.delete("k"))
        await wait_for(entered.is_set)  # the tombstone is written, its fsync held
        # The step copies k, but may not move the index to the copy until the delete has
        # taken effect: it waits for the writer's batch.
        stepping = asyncio.ensure_future(step_segment(store, 1))
        await asyncio.sleep(0.05)
        assert not stepping.done()
        gate.set()
        await deleting
        assert await stepping  # k (now dead) and "soon" copied to a new file
        clock.advance(20)  # "soon" expires: the new file now holds a dead record
        assert await step_segment(store, compacted_from(store, 1))
        monkeypatch.setattr(os, "fsync", real_fsync)
        await check_contents(store, live, ["k", "soon"])

        tomb_segment = active_of(store).id
        await fill_until_roll(store, live, names)
        await step_segment(store, tomb_segment)
        await check_contents(store, live, ["k", "soon"])
    finally:
        gate.set()
        await store.close()
    async with open_store(store_path, clock) as store:
        await check_contents(store, live, ["k", "soon"])
        await store.compact()
        await store.compact()
    async with open_store(store_path, clock) as store:
        await check_contents(store, live, ["k", "soon"])
        assert_fully_compacted(store_path, live)


# -- 7 and 8: stats() -------------------------------------------------------------------

STATS_KEYS = {
    "a": {},
    "é": {"x": 1},
    "🙂" * 8: {"name": "Ada", "tags": ["x", "ü"]},
    "k" * 32: blob(16384),
    "n": {"nested": {"deep": [1, 2.5, None, True]}},
}


async def test_stats_fields(store_path: Path) -> None:
    clock = ManualClock(1_750_000_000.0)
    async with open_store(store_path, clock) as store:
        empty = await store.stats()
        assert isinstance(empty, StoreStats)
        assert (empty.live_keys, empty.live_bytes, empty.dead_bytes) == (0, 0, 0)
        assert empty.segment_count == 1 == segments_on_disk(store_path)
        assert empty.disk_bytes == dir_bytes(store_path)
        assert empty.last_compaction is None

        for key, value in STATS_KEYS.items():
            await store.create(key, value)
        stats = await store.stats()
        assert stats.live_keys == len(STATS_KEYS)
        assert stats.live_bytes == sum(put_size(k, v) for k, v in STATS_KEYS.items())
        assert stats.dead_bytes == 0
        assert stats.disk_bytes == dir_bytes(store_path)

        await store.delete("é")
        stats = await store.stats()
        assert stats.live_keys == len(STATS_KEYS) - 1
        assert stats.live_bytes == sum(put_size(k, v) for k, v in STATS_KEYS.items() if k != "é")
        assert stats.dead_bytes == put_size("é", STATS_KEYS["é"]) + tombstone_size("é")
        assert stats.disk_bytes == dir_bytes(store_path)

        live = {k: v for k, v in STATS_KEYS.items() if k != "é"}
        names = Names("f")
        for _ in range(3):
            await fill_until_roll(store, live, names)
        stats = await store.stats()
        assert stats.segment_count == 4 == segments_on_disk(store_path)
        assert stats.live_bytes == sum(put_size(k, v) for k, v in live.items())
        assert stats.last_compaction is None

        clock.set(1_750_000_123.25)
        assert await store.compact() > 0
        stats = await store.stats()
        assert stats.last_compaction == 1_750_000_123.25
        assert stats.segment_count == segments_on_disk(store_path)
        assert stats.disk_bytes == dir_bytes(store_path)
        assert stats.live_keys == len(live)
    async with open_store(store_path, clock) as store:
        stats = await store.stats()
        assert stats.last_compaction is None  # since this open
        assert stats.live_bytes == sum(put_size(k, v) for k, v in live.items())


def test_data_store_compact_and_stats(store_path: Path) -> None:
    clock = ManualClock()
    with DataStore(store_path, max_size=CAP, compact_dead_ratio=None, clock=clock) as store:
        live = {}
        i = 0
        while store.stats().segment_count < 3:
            live[f"d{i}"] = blob(3000, i)
            store.create(f"d{i}", live[f"d{i}"])
            i += 1
        for key in list(live)[:10]:
            store.delete(key)
            del live[key]
        before = store.stats()
        assert isinstance(before, StoreStats)
        assert before.dead_bytes > 10 * 3000
        reclaimed = store.compact()
        assert reclaimed > 0
        after = store.stats()
        assert after.disk_bytes == before.disk_bytes - reclaimed == dir_bytes(store_path)
        assert after.dead_bytes < before.dead_bytes
        assert after.live_bytes == before.live_bytes == sum(put_size(k, v) for k, v in live.items())
        assert after.last_compaction == clock.time()
        for key, value in live.items():
            assert store.read(key) == value
    assert_fully_compacted(store_path, live)


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_output_pieces_hold_exactly_the_kept_runs(chunk: int) -> None:
    """Compaction writes its output in pieces of about a chunk: together they are the kept
    runs, in order, and no piece of gathered runs is much larger than the chunk."""
    from _internals import _pieces

    data = bytes(range(256)) * 8
    runs = [(0, 3), (10, 10 + 100), (200, 205), (300, 1300), (1400, 1401), (2000, 2048)]
    pieces = [bytes(piece) for piece in _pieces(memoryview(data), runs, chunk)]
    assert b"".join(pieces) == b"".join(data[start:end] for start, end in runs)
    longest_run = max(end - start for start, end in runs)
    assert all(len(piece) < chunk + longest_run for piece in pieces)
    if chunk >= 64:
        assert len(pieces) < len(runs)  # small runs were gathered


async def test_a_cancelled_compaction_finishes_its_step_or_leaves_nothing(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A step's copy is written in a worker thread, which a cancel cannot stop: the step runs
    # to its end before the cancel is raised, so no published copy is left unswitched (a
    # file max_size would not count, whose source a later step would copy a second time).
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        time.sleep(0.02)
        real_fsync(fd)

    options: dict[str, Any] = {"segment_max_bytes": 64 * 1024, "compact_dead_ratio": None}
    async with AsyncDataStore(store_path, **options) as store:
        await store.create_many({f"k{i}": {"pad": "x" * 300} for i in range(1500)})
        for start in range(0, 1500, 50):
            await store.create_many({f"m{i}": {"pad": "y" * 300} for i in range(start, start + 50)})
        await store.delete_many([f"m{i}" for i in range(0, 1500, 2)])
        monkeypatch.setattr(os, "fsync", slow_fsync)
        for timeout in (0.01, 0.05, 0.1):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(store.compact(), timeout)
        monkeypatch.setattr(os, "fsync", real_fsync)
        assert (await store.stats()).disk_bytes == dir_bytes(store_path)
        await store.compact()
        assert (await store.stats()).disk_bytes == dir_bytes(store_path)
    sources = [compacted_source(path) for path in store_path.glob("*.data")]
    sources = [source for source in sources if source]
    assert len(sources) == len(set(sources)), sources  # no source copied twice
    async with AsyncDataStore(store_path, **options) as store:
        assert len(await store.read_many([f"m{i}" for i in range(1500)])) == 750


def compacted_source(path: Path) -> int:
    """The segment a compacted file was made from; 0 for a log segment."""
    header = decode_file_header(path.read_bytes()[:FILE_HEADER_SIZE])
    return header.source if header.kind == FILE_COMPACTED else 0

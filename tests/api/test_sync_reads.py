"""``DataStore.read`` runs in the calling thread: it must stay exact while the loop thread
writes, compacts away segments and closes the store under it."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _internals import MIN_SEGMENT_MAX_BYTES, engine_of, index_of, location, offset_of, size_of

from aiokv import CorruptionError, DataStore, KeyNotFoundError, ManualClock, StoreClosedError

pytestmark = pytest.mark.purepy


def stable_value(i: int) -> dict[str, Any]:
    return {"stable": i, "pad": "s" * (i % 97)}


def churn_value(i: int) -> dict[str, Any]:
    return {"churn": i, "pad": "c" * 300}


@pytest.fixture
def eager_thread_switches() -> Iterator[None]:
    """Make the interpreter switch threads every few bytecodes, not every 5 ms, so that a
    reader is often stopped between two steps of a read while the loop thread runs."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@pytest.mark.slow
@pytest.mark.usefixtures("eager_thread_switches")
def test_reads_in_many_threads_stay_exact_while_compaction_removes_segments(
    store_path: Path,
) -> None:
    store = DataStore(
        store_path,
        segment_max_bytes=MIN_SEGMENT_MAX_BYTES,
        compact_dead_ratio=0.2,
    )
    stable = 300
    for i in range(stable):
        store.create(f"s{i}", stable_value(i))
    stop = threading.Event()
    problems: list[str] = []
    reads = [0] * 4

    def reader(worker: int) -> None:
        i = worker
        while not stop.is_set():
            key = i % stable
            try:
                value = store.read(f"s{key}")
            except Exception as exc:  # any error is a failure here
                problems.append(f"s{key}: {exc!r}")
                return
            if value != stable_value(key):
                problems.append(f"s{key}: read {value!r}")
                return
            reads[worker] += 1
            i += 7

    threads = [threading.Thread(target=reader, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    segments_removed = 0
    try:
        seen = set(os.listdir(store_path))
        # Churn: every round writes a segment's worth of short-lived keys and deletes them,
        # so the stable keys' segments fill with dead bytes and get compacted (and removed)
        # again and again while the readers run.
        for round_ in range(12):
            keys = [f"c{round_}-{i}" for i in range(120)]
            for n, key in enumerate(keys):
                store.create(key, churn_value(n))
            for key in keys:
                store.delete(key)
            store.compact()
            now = set(os.listdir(store_path))
            segments_removed += len({n for n in seen - now if n.endswith(".data")})
            seen = now
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    try:
        assert problems == []
        assert min(reads) > 0
        assert segments_removed >= 10  # the readers really met removed segments
        for i in range(stable):
            assert store.read(f"s{i}") == stable_value(i)
    finally:
        store.close()


def test_reads_racing_close_either_answer_or_refuse(store_path: Path) -> None:
    store = DataStore(store_path)
    for i in range(50):
        store.create(f"k{i}", {"i": i})
    outcomes: list[str] = []
    started = threading.Barrier(3)

    def reader() -> None:
        started.wait()
        i = 0
        while True:
            try:
                value = store.read(f"k{i % 50}")
            except StoreClosedError:
                outcomes.append("closed")
                return
            except Exception as exc:
                outcomes.append(f"error {exc!r}")
                return
            if value != {"i": i % 50}:
                outcomes.append(f"wrong {value!r}")
                return
            i += 1

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    started.wait()
    store.close()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    assert outcomes == ["closed", "closed"]


def test_read_in_thread_sees_a_create_acknowledged_in_another(store_path: Path) -> None:
    with DataStore(store_path) as store:
        done = threading.Event()
        seen: list[Any] = []

        def writer() -> None:
            store.create("k", {"v": 1})
            done.set()

        thread = threading.Thread(target=writer)
        thread.start()
        assert done.wait(30)
        seen.append(store.read("k"))
        thread.join()
        assert seen == [{"v": 1}]


def test_record_deadline_is_checked_even_when_the_index_misses_it(store_path: Path) -> None:
    clock = ManualClock()
    with DataStore(store_path, clock=clock) as store:
        store.create("k", {"v": 1}, ttl=10)
        clock.advance(10)
        # What a reader can see in the instant a key is re-created: a location whose
        # deadline has already been replaced. The record's own deadline still rules.
        index_of(store._store)._deadlines.clear()
        with pytest.raises(KeyNotFoundError):
            store.read("k")


def test_a_record_that_is_not_the_indexed_one_is_corruption(store_path: Path) -> None:
    with DataStore(store_path) as store:
        store.create("a", {"v": 1})
        store.create("b", {"v": 2})
        index = index_of(store._store)
        index._dir.put(b"a", index._dir.get(b"b"))  # the index points at b's record
        with pytest.raises(CorruptionError, match="not the one indexed"):
            store.read("a")


class _StaleOnce:
    """An index whose first lookup answers with a location in a segment that is gone: what a
    reader sees when compaction moves a record and removes its segment in between."""

    def __init__(self, index: Any) -> None:
        self._index = index
        self.stale_answers = 0

    def locate(self, key: bytes, clock: Any) -> int | None:
        loc = self._index.locate(key, clock)
        if loc is not None and not self.stale_answers:
            self.stale_answers += 1
            return location(10**6, offset_of(loc), size_of(loc))
        return loc


def test_read_looks_again_when_its_segment_was_removed_meanwhile(store_path: Path) -> None:
    with DataStore(store_path) as store:
        store.create("k", {"v": 1})
        reader = engine_of(store._store).reader
        real = reader._index
        stale = _StaleOnce(real)
        reader._index = stale  # type: ignore[assignment]
        try:
            assert store.read("k") == {"v": 1}
        finally:
            reader._index = real
        assert stale.stale_answers == 1

"""Open and close a store thousands of times, and roll segments over with faults injected:
descriptors and threads come back to where they were, and nothing is left for the garbage
collector to warn about (pytest turns any ResourceWarning into an error here)."""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import threading
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from _internals import MIN_SEGMENT_MAX_BYTES, FileSystem
from _internals import files as _files

from aiokv import AsyncDataStore, DataStore, DataStoreError, KeyNotFoundError, StoreFullError

pytestmark = pytest.mark.slow

CYCLES = 500  # CI size; --soak 20 makes the 10,000 of the long run
ROLLS = 100  # CI size; --soak 10 makes 1,000


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts /proc/self/fd")
async def test_open_close_cycles_leak_nothing(store_path: Path, soak: int) -> None:
    async with AsyncDataStore(store_path) as store:
        for i in range(50):
            await store.create(f"k{i}", {"i": i})
    # The first cycles start anyio's worker threads; the rest must add nothing.
    for _ in range(5):
        async with AsyncDataStore(store_path) as store:
            await store.read("k1")
    fds, threads = open_fds(), set(threading.enumerate())
    for cycle in range(CYCLES * soak):
        async with AsyncDataStore(store_path) as store:
            assert await store.read(f"k{cycle % 50}") == {"i": cycle % 50}
    gc.collect()
    assert open_fds() == fds
    assert set(threading.enumerate()) <= threads


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts /proc/self/fd")
def test_datastore_cycles_leave_no_thread_or_descriptor(store_path: Path, soak: int) -> None:
    with DataStore(store_path) as store:
        store.create("k", {"v": 1})
    # Compared as sets, not counts: a thread an earlier test left (an idle worker) may end
    # meanwhile, which is no leak of these cycles.
    fds, threads = open_fds(), set(threading.enumerate())
    for _ in range(CYCLES // 5 * soak):
        with DataStore(store_path) as store:
            assert store.read("k") == {"v": 1}
    gc.collect()
    assert open_fds() == fds
    assert set(threading.enumerate()) <= threads


class FlakyFileSystem(FileSystem):
    """Fails every ``every``-th write with ENOSPC and every ``every``-th directory fsync with
    EIO, and counts the segments created."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.writes = 0
        self.dir_syncs = 0
        self.segments = 0

    def write(self, fd: int, data: Any) -> int:
        self.writes += 1
        if self.writes % self.every == 0:
            raise OSError(errno.ENOSPC, "injected: no space left")
        return super().write(fd, data)

    def sync_directory(self, path: Path) -> None:
        self.dir_syncs += 1
        if self.dir_syncs % self.every == 0:
            raise OSError(errno.EIO, "injected: directory fsync failed")
        super().sync_directory(path)

    def create(self, path: Path) -> int:
        if path.name.endswith(".data"):
            self.segments += 1
        return super().create(path)


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts /proc/self/fd")
async def test_roll_overs_with_faults_leak_nothing(store_path: Path, soak: int) -> None:
    async with AsyncDataStore(store_path) as store:
        await store.create("warm", {"up": True})
    fds = open_fds()
    flaky = FlakyFileSystem(every=7)
    real = _files.fs
    _files.fs = flaky
    failures = reopens = i = 0
    kept: deque[str] = deque()  # a third of the keys live on for a while, then go
    stalled = 0  # opens in a row that rolled no segment over
    try:
        while flaky.segments < ROLLS * soak:
            # The loop ends only by rolling over; a store that stopped doing so would spin.
            before = flaky.segments
            store = AsyncDataStore(
                store_path,
                segment_max_bytes=MIN_SEGMENT_MAX_BYTES,
                max_size=2**22,
                compact_dead_ratio=0.2,
            )
            try:
                await store.open()
            except DataStoreError:
                failures += 1
                continue
            reopens += 1
            try:
                # Until a fatal failure: then close, and open again (the store's rule).
                for _ in range(200):
                    i += 1
                    try:
                        await store.create(f"k{i}", {"pad": "x" * 4000})
                        if i % 3:
                            await store.delete(f"k{i}")
                        else:
                            kept.append(f"k{i}")
                        while len(kept) > 20:  # a failed delete is tried again later
                            with contextlib.suppress(KeyNotFoundError):  # it did happen
                                await store.delete(kept[0])
                            kept.popleft()
                    except StoreFullError:
                        failures += 1
                    except DataStoreError:
                        failures += 1
                        break
            finally:
                try:
                    await store.close()
                except DataStoreError:
                    failures += 1
            stalled = stalled + 1 if flaky.segments == before else 0
            assert stalled < 50, f"no roll-over in 50 opens, at {flaky.segments} segments"
    finally:
        _files.fs = real
    gc.collect()
    print(f"\n{flaky.segments} roll-overs, {reopens} opens, {failures} injected failures met")
    assert open_fds() == fds
    assert failures > 10
    assert reopens > 1
    async with AsyncDataStore(store_path) as store:  # and the store is sound after it all
        assert await store.read("warm") == {"up": True}

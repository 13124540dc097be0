"""Reads through memory maps: written bytes are read from a map of the segment, the part
written since the last map with ``pread``, and a store whose maps fail reads all the same."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from _internals import FILE_HEADER_SIZE, REMAP_BYTES, FileSystem, active_of
from _internals import files as _files
from _internals import threads as _threads

from aiokv import AsyncDataStore, CorruptionError, DataStore


def value_for(i: int) -> dict[str, Any]:
    return {"i": i, "pad": "m" * (i * 31 % 900)}


async def test_reads_on_both_sides_of_the_active_segments_map(store_path: Path) -> None:
    async with AsyncDataStore(store_path) as store:
        active = active_of(store)
        i = 0
        while active.mapped_size == FILE_HEADER_SIZE:  # until the first map of the active
            await store.create(f"k{i}", value_for(i))
            i += 1
        assert active.mapped_size >= REMAP_BYTES
        for j in range(i, i + 50):  # written after the map: read with pread
            await store.create(f"k{j}", value_for(j))
        assert active.size > active.mapped_size
        for j in range(i + 50):
            assert await store.read(f"k{j}") == value_for(j)
    async with AsyncDataStore(store_path) as store:  # mapped whole at open
        assert active_of(store).mapped_size == active_of(store).size
        for j in range(i + 50):
            assert await store.read(f"k{j}") == value_for(j)


class NoMaps(FileSystem):
    def __init__(self) -> None:
        self.refused = 0

    def map(self, fd: int, length: int) -> Any:
        self.refused += 1
        raise OSError(12, "injected: cannot allocate memory")


@pytest.fixture
def no_maps() -> Any:
    real = _files.fs
    fs = _files.fs = NoMaps()
    try:
        yield fs
    finally:
        _files.fs = real


async def test_a_store_whose_maps_fail_reads_with_pread(store_path: Path, no_maps: NoMaps) -> None:
    async with AsyncDataStore(store_path, segment_max_bytes=2**16) as store:
        for i in range(400):
            await store.create(f"k{i}", value_for(i))
        for i in range(400):
            assert await store.read(f"k{i}") == value_for(i)
    async with AsyncDataStore(store_path, segment_max_bytes=2**16) as store:
        for i in range(400):
            assert await store.read(f"k{i}") == value_for(i)
    assert no_maps.refused > 5


def test_damage_in_a_mapped_segment_is_corruption_in_every_thread(store_path: Path) -> None:
    with DataStore(store_path) as store:
        store.create("a", {"v": "x" * 100})
        store.create("b", {"v": "y" * 100})
    data = store_path / "00000001.data"
    raw = bytearray(data.read_bytes())
    raw[raw.index(b"y" * 100) + 10] ^= 0x01  # inside b's value, once the store is closed
    data.write_bytes(bytes(raw))
    with DataStore(store_path) as store:
        assert store.read("a") == {"v": "x" * 100}
        with pytest.raises(CorruptionError):
            store.read("b")


class CountedPreads(FileSystem):
    def __init__(self) -> None:
        self.preads = 0

    def pread(self, fd: int, length: int, offset: int) -> bytes:
        self.preads += 1
        return super().pread(fd, length, offset)


async def test_reads_on_the_loop_use_pread_while_a_worker_thread_is_busy(store_path: Path) -> None:
    """Guards against starving the store's own worker threads: a loop reading from maps
    without pause keeps the GIL, and a compaction in a thread then waited seconds after each
    system call. While a store call runs in a thread, loop reads go through pread."""
    real = _files.fs
    fs = _files.fs = CountedPreads()
    try:
        async with AsyncDataStore(store_path) as store:
            for i in range(100):
                await store.create(f"k{i}", value_for(i))
        async with AsyncDataStore(store_path) as store:  # every segment mapped at open
            before = fs.preads
            for i in range(100):
                assert await store.read(f"k{i}") == value_for(i)
            assert fs.preads == before  # all from the map

            started, release = threading.Event(), threading.Event()

            def busy() -> None:
                started.set()
                release.wait(10)

            async with anyio.create_task_group() as group:
                group.start_soon(_threads.run, busy)
                await anyio.to_thread.run_sync(started.wait, 10)
                assert _threads.in_flight.busy == 1
                for i in range(100):
                    assert await store.read(f"k{i}") == value_for(i)
                assert fs.preads == before + 100
                release.set()
            assert _threads.in_flight.busy == 0
            for i in range(100):
                assert await store.read(f"k{i}") == value_for(i)
            assert fs.preads == before + 100
    finally:
        _files.fs = real

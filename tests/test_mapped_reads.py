"""Reads through memory maps: written bytes are read from a map of the segment, the part
written since the last map with ``pread``, and a store whose maps fail reads all the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aiokv import AsyncDataStore, CorruptionError, DataStore, _files
from aiokv._files import FileSystem
from aiokv._record import FILE_HEADER_SIZE
from aiokv._writer import REMAP_BYTES


def value_for(i: int) -> dict[str, Any]:
    return {"i": i, "pad": "m" * (i * 31 % 900)}


async def test_reads_on_both_sides_of_the_active_segments_map(store_path: Path) -> None:
    async with AsyncDataStore(store_path) as store:
        assert store._writer is not None
        active = store._writer.active
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
        assert store._writer is not None
        assert store._writer.active.mapped_size == store._writer.active.size
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

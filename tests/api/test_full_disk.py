"""A real full disk: a 3 MiB tmpfs, ``max_size`` far above it.

Creates stop with StoreFullError and no acknowledged write is lost; the store still closes
cleanly when only its hint (an optimisation) cannot be written, and a store reopened on the
still-full disk can be read and closed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from _tmpfs import fill, mounted_tmpfs

from aiokv import AsyncDataStore, StoreFullError

DISK = 3 * 2**20
VALUE = {"text": "x" * 900, "n": list(range(20))}


async def create_until_full(store: AsyncDataStore) -> list[str]:
    """Create keys until the disk refuses one; the keys acknowledged."""
    done: list[str] = []
    for i in range(100_000):
        key = f"key:{i:06}"
        try:
            await store.create(key, VALUE)
        except StoreFullError:
            return done
        done.append(key)
    raise AssertionError("a 3 MiB disk never filled up")


async def test_close_on_a_full_disk_is_clean(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with mounted_tmpfs(tmp_path / "disk", DISK) as disk:
        store = AsyncDataStore(disk / "kv", max_size=2**40)
        await store.open()
        written = await create_until_full(store)
        assert written, "nothing fit on the disk"
        fill(disk)  # whatever room the refused create left, so the hint cannot be written
        with caplog.at_level(logging.WARNING, logger="aiokv"):
            await store.close()  # must not raise: only the hint was refused
        assert any("hint" in record.getMessage() for record in caplog.records)
        assert not list((disk / "kv").glob("*.tmp")), "a partial hint was left"

        async with AsyncDataStore(disk / "kv", max_size=2**40) as reopened:
            for key in written:
                assert await reopened.read(key) == VALUE
        # ...and that store, which only read on the still-full disk, closed without error.


async def test_reopened_full_store_reads_and_closes(tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "disk", DISK) as disk:
        async with AsyncDataStore(disk / "kv", max_size=2**40) as store:
            written = await create_until_full(store)
        fill(disk)
        for _ in range(2):
            async with AsyncDataStore(disk / "kv", max_size=2**40) as store:
                assert await store.read(written[0]) == VALUE
                assert await store.read(written[-1]) == VALUE
                with pytest.raises(StoreFullError):
                    await store.create("one-more", VALUE)

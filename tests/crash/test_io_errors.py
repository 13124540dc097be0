"""What the store does when the operating system fails a write or an fsync.

The failures are injected by replacing ``os.write`` / ``os.fsync`` for the duration of one
operation: a real full disk or a failing drive cannot be produced on demand here.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aiokv import AsyncDataStore, KeyNotFoundError, StoreFullError, StoreIOError

VALUE = {"v": "x" * 100}


def data_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.glob("*.data"))


def torn_write(error: int) -> Callable[[int, Any], int]:
    """An ``os.write`` that writes half of what it is given, then fails with ``error``."""
    real_write = os.write
    calls = 0

    def write(fd: int, data: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            return real_write(fd, bytes(data)[: len(data) // 2])
        raise OSError(error, os.strerror(error))

    return write


async def test_disk_full_mid_write_cuts_the_partial_record_and_stays_usable(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with AsyncDataStore(store_path) as store:
        await store.create("before", VALUE)
        size = data_bytes(store_path)
        with monkeypatch.context() as patch:
            patch.setattr(os, "write", torn_write(errno.ENOSPC))
            with pytest.raises(StoreFullError, match="disk is full"):
                await store.create("k", VALUE)
        assert data_bytes(store_path) == size  # the half-written record was cut off again
        with pytest.raises(KeyNotFoundError):
            await store.read("k")
        await store.create("k", VALUE)  # a full disk is not fatal: space came back
        assert await store.read("k") == VALUE
    async with AsyncDataStore(store_path) as store:
        assert await store.read("before") == VALUE
        assert await store.read("k") == VALUE


async def test_write_error_is_fatal_for_writes_but_reads_go_on(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with AsyncDataStore(store_path) as store:
        await store.create("before", VALUE)
        with monkeypatch.context() as patch:
            patch.setattr(os, "write", torn_write(errno.EIO))
            with pytest.raises(StoreIOError, match="write failed"):
                await store.create("k", VALUE)
        with pytest.raises(StoreIOError):
            await store.create("other", VALUE)
        with pytest.raises(StoreIOError):
            await store.delete("before")
        assert await store.read("before") == VALUE
    async with AsyncDataStore(store_path) as store:  # reopening clears the failure
        assert await store.read("before") == VALUE
        with pytest.raises(KeyNotFoundError):
            await store.read("k")
        await store.create("k", VALUE)


async def test_failed_fsync_is_never_retried(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After a failed fsync Linux may have dropped the dirty pages; a retry that succeeded
    # would acknowledge data that is gone, so the write path stops for good.
    fsyncs: list[int] = []

    def failing_fsync(fd: int) -> None:
        fsyncs.append(fd)
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    async with AsyncDataStore(store_path, durability="fsync") as store:
        await store.create("before", VALUE)
        with monkeypatch.context() as patch:
            patch.setattr(os, "fsync", failing_fsync)
            with pytest.raises(StoreIOError, match="fsync failed"):
                await store.create("k", VALUE)
            calls = len(fsyncs)
            with pytest.raises(StoreIOError):
                await store.create("k2", VALUE)
            assert len(fsyncs) == calls  # refused without touching the disk again
            assert await store.read("before") == VALUE
            with pytest.raises(KeyNotFoundError):
                await store.read("k")  # never acknowledged, never indexed
        # close() does not fsync a failed store again; it still unlocks and closes the files.
    async with AsyncDataStore(store_path) as store:
        assert await store.read("before") == VALUE


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EIO])
async def test_hint_refused_at_close_is_logged_not_raised(
    store_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: int,
) -> None:
    # The hint is an optimisation written after the data is synced: losing it costs the next
    # open a scan, not a write, so close() reports it in the log and succeeds.
    store = AsyncDataStore(store_path)
    await store.open()
    await store.create("k", VALUE)
    real_write = os.write

    def write(fd: int, data: Any) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):
            raise OSError(error, os.strerror(error))
        return real_write(fd, data)

    with monkeypatch.context() as patch:
        patch.setattr(os, "write", write)
        await store.close()
    assert "its hint was not written at close" in caplog.text
    assert not list(store_path.glob("*.tmp")), "a partial hint was left"
    assert not list(store_path.glob("*.hint"))
    async with AsyncDataStore(store_path) as store:
        assert await store.read("k") == VALUE


async def test_failed_fsync_at_close_says_writes_may_be_lost(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = AsyncDataStore(store_path)
    await store.open()
    await store.create("k", VALUE)

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", failing_fsync)
        with pytest.raises(StoreIOError, match="the last writes may not be on disk"):
            await store.close()
    async with AsyncDataStore(store_path) as store:  # closed and unlocked all the same
        assert await store.read("k") == VALUE

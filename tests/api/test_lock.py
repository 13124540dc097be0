"""The process lock: one open store per directory, refused at once, gone with its holder."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from _proc import Child, start_child

from aiokv import AsyncDataStore, DataStore, StoreLockedError

# A refusal must come at once; a lock that waited would take far longer than this.
REFUSAL_SECONDS = 2.0

HOLDER = """
    import asyncio
    import sys
    import time

    from aiokv import AsyncDataStore, DataStore

    path, how = sys.argv[1], sys.argv[2]

    async def hold_async():
        store = AsyncDataStore(path)
        await store.open()
        await store.create("from-child", {"pid": 1})
        print("ready", flush=True)
        if how == "async-exit":
            await store.close()
            return
        await asyncio.sleep(60)

    if how == "sync-hold":
        store = DataStore(path)
        store.create("from-child", {"pid": 1})
        print("ready", flush=True)
        time.sleep(60)
    elif how == "sync-exit-unclosed":
        store = DataStore(path)
        store.create("from-child", {"pid": 1})
        print("ready", flush=True)
        sys.exit(0)
    else:
        asyncio.run(hold_async())
    print("done", flush=True)
"""


def lock_identity(path: Path) -> tuple[int, int, int, int]:
    info = (path / "LOCK").stat()
    return info.st_ino, info.st_dev, info.st_size, info.st_mtime_ns


def start_holder(tmp_path: Path, store_path: Path, how: str) -> Child:
    child = start_child(HOLDER, store_path, how, workdir=tmp_path, name=f"holder-{how}")
    child.expect_line("ready")
    return child


async def assert_async_open_refused(store_path: Path) -> None:
    store = AsyncDataStore(store_path)
    started = time.monotonic()
    with pytest.raises(StoreLockedError, match="already open"):
        await store.open()
    assert time.monotonic() - started < REFUSAL_SECONDS
    await store.close()


def assert_sync_open_refused(store_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(StoreLockedError, match="already open"):
        DataStore(store_path)
    assert time.monotonic() - started < REFUSAL_SECONDS


@pytest.mark.parametrize("how", ["async-hold", "sync-hold"])
async def test_store_held_by_another_process_is_refused_at_once(
    tmp_path: Path, store_path: Path, how: str
) -> None:
    with start_holder(tmp_path, store_path, how) as child:
        held = lock_identity(store_path)
        await assert_async_open_refused(store_path)
        await asyncio.to_thread(assert_sync_open_refused, store_path)
        await assert_async_open_refused(store_path)
        assert child.proc.poll() is None  # still alive and holding
        # The refused opens neither removed, replaced nor truncated the holder's lock file.
        assert lock_identity(store_path) == held
    assert child.proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("how", ["async-hold", "sync-hold"])
async def test_killed_holder_leaves_no_stale_lock(
    tmp_path: Path, store_path: Path, how: str
) -> None:
    with start_holder(tmp_path, store_path, how) as child:
        held = lock_identity(store_path)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL
        assert lock_identity(store_path)[:2] == held[:2]  # the file is still there
        # No retry loop: the very first open after the death must win.
        async with AsyncDataStore(store_path) as store:
            assert await store.read("from-child") == {"pid": 1}
            await assert_async_open_refused(store_path)
    assert lock_identity(store_path)[:2] == held[:2]


def test_killed_holder_leaves_no_stale_lock_for_data_store(
    tmp_path: Path, store_path: Path
) -> None:
    with start_holder(tmp_path, store_path, "async-hold") as child:
        child.kill()
        with DataStore(store_path) as store:
            assert store.read("from-child") == {"pid": 1}


@pytest.mark.parametrize("how", ["async-exit", "sync-exit-unclosed"])
async def test_holder_that_exits_normally_releases(
    tmp_path: Path, store_path: Path, how: str
) -> None:
    with start_holder(tmp_path, store_path, how) as child:
        assert child.wait() == 0, child.stderr_text()
        async with AsyncDataStore(store_path) as store:
            assert await store.read("from-child") == {"pid": 1}


async def test_second_open_in_the_same_process_is_refused(store_path: Path) -> None:
    first = AsyncDataStore(store_path)
    await first.open()
    try:
        held = lock_identity(store_path)
        await assert_async_open_refused(store_path)
        await asyncio.to_thread(assert_sync_open_refused, store_path)
        assert lock_identity(store_path) == held
        await first.create("k", {"v": 1})
    finally:
        await first.close()
    async with AsyncDataStore(store_path) as second:
        assert await second.read("k") == {"v": 1}
    assert lock_identity(store_path)[:2] == held[:2]


def test_second_data_store_in_the_same_process_is_refused(store_path: Path) -> None:
    first = DataStore(store_path)
    try:
        assert_sync_open_refused(store_path)
        assert_sync_open_refused(store_path)
        first.create("k", {"v": 1})
    finally:
        first.close()
    with DataStore(store_path) as second:
        assert second.read("k") == {"v": 1}


async def test_lock_is_released_on_close_and_taken_again(store_path: Path) -> None:
    for round_number in range(3):
        async with AsyncDataStore(store_path) as store:
            await store.create(f"k{round_number}", {"round": round_number})
            await assert_async_open_refused(store_path)
    async with AsyncDataStore(store_path) as store:
        assert [await store.read(f"k{n}") for n in range(3)] == [{"round": n} for n in range(3)]


async def test_lock_file_is_private_and_stays_after_close(store_path: Path) -> None:
    async with AsyncDataStore(store_path):
        lock = store_path / "LOCK"
        assert lock.is_file()
        assert lock.stat().st_mode & 0o777 == 0o600
        held = lock_identity(store_path)
    assert lock_identity(store_path)[:3] == held[:3]


async def test_child_cannot_open_while_parent_holds(tmp_path: Path, store_path: Path) -> None:
    async with AsyncDataStore(store_path) as store:
        await store.create("from-parent", {"v": 1})
        script = """
            import sys
            import time
            from aiokv import DataStore, StoreLockedError

            started = time.monotonic()
            try:
                DataStore(sys.argv[1])
            except StoreLockedError:
                print("locked", round(time.monotonic() - started, 3), flush=True)
            else:
                print("opened", flush=True)
        """
        with start_child(script, store_path, workdir=tmp_path, name="opener") as child:
            line = child.read_line()
            assert line is not None
            assert line.split()[0] == "locked", child.stderr_text()
            assert float(line.split()[1]) < REFUSAL_SECONDS
            assert child.wait() == 0
        assert await store.read("from-parent") == {"v": 1}

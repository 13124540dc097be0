"""Opening and closing under cancellation, failure and concurrency: nothing left locked or
waiting."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from pathlib import Path

import pytest
from _internals import segment_name, writer_of

from aiokv import (
    AsyncDataStore,
    CorruptionError,
    DataStore,
    InvalidValueError,
    StoreClosedError,
    StoreIOError,
)

VALUE = {"v": "x" * 200}


async def assert_reopens(path: Path) -> None:
    async with AsyncDataStore(path) as again:
        assert again.path == path


@pytest.mark.parametrize("steps", [0, 1, 2, 3, 5, 8, 13])
async def test_cancelled_close_still_closes(store_path: Path, steps: int) -> None:
    store = AsyncDataStore(store_path)
    await store.open()
    await asyncio.gather(*(store.create(f"k{i}", VALUE) for i in range(50)))
    closing = asyncio.ensure_future(store.close())
    for _ in range(steps):
        await asyncio.sleep(0)
    closing.cancel()
    await asyncio.wait_for(store.close(), 5)  # a second close waits for the first
    assert "closed" in repr(store)
    await assert_reopens(store_path)


@pytest.mark.parametrize("steps", [0, 1, 2, 3, 5, 8])
async def test_cancelled_open_leaves_no_lock(store_path: Path, steps: int) -> None:
    async with AsyncDataStore(store_path) as first:
        await first.create("k", VALUE)
    store = AsyncDataStore(store_path)
    opening = asyncio.ensure_future(store.open())
    for _ in range(steps):
        await asyncio.sleep(0)
    opening.cancel()
    with pytest.raises(asyncio.CancelledError):
        await opening
    await asyncio.wait_for(store.close(), 5)
    await assert_reopens(store_path)


async def test_writes_waiting_for_queue_room_at_close_are_answered(store_path: Path) -> None:
    # More creates than the writer's queue holds, so many wait for room when close() comes.
    store = AsyncDataStore(store_path, durability="fsync")
    await store.open()
    tasks = [asyncio.ensure_future(store.create(f"k{i}", VALUE)) for i in range(6000)]
    await asyncio.sleep(0.01)
    await asyncio.wait_for(store.close(), 30)
    done, pending = await asyncio.wait(tasks, timeout=10)
    assert not pending
    outcomes = {type(t.exception()).__name__ if t.exception() else "ok" for t in done}
    assert outcomes <= {"ok", "StoreClosedError"}
    written = [i for i, t in enumerate(tasks) if t.exception() is None]
    async with AsyncDataStore(store_path) as again:
        for i in written[:: max(1, len(written) // 50)]:
            assert await again.read(f"k{i}") == VALUE


async def test_a_failed_writer_refuses_writes_and_still_closes(
    store_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = AsyncDataStore(store_path, compact_dead_ratio=None)
    await store.open()
    await store.create("before", VALUE)

    # Break the writer itself, as a bug would: the next batch's planning raises.
    def fail(*_args: object) -> None:
        raise RuntimeError("writer failure")

    writer_of(store)._write_batch = fail  # type: ignore[method-assign]
    with pytest.raises(StoreIOError):
        await asyncio.wait_for(store.create("lost", VALUE), 5)
    with pytest.raises(StoreIOError):
        await asyncio.wait_for(store.create("after", VALUE), 5)
    assert await store.read("before") == VALUE
    await asyncio.wait_for(store.close(), 5)
    assert any("background tasks failed" in r.message for r in caplog.records)
    async with AsyncDataStore(store_path) as again:
        assert await again.read("before") == VALUE


def test_second_close_from_another_thread_waits_for_the_first(store_path: Path) -> None:
    for _ in range(20):
        store = DataStore(store_path)
        store.create("k", VALUE) if _ == 0 else None
        other = threading.Thread(target=store.close)
        other.start()
        store.close()  # returns only once the directory is unlocked
        DataStore(store_path).close()
        other.join()


def test_data_store_collected_on_its_own_loop_thread_is_closed(store_path: Path) -> None:
    store = DataStore(store_path)
    store.create("k", VALUE)
    thread = store._thread
    # Run the finaliser where a reference cycle might get collected: on the loop thread.
    with pytest.warns(ResourceWarning, match="was not closed"):
        store._portal.call(store._finalizer)
    thread.join(10)
    assert not thread.is_alive()
    with DataStore(store_path) as again:
        assert again.read("k") == VALUE
    del store
    gc.collect()


async def test_empty_older_segment_is_corruption_not_an_interrupted_creation(
    store_path: Path,
) -> None:
    async with AsyncDataStore(store_path, max_size=2**20, compact_dead_ratio=None) as store:
        for i in range(200):
            await store.create(f"k{i}", {"v": "x" * 1000})
    files = sorted(store_path.glob("*.data"))
    assert len(files) >= 3
    files[1].write_bytes(b"")  # an older segment emptied: its records would silently vanish
    with pytest.raises(CorruptionError, match=segment_name(int(files[1].stem))):
        await AsyncDataStore(store_path).open()


async def test_integers_are_limited_whatever_the_process_setting(store: AsyncDataStore) -> None:
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        with pytest.raises(InvalidValueError, match="4300 digits"):
            await store.create("big", {"n": 10**4300})
        await store.create("fits", {"n": 10**4299})
    finally:
        sys.set_int_max_str_digits(old)
    assert await store.read("fits") == {"n": 10**4299}


async def test_read_after_close_raises_even_at_a_yield_point(store: AsyncDataStore) -> None:
    await store.create("k", VALUE)
    results = await asyncio.gather(
        *(store.read("k") for _ in range(64)), store.close(), return_exceptions=True
    )
    reads = results[:-1]
    assert all(r == VALUE or isinstance(r, StoreClosedError) for r in reads)

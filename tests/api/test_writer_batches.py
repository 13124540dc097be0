"""The writer's batching: many queued ops, split across segment roll-overs."""

from __future__ import annotations

import asyncio
from pathlib import Path

from _internals import writer

from aiokv import AsyncDataStore, KeyExistsError

VALUE = {"v": "x" * 1000}


async def test_ops_carried_past_a_segment_end_are_written(store_path: Path) -> None:
    # With 64 KiB segments, a batch of concurrent creates overruns the active segment; the ops
    # that do not fit are carried to the next batch and must be written there, not answered early.
    async with AsyncDataStore(store_path, segment_max_bytes=64 * 1024) as store:
        await asyncio.gather(*(store.create(f"k{i}", VALUE) for i in range(2000)))
        for i in range(2000):
            assert await store.read(f"k{i}") == VALUE
    async with AsyncDataStore(store_path) as store:
        for i in range(2000):
            assert await store.read(f"k{i}") == VALUE
    assert len(list(store_path.glob("*.data"))) > 20


async def test_one_batch_decides_racing_creates_in_queue_order(store_path: Path) -> None:
    async with AsyncDataStore(store_path) as store:

        async def create(n: int) -> str:
            try:
                await store.create("k", {"n": n})
            except KeyExistsError:
                return "exists"
            return "created"

        # All 50 pass the fast "is it live?" check before any is written, so the writer
        # decides them within one batch, in the order they were queued: the first wins.
        outcomes = await asyncio.gather(*(create(n) for n in range(50)))
        assert outcomes == ["created"] + ["exists"] * 49
        assert await store.read("k") == {"n": 0}


async def test_creates_beyond_the_queue_wait_in_line_in_order(store_path: Path) -> None:
    # More creates than the queue holds wait for room in line: all of them land, and of many
    # creates of one key the first in line wins, wherever the queue was full.
    beyond = 3 * writer.QUEUE_MAX_OPS
    async with AsyncDataStore(store_path) as store:
        await asyncio.gather(*(store.create(f"k{i}", {"i": i}) for i in range(beyond)))
        assert len(await store.read_many([f"k{i}" for i in range(beyond)])) == beyond
        outcomes = await asyncio.gather(
            *(store.create("same", {"n": n}) for n in range(beyond)), return_exceptions=True
        )
        assert outcomes[0] is None
        assert all(isinstance(outcome, KeyExistsError) for outcome in outcomes[1:])
        assert await store.read("same") == {"n": 0}


async def test_a_create_cancelled_while_waiting_for_room_is_never_written(
    store_path: Path,
) -> None:
    count = 2 * writer.QUEUE_MAX_OPS
    async with AsyncDataStore(store_path) as store:
        tasks = [asyncio.ensure_future(store.create(f"k{i}", {"i": i})) for i in range(count)]
        await asyncio.sleep(0)  # every task has queued its create or is waiting in line
        cancelled = tasks[-100:]
        for task in cancelled:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(o, asyncio.CancelledError) for o in outcomes[-100:])
        assert all(o is None for o in outcomes[:-100])
        found = await store.read_many([f"k{i}" for i in range(count)])
        assert set(found) == {f"k{i}" for i in range(count - 100)}
        await store.create(f"k{count - 1}", {"again": True})  # the line moves on

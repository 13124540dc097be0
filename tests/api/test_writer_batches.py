"""The writer's batching: many queued ops, split across segment roll-overs."""

from __future__ import annotations

import asyncio
from pathlib import Path

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

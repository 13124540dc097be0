"""Compaction must see expired keys as dead even before the reaper has dropped them."""

from __future__ import annotations

from pathlib import Path

import pytest
from _fs import dir_bytes

from aiokv import AsyncDataStore, ManualClock

pytestmark = pytest.mark.slow

CAP = 2**22  # 4 MiB


async def test_keys_expiring_faster_than_the_reaper_runs_never_fill_the_store(
    store_path: Path,
) -> None:
    clock = ManualClock()
    value = {"v": "x" * 1000}
    # The reaper would run once an hour: compaction must not wait for it.
    async with AsyncDataStore(
        store_path, max_size=CAP, clock=clock, reaper_interval_s=3600
    ) as store:
        for i in range(20_000):  # about 20 MiB written through a 4 MiB store
            await store.create(f"k{i}", value, ttl=1)
            clock.advance(0.001)  # about 1,000 keys unexpired at any time: 1 MiB
            if i % 500 == 0:
                assert dir_bytes(store_path) <= CAP
        stats = await store.stats()
        assert stats.disk_bytes <= CAP
        assert await store.read("k19999") == value

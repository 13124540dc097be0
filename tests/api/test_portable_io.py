"""The seek-and-read fallback for platforms without os.pread (Windows) reads the right bytes;
with hints read at open rather than mapped, as there."""

from __future__ import annotations

import asyncio
import os
import random
import threading
from pathlib import Path
from typing import Any

import pytest
from _internals import files as _files

from aiokv import AsyncDataStore, DataStore, KeyNotFoundError, ManualClock

SMALL = 2**20  # 64 KiB segments, so the data spans several files


@pytest.fixture(autouse=True)
def without_pread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_files, "HAVE_PREAD", False)
    # As on Windows: any read that still went through pread would fail loudly.
    monkeypatch.delattr(os, "pread")
    monkeypatch.setattr(_files, "MAP_WHOLE_FILES", False)


def segment_count(path: Path) -> int:
    return len(list(path.glob("*.data")))


def value_for(i: int) -> dict[str, Any]:
    return {"i": i, "text": f"value-{i}-" + "z" * (i * 131 % 4000)}


ITEMS = {f"key{i:04d}": value_for(i) for i in range(150)}


async def test_create_read_delete_reopen(store_path: Path) -> None:
    async with AsyncDataStore(store_path, max_size=SMALL, clock=ManualClock()) as store:
        for key, value in ITEMS.items():
            await store.create(key, value)
            assert await store.read(key) == value
        assert segment_count(store_path) >= 3
        for key in list(ITEMS)[::5]:
            await store.delete(key)
    expected = {key: value for n, (key, value) in enumerate(ITEMS.items()) if n % 5}
    async with AsyncDataStore(store_path, max_size=SMALL, clock=ManualClock()) as store:
        for key, value in expected.items():
            assert await store.read(key) == value
        for key in list(ITEMS)[::5]:
            with pytest.raises(KeyNotFoundError):
                await store.read(key)


async def test_reads_between_appends_do_not_move_where_writes_land(store_path: Path) -> None:
    # The fallback seeks the same descriptor the writer appends to.
    async with AsyncDataStore(store_path, max_size=SMALL, clock=ManualClock()) as store:
        keys = list(ITEMS)
        for n, key in enumerate(keys):
            await store.create(key, ITEMS[key])
            old = keys[n // 2]
            assert await store.read(old) == ITEMS[old]
    async with AsyncDataStore(store_path, max_size=SMALL, clock=ManualClock()) as store:
        for key, value in ITEMS.items():
            assert await store.read(key) == value
        await store.create("after-reopen", {"ok": 1})
        assert await store.read("key0000") == ITEMS["key0000"]
    async with AsyncDataStore(store_path, max_size=SMALL, clock=ManualClock()) as store:
        assert await store.read("after-reopen") == {"ok": 1}


async def test_concurrent_tasks_read_correct_values(store_path: Path) -> None:
    async with AsyncDataStore(store_path, max_size=SMALL, clock=ManualClock()) as store:
        await asyncio.gather(*(store.create(key, value) for key, value in ITEMS.items()))
        order = list(ITEMS) * 4
        random.Random(7).shuffle(order)

        async def read_one(key: str) -> tuple[str, dict[str, Any]]:
            await asyncio.sleep(0)
            return key, await store.read(key)

        results = await asyncio.gather(*(read_one(key) for key in order))
        assert all(value == ITEMS[key] for key, value in results)

        # Reads interleaved with concurrent creates in flight.
        more = {f"more{i:03d}": value_for(1000 + i) for i in range(100)}
        outcomes = await asyncio.gather(
            *(store.create(key, value) for key, value in more.items()),
            *(read_one(key) for key in order[:300]),
        )
        for outcome in outcomes:
            if outcome is not None:
                key, value = outcome
                assert value == ITEMS[key]
        for key, value in more.items():
            assert await store.read(key) == value


def test_data_store_read_from_four_threads(store_path: Path) -> None:
    with DataStore(store_path, max_size=SMALL) as store:
        for key, value in ITEMS.items():
            store.create(key, value)
        errors: list[str] = []
        start = threading.Barrier(4)

        def reader(seed: int) -> None:
            rng = random.Random(seed)
            start.wait()
            for _ in range(300):
                key = rng.choice(list(ITEMS))
                value = store.read(key)
                if value != ITEMS[key]:
                    errors.append(f"{key}: {value!r}")

        threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
        assert errors == []

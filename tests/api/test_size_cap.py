"""max_size bounds every byte in the store directory, and a full store can always be emptied."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from _fs import dir_bytes

from aiokv import AsyncDataStore, DataStore, KeyNotFoundError, ManualClock, StoreFullError

CAP = 2**20
HEADER = 28


def blob(size: int) -> dict[str, Any]:
    """A value whose compact JSON is exactly ``size`` bytes (2, or at least 8)."""
    if size == 2:
        return {}
    assert size >= 8
    return {"p": "x" * (size - 8)}


def assert_under_cap(path: Path) -> int:
    used = dir_bytes(path)
    assert used <= CAP, f"the store directory holds {used} bytes, over max_size {CAP}"
    return used


async def fill(
    store: AsyncDataStore,
    keys_and_sizes: Iterable[tuple[str, int]],
    *,
    attempts_after_full: int = 0,
) -> dict[str, int]:
    """Create until StoreFullError (then try ``attempts_after_full`` more); return key->size."""
    live: dict[str, int] = {}
    full = False
    for key, size in keys_and_sizes:
        before = assert_under_cap(store.path)
        try:
            await store.create(key, blob(size))
        except StoreFullError:
            full = True
            assert dir_bytes(store.path) == before, "a refused create wrote something"
            with pytest.raises(KeyNotFoundError):
                await store.read(key)
        else:
            live[key] = size
            assert_under_cap(store.path)
        if full:
            if attempts_after_full == 0:
                return live
            attempts_after_full -= 1
    raise AssertionError("the store never filled up")


async def check_and_empty(store: AsyncDataStore, live: dict[str, int]) -> None:
    """Every live key reads back, and every one of them can be deleted without going over."""
    for key, size in live.items():
        assert await store.read(key) == blob(size), key
    for key in live:
        await store.delete(key)  # never StoreFullError: room for this was kept
        assert_under_cap(store.path)
    for key in live:
        with pytest.raises(KeyNotFoundError):
            await store.read(key)


def numbered(prefix: str, size: int) -> Iterable[tuple[str, int]]:
    return ((f"{prefix}{i:05d}", size) for i in itertools.count())


def open_capped(path: Path) -> AsyncDataStore:
    return AsyncDataStore(path, max_size=CAP, clock=ManualClock())


def usable_fraction(live: dict[str, int]) -> float:
    return sum(live.values()) / CAP


@pytest.mark.slow
async def test_1k_values_fill_at_least_80_percent_then_empty(store_path: Path) -> None:
    async with open_capped(store_path) as store:
        live = await fill(store, numbered("k", 1024))
        # The same create fails again, and so does a larger one.
        for key, size in (("late", 1024), ("late2", 16384)):
            before = dir_bytes(store_path)
            with pytest.raises(StoreFullError):
                await store.create(key, blob(size))
            assert dir_bytes(store_path) == before
        # One segment (1/16) stays free for compaction; each key also keeps room for its
        # tombstone, and every record has an entry in its segment's hint.
        assert usable_fraction(live) >= 0.80, f"only {usable_fraction(live):.3f} usable"
        print(f"usable for 1 KiB values: {usable_fraction(live):.4f} of max_size")
        await check_and_empty(store, live)


async def test_16k_values_fill_then_empty(store_path: Path) -> None:
    async with open_capped(store_path) as store:
        live = await fill(store, numbered("big", 16384))
        assert len(live) >= 50
        await check_and_empty(store, live)


async def test_mixed_sizes_and_long_keys_fill_then_empty(store_path: Path) -> None:
    rng = random.Random(1234)

    def keys_and_sizes() -> Iterable[tuple[str, int]]:
        for i in itertools.count():
            key = f"{i:05d}" + "🙂" * rng.randrange(0, 28)  # up to 32 chars, 113 bytes
            yield key, rng.choice([2, 8, 100, 1024, 5000, 16384])

    async with open_capped(store_path) as store:
        live = await fill(store, keys_and_sizes(), attempts_after_full=200)
        await check_and_empty(store, live)


@pytest.mark.slow
async def test_many_tiny_records_with_long_keys_can_all_be_deleted(store_path: Path) -> None:
    # Tombstones nearly as large as the records: the delete reserve is half the store.
    def keys() -> Iterable[tuple[str, int]]:
        for i in itertools.count():
            yield f"{i:06d}" + "🙂" * 26, 2

    key_bytes = len(("000000" + "🙂" * 26).encode())
    record = 28 + key_bytes + 2
    hint_entry = 30 + key_bytes
    tombstone = 28 + key_bytes + 4
    per_key = record + hint_entry + tombstone + hint_entry
    room = CAP - CAP // 16  # one segment stays free for compaction
    async with open_capped(store_path) as store:
        live = await fill(store, keys())
        assert len(live) * per_key >= 0.9 * room, (len(live), per_key)
        await check_and_empty(store, live)


@pytest.mark.slow
@pytest.mark.parametrize("stray_name", ["stray.bin", "sub/dir/stray.bin"])
async def test_stray_files_count_toward_the_cap(tmp_path: Path, stray_name: str) -> None:
    async with open_capped(tmp_path / "baseline") as store:
        baseline = len(await fill(store, numbered("k", 1024)))

    path = tmp_path / "with-stray"
    stray = path / stray_name
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"s" * (512 * 1024))
    async with open_capped(path) as store:
        live = await fill(store, numbered("k", 1024))
        per_record = HEADER + len("k00000") + 1024
        assert len(live) < baseline
        assert len(live) * per_record + 512 * 1024 <= CAP
        assert stray.stat().st_size == 512 * 1024  # the store never touches it
        await check_and_empty(store, live)


async def test_full_store_is_still_full_after_reopen_and_can_be_emptied(
    store_path: Path,
) -> None:
    async with open_capped(store_path) as store:
        live = await fill(store, numbered("k", 1024))
    full_size = assert_under_cap(store_path)
    async with open_capped(store_path) as store:
        with pytest.raises(StoreFullError):
            await store.create("after-reopen", blob(1024))
        assert dir_bytes(store_path) == full_size
        await check_and_empty(store, live)
    async with open_capped(store_path) as store:
        for key in live:
            with pytest.raises(KeyNotFoundError):
                await store.read(key)
        assert_under_cap(store_path)


async def test_store_emptied_halfway_then_reopened_can_finish_emptying(
    store_path: Path,
) -> None:
    async with open_capped(store_path) as store:
        live = await fill(store, numbered("k", 5000))
        keys = list(live)
        for key in keys[::2]:
            await store.delete(key)
            assert_under_cap(store_path)
    async with open_capped(store_path) as store:
        await check_and_empty(store, {key: live[key] for key in keys[1::2]})


def test_data_store_fills_and_empties(store_path: Path) -> None:
    live = []
    with DataStore(store_path, max_size=CAP) as store:
        for i in itertools.count():
            before = dir_bytes(store_path)
            try:
                store.create(f"k{i}", blob(16384))
            except StoreFullError:
                assert dir_bytes(store_path) == before
                break
            assert dir_bytes(store_path) <= CAP
            live.append(f"k{i}")
        assert len(live) >= 50
        for key in live:
            assert store.read(key) == blob(16384)
            store.delete(key)
            assert dir_bytes(store_path) <= CAP
        with pytest.raises(KeyNotFoundError):
            store.read(live[0])

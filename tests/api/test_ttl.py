"""Time-to-live: exact deadlines on a manual clock, re-creation, reopen, and the reaper."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _internals import index_of

from aiokv import AsyncDataStore, KeyExistsError, KeyNotFoundError, ManualClock

TEN_YEARS_S = 10 * 366 * 86400


async def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll ``condition`` on the event loop until it holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.005)


# -- the deadline ------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", [1, 60, 86400])
async def test_key_readable_just_before_deadline_and_gone_at_it(
    store: AsyncDataStore, clock: ManualClock, ttl: int
) -> None:
    start = clock.time()
    await store.create("k", {"a": 1}, ttl=ttl)
    deadline = start + ttl
    clock.set(deadline - 0.001)
    assert await store.read("k") == {"a": 1}
    with pytest.raises(KeyExistsError):
        await store.create("k", {"a": 2})
    clock.set(deadline)
    with pytest.raises(KeyNotFoundError, match=r"'k' not found"):
        await store.read("k")
    with pytest.raises(KeyNotFoundError):
        await store.delete("k")
    clock.set(deadline + 1000)
    with pytest.raises(KeyNotFoundError):
        await store.read("k")


async def test_delete_just_before_deadline_succeeds(
    store: AsyncDataStore, clock: ManualClock
) -> None:
    start = clock.time()
    await store.create("k", {"a": 1}, ttl=10)
    clock.set(start + 10 - 0.001)
    await store.delete("k")
    with pytest.raises(KeyNotFoundError):
        await store.read("k")


async def test_deadline_keeps_sub_second_precision(store_path: Path, clock: ManualClock) -> None:
    start = 1_700_000_000.7
    clock.set(start)
    async with AsyncDataStore(store_path, clock=clock) as store:
        await store.create("k", {"a": 1}, ttl=1)
        clock.set(start + 0.999)
        assert await store.read("k") == {"a": 1}
        clock.set(start + 1.0)
        with pytest.raises(KeyNotFoundError):
            await store.read("k")
    # Still exact after a reopen: the deadline on disk is not rounded either.
    clock.set(start + 0.999)
    async with AsyncDataStore(store_path, clock=clock) as store:
        assert await store.read("k") == {"a": 1}
    clock.set(start + 1.0)
    async with AsyncDataStore(store_path, clock=clock) as store:
        with pytest.raises(KeyNotFoundError):
            await store.read("k")


async def test_deadline_is_taken_when_create_is_called(
    store: AsyncDataStore, clock: ManualClock
) -> None:
    start = clock.time()
    await store.create("a", {"n": 1}, ttl=5)
    clock.advance(3)
    await store.create("b", {"n": 2}, ttl=5)
    clock.set(start + 5)
    with pytest.raises(KeyNotFoundError):
        await store.read("a")
    assert await store.read("b") == {"n": 2}
    clock.set(start + 8)
    with pytest.raises(KeyNotFoundError):
        await store.read("b")


async def test_largest_ttl_does_not_expire_early(store: AsyncDataStore, clock: ManualClock) -> None:
    start = clock.time()
    await store.create("k", {"a": 1}, ttl=2**31 - 1)
    clock.set(start + 2**31 - 2)
    assert await store.read("k") == {"a": 1}
    clock.set(start + 2**31 - 1)
    with pytest.raises(KeyNotFoundError):
        await store.read("k")


# -- creating again after expiry ---------------------------------------------------------


async def test_expired_key_can_be_created_again(store: AsyncDataStore, clock: ManualClock) -> None:
    await store.create("k", {"gen": 1}, ttl=5)
    clock.advance(5)
    await store.create("k", {"gen": 2})
    assert await store.read("k") == {"gen": 2}
    # The new key has no TTL: it does not inherit the old deadline.
    clock.advance(TEN_YEARS_S)
    assert await store.read("k") == {"gen": 2}


async def test_create_on_expired_but_unreaped_key_succeeds(
    store_path: Path, clock: ManualClock
) -> None:
    # The reaper runs once a day here, so the expired entry is still in the index.
    async with AsyncDataStore(store_path, clock=clock, reaper_interval_s=86400) as store:
        await store.create("k", {"gen": 1}, ttl=5)
        clock.advance(6)
        assert b"k" in index_of(store)
        assert "keys=1" in repr(store)
        await store.create("k", {"gen": 2}, ttl=100)
        assert await store.read("k") == {"gen": 2}
        assert "keys=1" in repr(store)
        await store.delete("k")
        with pytest.raises(KeyNotFoundError):
            await store.read("k")
        assert "keys=0" in repr(store)
    async with AsyncDataStore(store_path, clock=clock, reaper_interval_s=86400) as store:
        with pytest.raises(KeyNotFoundError):
            await store.read("k")


async def test_recreated_expired_key_survives_reopen(store_path: Path, clock: ManualClock) -> None:
    async with AsyncDataStore(store_path, clock=clock, reaper_interval_s=86400) as store:
        await store.create("k", {"gen": 1}, ttl=5)
        clock.advance(5)
        await store.create("k", {"gen": 2})
    async with AsyncDataStore(store_path, clock=clock) as store:
        assert await store.read("k") == {"gen": 2}


async def test_concurrent_creates_of_an_expired_key_exactly_one_wins(
    store_path: Path, clock: ManualClock
) -> None:
    async with AsyncDataStore(store_path, clock=clock, reaper_interval_s=86400) as store:
        await store.create("k", {"gen": 0}, ttl=1)
        clock.advance(1)
        results = await asyncio.gather(
            *(store.create("k", {"gen": i}) for i in range(1, 21)), return_exceptions=True
        )
        winners = [i + 1 for i, result in enumerate(results) if result is None]
        assert len(winners) == 1
        assert all(isinstance(r, KeyExistsError) for r in results if r is not None)
        assert await store.read("k") == {"gen": winners[0]}


# -- across close and reopen -------------------------------------------------------------


async def test_deadline_survives_close_and_reopen(store_path: Path, clock: ManualClock) -> None:
    start = clock.time()
    async with AsyncDataStore(store_path, clock=clock) as store:
        await store.create("short", {"a": 1}, ttl=100)
        await store.create("long", {"a": 2}, ttl=1000)
        await store.create("forever", {"a": 3})
    # Reopened before the deadline: still there, and it still expires on time.
    clock.set(start + 99)
    async with AsyncDataStore(store_path, clock=clock) as store:
        assert await store.read("short") == {"a": 1}
        clock.set(start + 100)
        with pytest.raises(KeyNotFoundError):
            await store.read("short")
    # Reopened after the deadline: gone from the start, and free to create.
    clock.set(start + 500)
    async with AsyncDataStore(store_path, clock=clock) as store:
        assert "keys=2" in repr(store)
        with pytest.raises(KeyNotFoundError):
            await store.read("short")
        with pytest.raises(KeyNotFoundError):
            await store.delete("short")
        assert await store.read("long") == {"a": 2}
        assert await store.read("forever") == {"a": 3}
        await store.create("short", {"a": 4})
    clock.set(start + 1000)
    async with AsyncDataStore(store_path, clock=clock) as store:
        assert await store.read("short") == {"a": 4}
        with pytest.raises(KeyNotFoundError):
            await store.read("long")
        assert await store.read("forever") == {"a": 3}


# -- ttl=None ----------------------------------------------------------------------------


async def test_no_ttl_never_expires(store_path: Path, clock: ManualClock) -> None:
    async with AsyncDataStore(store_path, clock=clock, reaper_interval_s=0.01) as store:
        await store.create("forever", {"a": 1}, ttl=None)
        await store.create("default", {"a": 2})
        await store.create("marker", {"a": 3}, ttl=1)
        clock.advance(TEN_YEARS_S)
        assert await store.read("forever") == {"a": 1}
        assert await store.read("default") == {"a": 2}
        # Give the reaper a pass: the marker goes, the keys without a TTL stay.
        await wait_until(lambda: b"marker" not in index_of(store))
        assert len(index_of(store)) == 2
        assert await store.read("forever") == {"a": 1}
    clock.advance(TEN_YEARS_S)
    async with AsyncDataStore(store_path, clock=clock) as store:
        assert await store.read("forever") == {"a": 1}
        assert await store.read("default") == {"a": 2}


# -- the reaper --------------------------------------------------------------------------


async def test_reaper_drops_expired_keys_from_the_index(
    store: AsyncDataStore, clock: ManualClock
) -> None:
    for i in range(50):
        await store.create(f"ttl-{i}", {"i": i}, ttl=10)
    for i in range(5):
        await store.create(f"keep-{i}", {"i": i})
    await store.create("later", {"i": 0}, ttl=20)
    assert len(index_of(store)) == 56
    assert "keys=56" in repr(store)
    clock.advance(10)
    await wait_until(lambda: len(index_of(store)) == 6)
    assert "keys=6" in repr(store)
    assert await store.read("later") == {"i": 0}
    for i in range(5):
        assert await store.read(f"keep-{i}") == {"i": i}
    clock.advance(10)
    await wait_until(lambda: len(index_of(store)) == 5)
    assert "keys=5" in repr(store)


async def test_reaper_leaves_a_recreated_key_alone(
    store: AsyncDataStore, clock: ManualClock
) -> None:
    # The old deadline of "k" is still queued in the reaper's heap after the re-create.
    await store.create("k", {"gen": 1}, ttl=5)
    await store.delete("k")
    await store.create("k", {"gen": 2}, ttl=100)
    await store.create("marker", {"a": 1}, ttl=5)
    clock.advance(5)
    await wait_until(lambda: b"marker" not in index_of(store))
    assert b"k" in index_of(store)
    assert await store.read("k") == {"gen": 2}


async def test_reads_do_not_wait_for_the_reaper(store_path: Path, clock: ManualClock) -> None:
    async with AsyncDataStore(store_path, clock=clock, reaper_interval_s=86400) as store:
        await store.create("k", {"a": 1}, ttl=1)
        clock.advance(1)
        with pytest.raises(KeyNotFoundError):
            await store.read("k")
        with pytest.raises(KeyNotFoundError):
            await store.delete("k")
        assert b"k" in index_of(store)  # not reaped, yet invisible


async def test_reaped_key_can_be_created_again(store: AsyncDataStore, clock: ManualClock) -> None:
    await store.create("k", {"gen": 1}, ttl=1)
    clock.advance(1)
    await wait_until(lambda: b"k" not in index_of(store))
    await store.create("k", {"gen": 2})
    assert await store.read("k") == {"gen": 2}

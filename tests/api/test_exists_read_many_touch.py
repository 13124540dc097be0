"""``exists``, ``read_many`` and ``touch`` at their boundaries, on both faces.

The model-based machines (tests/api/test_model.py) run them among every other operation,
with crashes and compactions; here are the edges: expiry to the instant, bad arguments that
must write nothing, hash collisions, races with deletes and compaction, reopens.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import pytest
from _fs import dir_bytes
from _internals import MIN_SEGMENT_MAX_BYTES, KeyDir, Reader
from _internals import index as index_module

from aiokv import (
    AsyncDataStore,
    BlockingCallError,
    DataStore,
    InvalidKeyError,
    InvalidTTLError,
    KeyNotFoundError,
    ManualClock,
    StoreClosedError,
)

VALUE = {"name": "Ada", "ids": [1, 2, 3], "nested": {"ok": True, "none": None}}


# -- exists ------------------------------------------------------------------------------


async def test_exists_follows_create_delete_and_expiry(
    store: AsyncDataStore, clock: ManualClock
) -> None:
    assert not await store.exists("k")
    await store.create("k", VALUE, ttl=10)
    assert await store.exists("k")
    clock.advance(9.999)
    assert await store.exists("k")
    clock.advance(0.001)
    assert not await store.exists("k")  # gone at the deadline, as read() says
    await store.create("d", VALUE)
    await store.delete("d")
    assert not await store.exists("d")


@pytest.mark.parametrize("bad", ["", "x" * 33, 7, None, "a\ud800"])
async def test_exists_checks_the_key_like_read(store: AsyncDataStore, bad: object) -> None:
    with pytest.raises(InvalidKeyError):
        await store.exists(bad)  # type: ignore[arg-type]


async def test_exists_on_a_closed_store(store_path: Path) -> None:
    store = AsyncDataStore(store_path)
    with pytest.raises(StoreClosedError):
        await store.exists("k")
    await store.open()
    await store.close()
    with pytest.raises(StoreClosedError):
        await store.exists("k")


# -- read_many ---------------------------------------------------------------------------


async def test_read_many_leaves_out_the_absent(store: AsyncDataStore, clock: ManualClock) -> None:
    await store.create("a", {"n": 1})
    await store.create("b", {"n": 2}, ttl=5)
    await store.create("c", {"n": 3})
    await store.delete("c")
    clock.advance(5)
    found = await store.read_many(["a", "b", "c", "never", "a"])
    assert found == {"a": {"n": 1}}
    assert await store.read_many([]) == {}
    assert await store.read_many(key for key in ("a",)) == {"a": {"n": 1}}


async def test_read_many_gives_fresh_copies(store: AsyncDataStore) -> None:
    await store.create("a", VALUE)
    first = await store.read_many(["a"])
    first["a"]["name"] = "changed"
    assert (await store.read_many(["a"]))["a"] == VALUE


async def test_read_many_checks_every_key_first(store: AsyncDataStore) -> None:
    await store.create("a", VALUE)
    with pytest.raises(InvalidKeyError):
        await store.read_many(["a", "x" * 33])
    with pytest.raises(InvalidKeyError, match="not one str"):
        await store.read_many("abc")


async def test_read_many_of_many_keys_lets_other_tasks_run(store: AsyncDataStore) -> None:
    keys = [f"k{i}" for i in range(2000)]
    for key in keys:
        await store.create(key, {"k": key})
    ran = 0

    async def other() -> None:
        nonlocal ran
        while True:
            ran += 1
            await asyncio.sleep(0)

    task = asyncio.ensure_future(other())
    await asyncio.sleep(0)
    before = ran
    found = await store.read_many(keys)
    task.cancel()
    assert found == {key: {"k": key} for key in keys}
    assert ran > before + 1  # the loop was given back during the call


# -- touch -------------------------------------------------------------------------------


async def test_touch_moves_the_deadline_and_keeps_the_value(
    store: AsyncDataStore, clock: ManualClock
) -> None:
    await store.create("s", VALUE, ttl=10)
    clock.advance(8)
    await store.touch("s", 10)  # now 18 s after the create
    clock.advance(9.999)
    assert await store.read("s") == VALUE
    clock.advance(0.001)
    with pytest.raises(KeyNotFoundError):
        await store.read("s")


async def test_touch_none_makes_a_key_permanent_and_a_ttl_makes_it_expire(
    store: AsyncDataStore, clock: ManualClock
) -> None:
    await store.create("s", VALUE, ttl=5)
    await store.touch("s", None)
    clock.advance(10**6)
    assert await store.read("s") == VALUE
    await store.touch("s", 1)
    clock.advance(1)
    assert not await store.exists("s")


async def test_touch_refuses_absent_deleted_and_expired_keys(
    store: AsyncDataStore, clock: ManualClock
) -> None:
    with pytest.raises(KeyNotFoundError):
        await store.touch("never", 10)
    await store.create("d", VALUE)
    await store.delete("d")
    with pytest.raises(KeyNotFoundError):
        await store.touch("d", 10)
    await store.create("e", VALUE, ttl=1)
    clock.advance(1)
    with pytest.raises(KeyNotFoundError):
        await store.touch("e", 10)  # expired: not brought back


@pytest.mark.parametrize("ttl", [0, -1, 2**31, 1.5, "10", True])
async def test_touch_with_a_bad_ttl_writes_nothing(
    store: AsyncDataStore, store_path: Path, ttl: object
) -> None:
    await store.create("k", VALUE, ttl=10)
    before = dir_bytes(store_path)
    with pytest.raises(InvalidTTLError):
        await store.touch("k", ttl)  # type: ignore[arg-type]
    assert dir_bytes(store_path) == before


async def test_touch_with_a_bad_key_writes_nothing(store: AsyncDataStore, store_path: Path) -> None:
    before = dir_bytes(store_path)
    with pytest.raises(InvalidKeyError):
        await store.touch("x" * 33, 10)
    assert dir_bytes(store_path) == before


async def test_touched_deadline_survives_a_reopen(store_path: Path, clock: ManualClock) -> None:
    async with AsyncDataStore(store_path, clock=clock) as store:
        await store.create("s", VALUE, ttl=10)
        await store.create("p", VALUE, ttl=10)
        await store.touch("s", 100)
        await store.touch("p", None)
    clock.advance(50)
    async with AsyncDataStore(store_path, clock=clock) as store:
        assert await store.read("s") == VALUE
        assert await store.read("p") == VALUE
        clock.advance(50)
        assert not await store.exists("s")
        assert await store.exists("p")
        stats = await store.stats()
        assert stats.dead_bytes > 0  # the records the touches replaced


async def test_touch_racing_a_delete_is_one_or_the_other(store: AsyncDataStore) -> None:
    for round_ in range(50):
        key = f"k{round_}"
        await store.create(key, VALUE)
        outcomes = await asyncio.gather(
            store.touch(key, 60), store.delete(key), return_exceptions=True
        )
        touch_outcome, delete_outcome = outcomes
        assert delete_outcome is None  # the key was live when the delete was queued
        assert touch_outcome is None or isinstance(touch_outcome, KeyNotFoundError)
        assert not await store.exists(key)  # never brought back by the touch


async def test_touch_racing_compaction_keeps_the_value(
    store_path: Path, clock: ManualClock
) -> None:
    async with AsyncDataStore(
        store_path,
        clock=clock,
        segment_max_bytes=MIN_SEGMENT_MAX_BYTES,
        compact_dead_ratio=None,
    ) as store:
        keys = [f"k{i}" for i in range(300)]
        for key in keys:
            await store.create(key, {"key": key, "pad": "p" * 200}, ttl=100)
        for key in keys[::2]:
            await store.delete(key)
        kept = keys[1::2]
        results = await asyncio.gather(store.compact(), *(store.touch(key, 1000) for key in kept))
        assert results[0] > 0
        clock.advance(500)
        assert await store.read_many(kept) == {key: {"key": key, "pad": "p" * 200} for key in kept}


@pytest.fixture
def colliding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stores whose index keeps 2 bits of each key's hash: four entries for every key."""
    monkeypatch.setattr(index_module, "KeyDir", functools.partial(KeyDir, hash_bits=2))


@pytest.mark.usefixtures("colliding")
async def test_colliding_hashes_keep_keys_apart(store_path: Path, clock: ManualClock) -> None:
    async with AsyncDataStore(store_path, clock=clock) as store:
        for i in range(0, 40, 2):
            await store.create(f"k{i}", {"i": i}, ttl=10)
        for i in range(40):
            assert await store.exists(f"k{i}") == (i % 2 == 0)
        found = await store.read_many([f"k{i}" for i in range(40)])
        assert found == {f"k{i}": {"i": i} for i in range(0, 40, 2)}
        for i in range(1, 40, 2):
            with pytest.raises(KeyNotFoundError):
                await store.touch(f"k{i}", 10)
        await store.touch("k4", 100)
        clock.advance(20)
        assert await store.read_many([f"k{i}" for i in range(40)]) == {"k4": {"i": 4}}


# -- the blocking face --------------------------------------------------------------------


def test_data_store_exists_read_many_touch(store_path: Path) -> None:
    clock = ManualClock(1_700_000_000.0)
    with DataStore(store_path, clock=clock) as store:
        store.create("a", VALUE, ttl=10)
        assert store.exists("a")
        assert not store.exists("b")
        assert store.read_many(["a", "b"]) == {"a": VALUE}
        with pytest.raises(InvalidKeyError, match="not one str"):
            store.read_many("a")
        store.touch("a", 100)
        clock.advance(50)
        assert store.read_many(["a"]) == {"a": VALUE}
        with pytest.raises(KeyNotFoundError):
            store.touch("b", 1)
        with pytest.raises(InvalidTTLError):
            store.touch("a", 0)
    with pytest.raises(StoreClosedError):
        store.exists("a")
    with pytest.raises(StoreClosedError):
        store.touch("a", 1)


async def test_data_store_refuses_a_running_loop(store_path: Path) -> None:
    store = await asyncio.to_thread(DataStore, store_path)
    try:
        for call in (
            lambda: store.exists("a"),
            lambda: store.read_many(["a"]),
            lambda: store.touch("a", 1),
        ):
            with pytest.raises(BlockingCallError):
                call()
    finally:
        await asyncio.to_thread(store.close)


async def test_touch_reads_again_when_its_record_changed(
    store: AsyncDataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The record a touch read may be replaced or moved before the writer reaches the touch:
    # the writer sends it back, and it reads the key again rather than write a stale value.
    await store.create("k", VALUE, ttl=10)
    real = Reader.stored
    calls = 0

    def stale_once(reader: Reader, key: str) -> tuple[int, bytes, int]:
        nonlocal calls
        calls += 1
        loc, value, encoding = real(reader, key)
        if calls == 1:
            return loc + 1, b'{"stale":true}', encoding  # not where the key's record is
        return loc, value, encoding

    monkeypatch.setattr(Reader, "stored", stale_once)
    await store.touch("k", 100)
    assert calls == 2
    assert await store.read("k") == VALUE

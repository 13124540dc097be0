"""``create_many`` and ``delete_many``: all or nothing, checked first, one write.

After a crash at any byte of a batch's write, the store reopens with the whole batch or none
of it; every refusal writes nothing; a batch races single creates in queue order.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from _fs import dir_bytes
from _internals import (
    FILE_HEADER_SIZE,
    MIN_SEGMENT_MAX_BYTES,
    active_of,
    compactor_of,
    encode_file_header,
    segments_of,
)

from aiokv import (
    AsyncDataStore,
    DataStore,
    InvalidKeyError,
    InvalidTTLError,
    InvalidValueError,
    KeyExistsError,
    KeyNotFoundError,
    ManualClock,
    StoreFullError,
    ValueTooLargeError,
)


def value(i: int) -> dict[str, Any]:
    return {"id": i, "tags": ["a", "b"], "nested": {"n": i, "ok": True}, "pad": "p" * (i % 50)}


def items(count: int, prefix: str = "k") -> dict[str, dict[str, Any]]:
    return {f"{prefix}{i}": value(i) for i in range(count)}


async def contents(store: AsyncDataStore, keys: list[str]) -> dict[str, Any]:
    return await store.read_many(keys)


# -- create_many ---------------------------------------------------------------------------


async def test_create_many_from_a_mapping_or_pairs(store: AsyncDataStore) -> None:
    await store.create_many(items(100))
    await store.create_many([("p1", {"x": 1}), ["p2", {"x": 2}]])  # type: ignore[list-item]
    await store.create_many(iter([("p3", {"x": 3})]))
    await store.create_many([Pair("p4", {"x": 4}), ("p5", {"x": 5})])  # type: ignore[list-item]
    await store.create_many({})  # nothing to do
    assert await contents(store, list(items(100))) == items(100)
    want = {f"p{i}": {"x": i} for i in range(1, 6)}
    assert await store.read_many(list(want)) == want


class Pair(NamedTuple):
    key: str
    value: dict[str, Any]


async def test_create_many_with_a_ttl(store: AsyncDataStore, clock: ManualClock) -> None:
    await store.create_many(items(10), ttl=5)
    clock.advance(4.999)
    assert len(await store.read_many(list(items(10)))) == 10
    clock.advance(0.001)
    assert await store.read_many(list(items(10))) == {}


async def test_create_many_refuses_a_live_key_and_writes_nothing(
    store: AsyncDataStore, store_path: Path
) -> None:
    await store.create("k3", {"old": True})
    before = dir_bytes(store_path)
    with pytest.raises(KeyExistsError, match="'k3'"):
        await store.create_many(items(10))
    assert dir_bytes(store_path) == before
    assert await store.read_many(list(items(10))) == {"k3": {"old": True}}


async def test_key_exists_names_ten_keys(store: AsyncDataStore) -> None:
    await store.create_many(items(30))
    with pytest.raises(KeyExistsError) as refused:
        await store.create_many(items(30))
    message = str(refused.value)
    assert message.count("'k") == 10
    assert "and 20 more" in message


async def test_create_many_checks_every_item_first(store: AsyncDataStore, store_path: Path) -> None:
    before = dir_bytes(store_path)
    good = list(items(5).items())
    bad_batches: list[tuple[Any, type[Exception], str]] = [
        ([*good, ("x" * 33, {})], InvalidKeyError, "key"),
        ([*good, ("k1", {"again": 1})], InvalidKeyError, "more than once: 'k1'"),
        ([*good, ("bad", {"f": float("nan")})], InvalidValueError, "key 'bad'"),
        ([*good, ("bad", [1, 2])], InvalidValueError, "key 'bad'"),
        ([*good, ("big", {"s": "x" * 20_000})], ValueTooLargeError, "key 'big'"),
        ([*good, ("k9",)], InvalidValueError, "pairs"),
        ([*good, ("k9", {}, {})], InvalidValueError, "pairs"),
        ([*good, "ab"], InvalidValueError, "pairs"),  # two long, but not a pair
        ("not pairs", InvalidValueError, "pairs"),
        (42, InvalidValueError, "pairs"),
    ]
    for batch, error, text in bad_batches:
        with pytest.raises(error, match=text):
            await store.create_many(batch)
    with pytest.raises(InvalidTTLError):
        await store.create_many(good, ttl=0)
    assert dir_bytes(store_path) == before
    assert await store.read_many([key for key, _value in good]) == {}


async def test_create_many_that_does_not_fit_writes_nothing(store_path: Path) -> None:
    async with AsyncDataStore(store_path, max_size=2**20) as store:
        before = dir_bytes(store_path)
        big = {f"b{i}": {"pad": "x" * 10_000} for i in range(120)}  # 1.2 MB > 1 MiB cap
        with pytest.raises(StoreFullError, match="nothing was written"):
            await store.create_many(big)
        assert dir_bytes(store_path) == before
        assert await store.read_many(list(big)) == {}
        await store.create_many(dict(list(big.items())[:20]))  # a smaller one fits
        assert len(await store.read_many(list(big))) == 20


async def test_a_batch_larger_than_a_segment_is_one_unit(store_path: Path) -> None:
    options: dict[str, Any] = {"segment_max_bytes": MIN_SEGMENT_MAX_BYTES, "max_size": 2**24}
    async with AsyncDataStore(store_path, **options) as store:
        await store.create("first", {"n": 0})
        big = {f"b{i}": {"pad": "x" * 1000} for i in range(4 * MIN_SEGMENT_MAX_BYTES // 1000)}
        await store.create_many(big)
        assert len(segments_of(store)) == 2  # the first sealed early, the batch in the next
        assert active_of(store).size > MIN_SEGMENT_MAX_BYTES
        await store.create("after", {"n": 1})
        assert len(segments_of(store)) == 3
    async with AsyncDataStore(store_path, **options) as store:
        assert len(await store.read_many(list(big))) == len(big)
        assert await store.read("after") == {"n": 1}


async def test_a_batch_racing_single_creates_is_all_or_nothing(store: AsyncDataStore) -> None:
    for round_ in range(30):
        keys = {f"r{round_}-{i}": {"i": i} for i in range(20)}
        contested = f"r{round_}-7"
        outcomes = await asyncio.gather(
            store.create(contested, {"single": True}),
            store.create_many(keys),
            return_exceptions=True,
        )
        found = await store.read_many(list(keys))
        if outcomes[1] is None:  # the batch won: the single create came after it
            assert isinstance(outcomes[0], KeyExistsError)
            assert found == keys
        else:  # the single create won: the batch wrote nothing
            assert outcomes[0] is None
            assert isinstance(outcomes[1], KeyExistsError)
            assert found == {contested: {"single": True}}


async def test_create_many_over_expired_keys(store: AsyncDataStore, clock: ManualClock) -> None:
    await store.create_many(items(10), ttl=1)
    clock.advance(2)
    await store.create_many(items(10))  # expired keys are absent: created again
    clock.advance(10**6)
    assert await store.read_many(list(items(10))) == items(10)


# -- delete_many ---------------------------------------------------------------------------


async def test_delete_many_counts_the_live_ones(store: AsyncDataStore, clock: ManualClock) -> None:
    await store.create_many(items(10))
    await store.create("e", {}, ttl=1)
    clock.advance(1)
    deleted = await store.delete_many(["k1", "k2", "k2", "nope", "e", *[f"k{i}" for i in (3, 4)]])
    assert deleted == 4
    assert await store.delete_many(["k1", "nope"]) == 0
    assert await store.delete_many([]) == 0
    assert sorted(await store.read_many(list(items(10)))) == [f"k{i}" for i in (0, 5, 6, 7, 8, 9)]
    with pytest.raises(InvalidKeyError, match="not one str"):
        await store.delete_many("k5")
    with pytest.raises(InvalidKeyError):
        await store.delete_many(["k5", ""])
    assert await store.exists("k5")  # a bad key anywhere: nothing deleted


async def test_delete_many_then_create_many_survive_a_reopen(store_path: Path) -> None:
    async with AsyncDataStore(store_path) as store:
        await store.create_many(items(200))
        assert await store.delete_many(list(items(200))[::2]) == 100
        await store.create_many(items(200, prefix="n"))
    async with AsyncDataStore(store_path) as store:
        found = await store.read_many([*items(200), *items(200, prefix="n")])
        assert len(found) == 300
        assert all(int(key[1:]) % 2 for key in found if key.startswith("k"))
        stats = await store.stats()
        assert stats.live_keys == 300


# -- crashes -------------------------------------------------------------------------------


async def test_a_batch_cut_off_at_any_byte_is_all_or_nothing(tmp_path: Path) -> None:
    """A crash in the middle of a batch's write leaves a prefix of it at the end of the newest
    segment: the reopened store has all of the batch or none of it, and what came before."""
    path = tmp_path / "store"
    async with AsyncDataStore(path) as store:
        await store.create("before", {"n": 0})
        await store.create_many({f"b{i}": {"i": i} for i in range(5)})
        active = active_of(store)
        data_name = active.path.name
        end = active.size
    data = (path / data_name).read_bytes()
    start = data.index(b"before") + len(b'before{"n":0}')
    batch_keys = [f"b{i}" for i in range(5)]
    for cut in range(start, end + 1):
        crashed = tmp_path / f"cut{cut}"
        shutil.copytree(path, crashed)
        for hint in crashed.glob("*.hint"):
            hint.unlink()  # a crash leaves the active segment without its hint
        os.truncate(crashed / data_name, cut)
        async with AsyncDataStore(crashed) as store:
            assert await store.read("before") == {"n": 0}
            found = await store.read_many(batch_keys)
            assert found in ({}, {f"b{i}": {"i": i} for i in range(5)}), cut
            assert (found != {}) == (cut == end), cut
        shutil.rmtree(crashed)
    assert FILE_HEADER_SIZE < start < end


async def test_an_old_store_gets_batches_in_a_new_segment(store_path: Path) -> None:
    """A store written before batches (segment files of version 1) keeps opening; a batch is
    written to a fresh segment of version 2, which the old files' readers would refuse
    rather than misread."""
    async with AsyncDataStore(store_path) as store:
        await store.create("old", {"n": 1})
    data = next(store_path.glob("*.data"))
    raw = bytearray(data.read_bytes())
    raw[:FILE_HEADER_SIZE] = encode_file_header(1, 1, 0, version=1)  # as written before
    data.write_bytes(bytes(raw))
    for hint in store_path.glob("*.hint"):
        hint.unlink()
    async with AsyncDataStore(store_path) as store:
        assert await store.read("old") == {"n": 1}
        assert active_of(store).version == 1
        await store.create("single", {"n": 2})  # a single create still goes there
        assert len(segments_of(store)) == 1
        await store.create_many({"m1": {}, "m2": {}})
        assert len(segments_of(store)) == 2
        assert active_of(store).version == 2
    async with AsyncDataStore(store_path) as store:
        assert await store.read_many(["old", "single", "m1", "m2"]) == {
            "old": {"n": 1},
            "single": {"n": 2},
            "m1": {},
            "m2": {},
        }


# -- the blocking face ---------------------------------------------------------------------


def test_data_store_batches(store_path: Path) -> None:
    with DataStore(store_path) as store:
        store.create_many(items(50))
        store.create_many((f"g{i}", {"g": i}) for i in range(5))  # a generator, taken here
        with pytest.raises(KeyExistsError):
            store.create_many(items(3))
        assert store.delete_many([*items(50), "g0", "nope"]) == 51
        assert store.read_many([f"g{i}" for i in range(5)]) == {
            f"g{i}": {"g": i} for i in range(1, 5)
        }
        with pytest.raises(KeyNotFoundError):
            store.read("k0")


async def test_batch_records_are_not_dead_bytes(store_path: Path) -> None:
    # A batch record is needed as long as its segment is: counted dead, it would make every
    # segment written by batches look compactable, and compaction rewrite each to reclaim 40
    # bytes. Counted live both as written and as rebuilt by an open (hints and scans).
    options: dict[str, Any] = {"segment_max_bytes": 64 * 1024, "compact_dead_ratio": None}
    async with AsyncDataStore(store_path, **options) as store:
        for start in range(0, 2000, 40):
            await store.create_many({f"k{i}": {"pad": "x" * 200} for i in range(start, start + 40)})
        assert len(segments_of(store)) > 5
        assert all(compactor_of(store).dead_bytes(s) == 0 for s in segments_of(store).values())
        assert (await store.stats()).dead_bytes == 0
    for _ in range(2):  # the second open reads the hints the first wrote
        async with AsyncDataStore(store_path, **options) as store:
            assert (await store.stats()).dead_bytes == 0
            assert await store.compact() == 0


async def test_a_segment_made_large_by_a_batch_can_still_be_compacted(store_path: Path) -> None:
    # Creates keep free the room compaction needs to rewrite any segment; one that a batch
    # made larger than segment_max_bytes needs as much as its size, so a batch is taken
    # only with that room to spare, and later creates keep it.
    options: dict[str, Any] = {
        "max_size": 4 * 2**20,
        "segment_max_bytes": 128 * 1024,
        "compact_dead_ratio": None,
    }
    big = {f"b{i}": {"pad": "x" * 1000} for i in range(2500)}  # about 2.6 MB: too much
    async with AsyncDataStore(store_path, **options) as store:
        with pytest.raises(StoreFullError, match="as much again"):
            await store.create_many(big)
        half = dict(list(big.items())[:1200])  # about 1.25 MB: it and its room fit
        await store.create_many(half)
        await store.delete_many(list(half)[:600])
        assert await store.compact() > 500_000  # the large segment was rewritten
        filled = 0
        with contextlib.suppress(StoreFullError):
            for i in range(10_000):
                await store.create(f"f{i}", {"pad": "y" * 1000})
                filled += 1
        assert filled > 0
        await store.delete_many([f"f{i}" for i in range(filled)])
        assert await store.compact() > 0  # room was kept for it all along

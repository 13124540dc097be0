"""Keys whose hashes agree: the index against a dict, and a whole store, with a hash of a few
bits so that nearly every key shares its directory entry with others."""

from __future__ import annotations

import functools
import os
import random
from pathlib import Path

import pytest
from _internals import (
    Index,
    KeyDir,
    PyKeyDir,
    index_locations,
    index_of,
    location,
    segment_of,
    size_of,
    tombstone_size,
)
from _internals import index as index_module

from aiokv import AsyncDataStore, DataStore, KeyExistsError, KeyNotFoundError

pytestmark = pytest.mark.purepy

IMPLEMENTATIONS = sorted({PyKeyDir, KeyDir}, key=lambda kind: kind.__module__)


@pytest.mark.slow
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS, ids=lambda kind: kind.__module__)
@pytest.mark.parametrize("hash_bits", [1, 3, 48])
@pytest.mark.parametrize("seed", range(5))
def test_index_matches_a_dict_under_random_operations(
    implementation: type[PyKeyDir], hash_bits: int, seed: int
) -> None:
    rng = random.Random(seed)
    records: dict[int, bytes] = {}  # every location ever used -> the key of its record
    index = Index(
        lambda loc, key: records[loc] == key, keydir=implementation(os.urandom(16), hash_bits)
    )
    model: dict[bytes, int] = {}
    keys = [b"k%d" % i for i in range(40)]
    next_offset = 32

    def fresh(key: bytes) -> int:
        nonlocal next_offset
        loc = location(rng.randrange(1, 4), next_offset, 40 + len(key))
        next_offset += 100
        records[loc] = key
        return loc

    for _step in range(600):
        key = rng.choice(keys)
        action = rng.random()
        if action < 0.45:
            loc = fresh(key)
            assert index.put(key, loc, 0.0) == model.get(key)
            model[key] = loc
        elif action < 0.75:
            assert index.remove(key) == model.pop(key, None)
        elif action < 0.85 and key in model:
            old, new = model[key], fresh(key)
            assert index.relocate(key, old, new)
            assert not index.relocate(key, old, new)  # no longer at old
            model[key] = new
        elif action < 0.9 and key in model:
            assert index.remove(key, at=model[key] + 1) is None  # not there: left alone
            assert index.remove(key, at=model[key]) == model.pop(key)
        for probe in keys:
            assert index.find(probe) == model.get(probe), probe
            assert (probe in index) == (probe in model)
            if probe in model:
                assert index.points_at(probe, model[probe])
                assert not index.surely_absent(probe, 0.0)
        assert len(index) == len(model)
        assert index_locations(index) == sorted(model.values())
        assert index.tombstone_bytes == sum(map(tombstone_size, model))
        assert index.total_live_bytes == sum(map(size_of, model.values()))
        live: dict[int, int] = {}
        for loc in model.values():
            live[segment_of(loc)] = live.get(segment_of(loc), 0) + size_of(loc)
        assert {s: n for s, n in index.live_bytes.items() if n} == live


@pytest.fixture
def colliding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stores whose index keeps 2 bits of each key's hash: four entries for every key."""
    monkeypatch.setattr(index_module, "KeyDir", functools.partial(KeyDir, hash_bits=2))


@pytest.mark.usefixtures("colliding")
async def test_a_store_with_colliding_hashes_keeps_every_key_apart(tmp_path: Path) -> None:
    path = tmp_path / "store"
    rng = random.Random(7)
    model: dict[str, dict[str, int]] = {}
    keys = [f"key-{i}" for i in range(120)]
    async with AsyncDataStore(path, max_size=4 << 20, segment_max_bytes=64 << 10) as store:
        assert len(index_of(store)._dir) == 0
        for i, key in enumerate(keys):
            await store.create(key, {"i": i})
            model[key] = {"i": i}
        assert len(index_of(store)._dir) == 4  # the rest are kept by name
        for step in range(2000):
            key = rng.choice(keys)
            if key in model:
                if rng.random() < 0.5:
                    assert await store.read(key) == model[key]
                    with pytest.raises(KeyExistsError):
                        await store.create(key, {"again": step})
                else:
                    await store.delete(key)
                    del model[key]
            else:
                with pytest.raises(KeyNotFoundError):
                    await store.read(key)
                with pytest.raises(KeyNotFoundError):
                    await store.delete(key)
                await store.create(key, {"step": step})
                model[key] = {"step": step}
        await store.compact()
        await reads_match(store, keys, model)
    # Opened again from hints and scans, in which one key's entries meet others' at every turn.
    async with AsyncDataStore(path, max_size=4 << 20, segment_max_bytes=64 << 10) as store:
        assert len(index_of(store)) == len(model)
        await reads_match(store, keys, model)
        assert (await store.stats()).live_keys == len(model)


async def reads_match(
    store: AsyncDataStore, keys: list[str], model: dict[str, dict[str, int]]
) -> None:
    for key in keys:
        if key in model:
            assert await store.read(key) == model[key]
        else:
            with pytest.raises(KeyNotFoundError):
                await store.read(key)


@pytest.mark.usefixtures("colliding")
def test_a_data_store_with_colliding_hashes_refuses_exactly(tmp_path: Path) -> None:
    with DataStore(tmp_path / "store") as store:
        for i in range(20):
            store.create(f"k{i}", {"i": i})
        store.delete("k3")
        for i in range(20):
            if i == 3:
                with pytest.raises(KeyNotFoundError):
                    store.read("k3")
                with pytest.raises(KeyNotFoundError):
                    store.delete("k3")  # its hash is held by others: the writer decides
            else:
                assert store.read(f"k{i}") == {"i": i}
                with pytest.raises(KeyExistsError):
                    store.create(f"k{i}", {})
        with pytest.raises(KeyNotFoundError):
            store.read("absent")
        store.create("k3", {"back": True})
        assert store.read("k3") == {"back": True}

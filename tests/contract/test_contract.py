"""The AsyncStore contract, the same on every backend: each test runs on the local store, a
Redis server and a Redis Cluster (see conftest.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from _backends import Backend, listed

from aiokv import (
    AsyncDataStore,
    DataStoreError,
    ImportFileError,
    InvalidKeyError,
    InvalidTTLError,
    InvalidValueError,
    KeyExistsError,
    KeyNotFoundError,
    StoreClosedError,
    StorePathError,
    ValueTooLargeError,
)

NESTED = {"name": "Ada", "tags": ["a", "b"], "address": {"city": "Paris", "zip": 75001}}


async def test_a_value_reads_back_as_it_was_created(kv: Any) -> None:
    await kv.create("user:1", NESTED)
    assert await kv.read("user:1") == NESTED
    assert await kv.exists("user:1")
    assert not await kv.exists("user:2")


async def test_values_json_carries_only_with_care_read_back_equal(kv: Any) -> None:
    """Integers beyond 64 bits, deep nesting and every kind of string read back exactly."""
    deep: Any = 1
    for _ in range(255):  # 256 levels: past orjson's limit, up to ours
        deep = [deep]
    value = {"big": 2**70, "neg": -(2**64), "deep": deep, "s": "é\x00\u2028🙂", "f": 0.1}
    await kv.create("k", value)
    assert await kv.read("k") == value


async def test_a_read_is_a_fresh_copy(kv: Any) -> None:
    await kv.create("k", {"list": [1]})
    first = await kv.read("k")
    first["list"].append(2)
    assert await kv.read("k") == {"list": [1]}


async def test_create_of_a_live_key_is_refused_and_changes_nothing(kv: Any) -> None:
    await kv.create("k", {"v": 1})
    with pytest.raises(KeyExistsError, match="'k' already exists"):
        await kv.create("k", {"v": 2})
    assert await kv.read("k") == {"v": 1}


async def test_missing_keys_are_not_found(kv: Any) -> None:
    with pytest.raises(KeyNotFoundError, match="'nope' not found"):
        await kv.read("nope")
    with pytest.raises(KeyNotFoundError):
        await kv.delete("nope")
    with pytest.raises(KeyNotFoundError):
        await kv.touch("nope", 10)
    with pytest.raises(KeyNotFoundError):
        await kv.touch("nope", None)


async def test_a_deleted_key_is_gone_and_can_be_created_again(kv: Any) -> None:
    await kv.create("k", {"v": 1})
    await kv.delete("k")
    assert not await kv.exists("k")
    with pytest.raises(KeyNotFoundError):
        await kv.read("k")
    await kv.create("k", {"v": 2})
    assert await kv.read("k") == {"v": 2}


async def test_keys_of_every_length_and_alphabet(kv: Any) -> None:
    keys = ["a", "k" * 32, "é" * 32, "🙂" * 32, "a/b/../c", "%2F", "x y", "\x00", "*", "[a]"]
    for i, key in enumerate(keys):
        await kv.create(key, {"i": i})
    for i, key in enumerate(keys):
        assert await kv.read(key) == {"i": i}
    assert sorted(await listed(kv.keys())) == sorted(keys)


# -- the checks, the same errors and messages as the local store's -----------------------


BAD_CALLS = [
    pytest.param("create", ("",), {"value": {}}, id="empty-key"),
    pytest.param("create", ("k" * 33,), {"value": {}}, id="long-key"),
    pytest.param("create", (7,), {"value": {}}, id="int-key"),
    pytest.param("create", ("\udc00",), {"value": {}}, id="surrogate-key"),
    pytest.param("create", ("k", [1]), {}, id="list-value"),
    pytest.param("create", ("k", {"s": {1, 2}}), {}, id="set-in-value"),
    pytest.param("create", ("k", {"n": float("nan")}), {}, id="nan"),
    pytest.param("create", ("k", {"s": "x" * 20_000}), {}, id="too-large"),
    pytest.param("create", ("k", {}), {"ttl": 0}, id="ttl-0"),
    pytest.param("create", ("k", {}), {"ttl": 2**31}, id="ttl-huge"),
    pytest.param("create", ("k", {}), {"ttl": 1.5}, id="ttl-float"),
    pytest.param("read", ("k" * 33,), {}, id="read-long-key"),
    pytest.param("exists", (None,), {}, id="exists-none"),
    pytest.param("delete", (b"k",), {}, id="delete-bytes"),
    pytest.param("touch", ("k", -1), {}, id="touch-negative"),
    pytest.param("read_many", ("abc",), {}, id="read-many-str"),
    pytest.param("read_many", (["a", ""],), {}, id="read-many-bad-key"),
    pytest.param("delete_many", ("abc",), {}, id="delete-many-str"),
    pytest.param("create_many", ("ab",), {}, id="create-many-str"),
    pytest.param("create_many", ([("a", {}, 1)],), {}, id="create-many-triple"),
    pytest.param("create_many", ([("a", {}), ("a", {})],), {}, id="create-many-twice"),
    pytest.param("create_many", ({"a": {}, "b": []},), {}, id="create-many-bad-value"),
    pytest.param("create_many", ({"a": {}},), {"ttl": 0}, id="create-many-ttl"),
]


async def _outcome(store: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        await getattr(store, method)(*args, **kwargs)
    except DataStoreError as exc:
        return type(exc), str(exc)
    return "ok"


@pytest.mark.parametrize(("method", "args", "kwargs"), BAD_CALLS)
async def test_a_bad_argument_fails_as_on_the_local_store(
    kv: Any, backend: Backend, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """The same checks in the same order: the same error type and message, nothing written."""
    async with AsyncDataStore(backend.tmp_path / "reference") as reference:
        expected = await _outcome(reference, method, args, kwargs)
    assert expected != "ok"
    assert issubclass(expected[0], (InvalidKeyError, InvalidValueError, InvalidTTLError))
    assert await _outcome(kv, method, args, kwargs) == expected
    assert await listed(kv.keys()) == []


async def test_a_too_large_value_names_its_size(kv: Any) -> None:
    with pytest.raises(ValueTooLargeError, match="16384 bytes"):
        await kv.create("k", {"s": "x" * 16_380})


# -- TTLs --------------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_key_expires_after_its_ttl(kv: Any, backend: Backend) -> None:
    await kv.create("short", {"v": 1}, ttl=1)
    await kv.create("long", {"v": 2}, ttl=3600)
    assert await kv.exists("short")
    await backend.advance(1.0)
    assert not await kv.exists("short")
    with pytest.raises(KeyNotFoundError):
        await kv.read("short")
    assert await listed(kv.keys()) == ["long"]
    await kv.create("short", {"v": 3})  # an expired key can be created again
    assert await kv.read("short") == {"v": 3}


@pytest.mark.slow
async def test_touch_moves_the_deadline_and_none_keeps_it_for_ever(
    kv: Any, backend: Backend
) -> None:
    await kv.create("a", {"v": 1}, ttl=1)
    await kv.create("b", {"v": 2}, ttl=1)
    await kv.touch("a", None)
    await kv.touch("b", 3600)
    await backend.advance(1.0)
    assert await kv.read("a") == {"v": 1}
    assert await kv.read("b") == {"v": 2}
    await kv.create("c", {"v": 3})
    await kv.touch("c", 1)
    await backend.advance(1.0)
    assert not await kv.exists("c")


# -- batches -------------------------------------------------------------------------------


async def test_create_many_writes_all(kv: Any) -> None:
    batch = {f"user:{i}": {"i": i, "tags": ["x"] * (i % 3)} for i in range(2_500)}
    await kv.create_many(batch)
    assert await kv.read_many(batch) == batch
    await kv.create_many([("pair:1", {"a": 1}), ("pair:2", {"a": 2})])
    assert await kv.read("pair:2") == {"a": 2}
    await kv.create_many({})  # nothing to do


async def test_create_many_with_a_live_key_writes_nothing(kv: Any) -> None:
    await kv.create("taken", {"v": 0})
    with pytest.raises(KeyExistsError, match=r"'taken'.*nothing was written"):
        await kv.create_many({"new:1": {}, "taken": {"v": 1}, "new:2": {}})
    assert not await kv.exists("new:1")
    assert not await kv.exists("new:2")
    assert await kv.read("taken") == {"v": 0}


async def test_read_many_leaves_out_absent_keys(kv: Any) -> None:
    await kv.create_many({"a": {"v": 1}, "b": {"v": 2}})
    await kv.delete("b")
    assert await kv.read_many(["a", "b", "c", "a"]) == {"a": {"v": 1}}
    assert await kv.read_many([]) == {}


async def test_delete_many_counts_what_it_deleted(kv: Any) -> None:
    await kv.create_many({f"k{i}": {} for i in range(10)})
    assert await kv.delete_many([f"k{i}" for i in range(5)] + ["absent", "k0"]) == 5
    assert sorted(await listed(kv.keys())) == [f"k{i}" for i in range(5, 10)]
    assert await kv.delete_many([]) == 0


# -- iteration -------------------------------------------------------------------------------


async def test_keys_and_items_by_prefix(kv: Any) -> None:
    await kv.create_many({"user:1": {"n": 1}, "user:2": {"n": 2}, "order:1": {"n": 3}})
    assert sorted(await listed(kv.keys("user:"))) == ["user:1", "user:2"]
    assert sorted([pair async for pair in kv.items("order")]) == [("order:1", {"n": 3})]
    assert [key async for key in kv.keys("nothing")] == []


async def test_glob_characters_in_a_prefix_match_themselves(kv: Any) -> None:
    keys = ["a*b", "axb", "a?c", "abc", "[x]1", "x1", "a\\b", "ab"]
    await kv.create_many({key: {} for key in keys})
    assert [key async for key in kv.keys("a*")] == ["a*b"]
    assert [key async for key in kv.keys("a?")] == ["a?c"]
    assert [key async for key in kv.keys("[x]")] == ["[x]1"]
    assert [key async for key in kv.keys("a\\")] == ["a\\b"]


@pytest.mark.parametrize("prefix", [3, "k" * 33, "\udc00"])
async def test_a_bad_prefix_is_refused_when_called(kv: Any, prefix: Any) -> None:
    with pytest.raises(InvalidKeyError):
        kv.keys(prefix)
    with pytest.raises(InvalidKeyError):
        kv.items(prefix)


async def test_every_key_live_throughout_is_yielded_exactly_once(kv: Any) -> None:
    """Keys created and deleted while the iteration runs do not disturb the others."""
    stable = {f"stable:{i}": {"i": i} for i in range(3_000)}
    await kv.create_many(stable)
    await kv.create_many({f"doomed:{i}": {} for i in range(1_000)})
    seen: list[str] = []
    async for key in kv.keys():
        seen.append(key)
        if len(seen) % 200 == 0:
            n = len(seen)
            await kv.create(f"new:{n}", {})
            await kv.delete_many([f"doomed:{i}" for i in range(n // 4, n // 4 + 50)])
    assert len(seen) == len(set(seen))
    assert set(stable) <= set(seen)


async def test_items_pass_over_a_key_deleted_before_its_turn(kv: Any) -> None:
    await kv.create_many({f"k{i}": {"i": i} for i in range(10)})
    items = kv.items()
    await kv.delete_many([f"k{i}" for i in range(10) if i % 2])
    got = dict([pair async for pair in items])
    assert got == {f"k{i}": {"i": i} for i in range(0, 10, 2)}


async def test_two_stores_apart_share_nothing(backend: Backend) -> None:
    """On Redis, two prefixes on one server; locally, two directories."""
    async with backend.make() as one, backend.make() as other:
        await one.create("k", {"store": 1})
        await other.create("k", {"store": 2})
        assert await one.read("k") == {"store": 1}
        assert await listed(other.keys()) == ["k"]
        await one.delete("k")
        assert await other.read("k") == {"store": 2}


# -- the lifecycle -----------------------------------------------------------------------------


async def test_a_closed_store_refuses_everything(backend: Backend) -> None:
    store: Any = backend.make()
    with pytest.raises(StoreClosedError):
        await store.read("k")
    async with store:
        await store.create("k", {})
        keys = store.keys()
    with pytest.raises(StoreClosedError):
        await store.read("k")
    with pytest.raises(StoreClosedError):
        await store.create("j", {})
    with pytest.raises(StoreClosedError):
        store.keys()
    with pytest.raises(StoreClosedError):
        await listed(keys)
    with pytest.raises(StoreClosedError):
        await store.open()
    await store.close()  # twice is fine


async def test_stats_count_the_live_keys(kv: Any) -> None:
    await kv.create_many({f"k{i}": {"v": "x" * 10} for i in range(50)})
    await kv.delete("k0")
    stats = await kv.stats()
    assert stats.live_keys == 49
    assert stats.live_bytes > 49 * 10


# -- export and import ---------------------------------------------------------------------


async def test_export_and_import_carry_values_and_deadlines(kv: Any, backend: Backend) -> None:
    stored = {f"user:{i}": {"i": i, "big": 2**70, "nested": {"l": [i]}} for i in range(1_500)}
    await kv.create_many(stored)
    await kv.create("session", {"s": 1}, ttl=3_600)
    path = backend.tmp_path / "out.jsonl"
    assert await kv.export_jsonl(path, prefix="user:") == 1_500
    assert await kv.export_jsonl(backend.tmp_path / "all.jsonl") == 1_501
    async with backend.make() as target:
        assert await target.import_jsonl(backend.tmp_path / "all.jsonl") == 1_501
        assert await target.read_many(stored) == stored
        assert await target.read("session") == {"s": 1}
        lines = (backend.tmp_path / "all.jsonl").read_text().splitlines()
        deadline = next(json.loads(line) for line in lines if '"session"' in line)["expires_at"]
        now = backend.clock.time() if not backend.is_redis else time.time()
        assert 3_590 < deadline - now <= 3_600
        with pytest.raises(KeyExistsError, match=r"line 1: .* already exists"):
            await target.import_jsonl(path)
        assert await target.import_jsonl(path, skip_existing=True) == 0
        await target.delete_many(list(stored))  # leave nothing behind on a shared server
        await target.delete("session")


async def test_a_bad_import_file_imports_nothing(kv: Any, backend: Backend) -> None:
    path = backend.tmp_path / "bad.jsonl"
    good = '{"key": "a", "value": {}, "expires_at": null}\n'
    path.write_text(good * 1 + '{"key": "b", "value": [], "expires_at": null}\n')
    with pytest.raises(ImportFileError, match="line 2"):
        await kv.import_jsonl(path)
    path.write_text(good + good)
    with pytest.raises(ImportFileError, match="also on line 1"):
        await kv.import_jsonl(path)
    assert await listed(kv.keys()) == []


async def test_an_export_never_replaces_what_is_not_a_file(kv: Any, backend: Backend) -> None:
    await kv.create("k", {})
    with pytest.raises(StorePathError, match="directory"):
        await kv.export_jsonl(backend.tmp_path)

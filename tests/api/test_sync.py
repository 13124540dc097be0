"""``DataStore``: the blocking, thread-safe store."""

from __future__ import annotations

import asyncio
import gc
import random
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
from _internals import Writer

from aiokv import (
    AsyncDataStore,
    BlockingCallError,
    DataStore,
    DataStoreError,
    KeyExistsError,
    KeyNotFoundError,
    ManualClock,
    StoreClosedError,
    StoreLockedError,
)


def exists(path: Path) -> bool:
    """Whether anything is at ``path`` (a symlink counts too)."""
    return path.is_symlink() or path.exists()


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "aiokv-loop"]


def test_create_read_delete(store_path: Path) -> None:
    with DataStore(store_path) as store:
        store.create("k", {"a": [1, 2], "b": "é"})
        assert store.read("k") == {"a": [1, 2], "b": "é"}
        with pytest.raises(KeyExistsError):
            store.create("k", {"a": 0})
        store.delete("k")
        with pytest.raises(KeyNotFoundError):
            store.read("k")
        with pytest.raises(KeyNotFoundError):
            store.delete("k")
        store.create("k", {"again": True})
        assert store.read("k") == {"again": True}
        assert store.path == store_path


def test_read_returns_a_fresh_dict(store_path: Path) -> None:
    with DataStore(store_path) as store:
        store.create("k", {"l": [1]})
        first = store.read("k")
        first["l"].append(2)
        assert store.read("k") == {"l": [1]}


def test_data_persists_across_reopen(store_path: Path) -> None:
    with DataStore(store_path) as store:
        for i in range(50):
            store.create(f"k{i}", {"i": i})
        store.delete("k7")
    with DataStore(store_path) as store:
        assert store.read("k49") == {"i": 49}
        with pytest.raises(KeyNotFoundError):
            store.read("k7")
    # And the async store sees the same data.
    asyncio.run(_read_async(store_path, "k0", {"i": 0}))


async def _read_async(path: Path, key: str, expected: dict[str, Any]) -> None:
    async with AsyncDataStore(path) as store:
        assert await store.read(key) == expected


def test_constructor_opens_the_store(store_path: Path) -> None:
    store = DataStore(store_path)
    try:
        assert (store_path / "LOCK").is_file()
        assert " open " in repr(store)
        assert repr(store).startswith("<DataStore ")
        with pytest.raises(StoreLockedError):
            DataStore(store_path)
    finally:
        store.close()


def test_second_datastore_on_same_path_is_locked_and_leaves_no_thread(store_path: Path) -> None:
    with DataStore(store_path) as store:
        store.create("k", {"a": 1})
        threads_before = len(loop_threads())
        for _ in range(3):
            with pytest.raises(StoreLockedError, match=str(store_path)):
                DataStore(store_path)
        assert len(loop_threads()) == threads_before
        assert store.read("k") == {"a": 1}
    # Released by the with block.
    with DataStore(store_path) as again:
        assert again.read("k") == {"a": 1}


def test_async_store_open_on_a_held_path_is_locked(store_path: Path) -> None:
    async def try_open() -> None:
        other = AsyncDataStore(store_path)
        with pytest.raises(StoreLockedError):
            await other.open()
        await other.close()

    with DataStore(store_path):
        asyncio.run(try_open())


def test_datastore_on_a_path_held_by_an_async_store_is_locked(store_path: Path) -> None:
    async def hold() -> None:
        async with AsyncDataStore(store_path):
            with pytest.raises(StoreLockedError):
                await asyncio.to_thread(DataStore, store_path)

    asyncio.run(hold())


def test_with_closes_the_store(store_path: Path) -> None:
    threads_before = len(loop_threads())
    with DataStore(store_path) as store:
        store.create("k", {"a": 1})
        assert len(loop_threads()) == threads_before + 1
    assert "closed" in repr(store)
    with pytest.raises(StoreClosedError):
        store.read("k")
    assert len(loop_threads()) == threads_before
    with DataStore(store_path) as again:
        assert again.read("k") == {"a": 1}


def test_with_closes_on_error(store_path: Path) -> None:
    def fail_inside() -> None:
        with DataStore(store_path) as store:
            store.create("k", {"a": 1})
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fail_inside()
    with DataStore(store_path) as again:
        assert again.read("k") == {"a": 1}


def test_close_twice_is_fine(store_path: Path) -> None:
    store = DataStore(store_path)
    store.close()
    store.close()
    with DataStore(store_path):
        pass


def test_operations_after_close_raise_store_closed(store_path: Path) -> None:
    store = DataStore(store_path)
    store.create("k", {"a": 1})
    store.close()
    with pytest.raises(StoreClosedError):
        store.create("j", {"a": 1})
    with pytest.raises(StoreClosedError):
        store.read("k")
    with pytest.raises(StoreClosedError):
        store.delete("k")
    with pytest.raises(StoreClosedError):
        store.create(1, [1])  # type: ignore[arg-type]


# -- calls from a running event loop -----------------------------------------------------


async def test_constructor_in_event_loop_raises_blocking_call(store_path: Path) -> None:
    threads_before = len(loop_threads())
    with pytest.raises(BlockingCallError, match=r"event loop") as info:
        DataStore(store_path)
    assert isinstance(info.value, RuntimeError)
    assert isinstance(info.value, DataStoreError)
    assert not exists(store_path)
    assert len(loop_threads()) == threads_before
    # Nothing is held: the path can be opened at once.
    async with AsyncDataStore(store_path) as store:
        await store.create("k", {"a": 1})


async def test_methods_in_event_loop_raise_blocking_call(store_path: Path) -> None:
    store = await asyncio.to_thread(DataStore, store_path)
    try:
        await asyncio.to_thread(store.create, "k", {"a": 1})
        with pytest.raises(BlockingCallError, match=r"DataStore\.read\(\)"):
            store.read("k")
        with pytest.raises(BlockingCallError, match=r"create"):
            store.create("j", {"a": 1})
        with pytest.raises(BlockingCallError, match=r"delete"):
            store.delete("k")
        with pytest.raises(BlockingCallError, match=r"close"):
            store.close()
        # None of them ran, and the store is not wedged: it still answers from a thread.
        value = await asyncio.wait_for(asyncio.to_thread(store.read, "k"), timeout=30)
        assert value == {"a": 1}
        with pytest.raises(KeyNotFoundError):
            await asyncio.wait_for(asyncio.to_thread(store.read, "j"), timeout=30)
    finally:
        await asyncio.wait_for(asyncio.to_thread(store.close), timeout=30)
    with pytest.raises(StoreClosedError):
        await asyncio.to_thread(store.read, "k")


@pytest.mark.parametrize(
    ("method", "args"), [("read", ("k",)), ("create", ("k", {"a": 1})), ("delete", ("k",))]
)
async def test_blocking_call_message_names_the_async_alternative(
    store_path: Path, method: str, args: tuple[Any, ...]
) -> None:
    store = await asyncio.to_thread(DataStore, store_path)
    try:
        with pytest.raises(BlockingCallError) as info:
            getattr(store, method)(*args)
    finally:
        await asyncio.to_thread(store.close)
    message = str(info.value)
    assert f"DataStore.{method}() blocks" in message
    assert f"await store.{method}(...)" in message
    assert "{method}" not in message


async def test_with_statement_in_event_loop_raises_blocking_call(store_path: Path) -> None:
    with pytest.raises(BlockingCallError), DataStore(store_path):
        pass  # pragma: no cover - the constructor refuses


# -- threads -----------------------------------------------------------------------------


def run_threads(count: int, target: Any) -> list[Any]:
    """Run ``target(i)`` in ``count`` threads released together; return results or errors."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def main(i: int) -> None:
        barrier.wait()
        try:
            results[i] = ("ok", target(i))
        except BaseException as exc:
            results[i] = ("error", exc)

    threads = [threading.Thread(target=main, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    return results


def test_threads_racing_create_of_one_key_exactly_one_wins(store_path: Path) -> None:
    with DataStore(store_path) as store:
        for round_ in range(5):
            key = f"race-{round_}"
            results = run_threads(8, lambda i, key=key: store.create(key, {"thread": i}))
            winners = [i for i, (kind, _) in enumerate(results) if kind == "ok"]
            losers = [error for kind, error in results if kind == "error"]
            assert len(winners) == 1
            assert len(losers) == 7
            assert all(isinstance(error, KeyExistsError) for error in losers)
            assert store.read(key) == {"thread": winners[0]}


def test_threads_doing_mixed_ops_on_distinct_keys_stay_consistent(store_path: Path) -> None:
    def work(i: int) -> dict[str, dict[str, Any]]:
        rng = random.Random(i)
        model: dict[str, dict[str, Any]] = {}
        for step in range(500):
            key = f"t{i}-{rng.randrange(40)}"
            action = rng.random()
            if key not in model:
                if action < 0.1:
                    with pytest.raises(KeyNotFoundError):
                        store.read(key)
                else:
                    value = {"thread": i, "step": step}
                    store.create(key, value)
                    model[key] = value
            elif action < 0.4:
                with pytest.raises(KeyExistsError):
                    store.create(key, {"thread": i, "step": -1})
            elif action < 0.7:
                assert store.read(key) == model[key]
            else:
                store.delete(key)
                del model[key]
        return model

    with DataStore(store_path) as store:
        results = run_threads(8, work)
        assert all(kind == "ok" for kind, _ in results), results
        models = [model for _, model in results]
        for i, model in enumerate(models):
            for j in range(40):
                key = f"t{i}-{j}"
                if key in model:
                    assert store.read(key) == model[key]
                else:
                    with pytest.raises(KeyNotFoundError):
                        store.read(key)
    total = sum(len(model) for model in models)
    with DataStore(store_path) as store:
        assert f"keys={total}" in repr(store)
        for model in models:
            for key, value in model.items():
                assert store.read(key) == value


def test_close_from_another_thread(store_path: Path) -> None:
    store = DataStore(store_path)
    store.create("k", {"a": 1})
    results = run_threads(1, lambda _i: store.close())
    assert results == [("ok", None)]
    with pytest.raises(StoreClosedError):
        store.read("k")
    with DataStore(store_path) as again:
        assert again.read("k") == {"a": 1}


# -- garbage collection ------------------------------------------------------------------


def drop_and_collect(holder: list[DataStore]) -> None:
    """Drop the last reference to the stores in ``holder`` and run the garbage collector."""
    holder.clear()
    gc.collect()


def test_unclosed_datastore_warns_when_collected_and_releases_the_lock(store_path: Path) -> None:
    threads_before = len(loop_threads())
    holder = [DataStore(store_path)]
    holder[0].create("k", {"a": 1})
    assert len(loop_threads()) == threads_before + 1
    with pytest.warns(ResourceWarning, match=r"not closed"):
        drop_and_collect(holder)
    assert len(loop_threads()) == threads_before
    # The lock is free and the write was kept.
    with DataStore(store_path) as again:
        assert again.read("k") == {"a": 1}


def test_closed_datastore_does_not_warn_when_collected(store_path: Path) -> None:
    holder = [DataStore(store_path)]
    holder[0].close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drop_and_collect(holder)
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


# -- clock -------------------------------------------------------------------------------


def test_manual_clock_ttl(store_path: Path) -> None:
    clock = ManualClock(1_700_000_000.25)
    with DataStore(store_path, clock=clock) as store:
        store.create("k", {"a": 1}, ttl=30)
        store.create("forever", {"a": 2})
        clock.set(1_700_000_030.25 - 0.001)
        assert store.read("k") == {"a": 1}
        clock.set(1_700_000_030.25)
        with pytest.raises(KeyNotFoundError):
            store.read("k")
        with pytest.raises(KeyNotFoundError):
            store.delete("k")
        store.create("k", {"a": 3})
        assert store.read("k") == {"a": 3}
        clock.advance(10**9)
        assert store.read("forever") == {"a": 2}


def test_writes_wait_for_queue_room_when_the_queue_is_full(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write handed over from a thread finds the writer's queue full: it waits for room in
    a task of its own, and its caller still gets its outcome."""
    monkeypatch.setattr(Writer, "submit_nowait", lambda self, op: False)
    with DataStore(store_path) as store:
        store.create("k", {"v": 1})
        with pytest.raises(KeyExistsError):
            store.create("k", {"v": 2})  # refused by the early check in the calling thread
        store.delete("k")
        with pytest.raises(KeyNotFoundError):
            store.read("k")
        results = run_threads(8, lambda i: store.create(f"t{i}", {"i": i}))
        assert results == [("ok", None)] * 8
        assert [store.read(f"t{i}") for i in range(8)] == [{"i": i} for i in range(8)]

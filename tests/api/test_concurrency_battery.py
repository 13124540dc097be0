"""Many threads, cancelled tasks and a close in the middle: nothing torn, nothing hangs.

- 16 threads share one ``DataStore``, each with its own keys and its own model; every
  outcome matches the model and no call takes 10 s.
- Tasks doing creates, deletes and compactions are cancelled at random awaits; every key
  then holds its old value or its new one, never anything else, and the store keeps serving.
- ``close()`` racing in-flight operations finishes or refuses each of them, and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _internals import MIN_SEGMENT_MAX_BYTES

from aiokv import (
    AsyncDataStore,
    DataStore,
    DataStoreError,
    KeyExistsError,
    KeyNotFoundError,
    StoreClosedError,
)

pytestmark = pytest.mark.slow

THREADS = 16
OPS_PER_THREAD = 1_000  # CI size; --soak 10 makes it the 10,000 of the long run


def test_sixteen_threads_each_match_their_model(store_path: Path, soak: int) -> None:
    ops = OPS_PER_THREAD * soak
    store = DataStore(store_path, segment_max_bytes=MIN_SEGMENT_MAX_BYTES)
    mismatches: list[str] = []
    slowest = [0.0] * THREADS

    def worker(n: int) -> None:
        rng = random.Random(n)
        model: dict[str, dict[str, Any]] = {}
        keys = [f"t{n}-{i}" for i in range(40)]
        for step in range(ops):
            key = rng.choice(keys)
            kind = rng.choice(("create", "create", "read", "read", "delete"))
            value = {"t": n, "s": step, "pad": "x" * rng.randrange(0, 600)}
            started = time.monotonic()
            try:
                if kind == "create":
                    store.create(key, value)
                    outcome: Any = "ok"
                elif kind == "read":
                    outcome = store.read(key)
                else:
                    store.delete(key)
                    outcome = "ok"
            except (KeyExistsError, KeyNotFoundError) as exc:
                outcome = type(exc).__name__
            slowest[n] = max(slowest[n], time.monotonic() - started)
            if kind == "create":
                expected: Any = "KeyExistsError" if key in model else "ok"
                if expected == "ok":
                    model[key] = value
            elif kind == "read":
                expected = model.get(key, "KeyNotFoundError")
            else:
                expected = "ok" if model.pop(key, None) is not None else "KeyNotFoundError"
            if outcome != expected:
                mismatches.append(f"thread {n} step {step} {kind} {key}: {outcome!r}")
                return
        for key in keys:  # the end state, read back in full
            try:
                found: Any = store.read(key)
            except KeyNotFoundError:
                found = None
            if found != model.get(key):
                mismatches.append(f"thread {n} end {key}: {found!r} != {model.get(key)!r}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
            assert not thread.is_alive()
    finally:
        store.close()
    assert mismatches == []
    assert max(slowest) < 10.0, f"slowest call {max(slowest):.1f} s"


async def test_cancelled_writes_leave_old_or_new_values_and_the_writer_serving(
    store_path: Path, soak: int
) -> None:
    rng = random.Random(5)
    keys = [f"k{i}" for i in range(30)]
    # key -> every value it may hold (None: absent); a cancelled op adds its outcome.
    possible: dict[str, list[Any]] = {key: [None] for key in keys}
    cancelled = 0
    async with AsyncDataStore(
        store_path, segment_max_bytes=MIN_SEGMENT_MAX_BYTES, compact_dead_ratio=0.1
    ) as store:

        async def settle(key: str) -> Any:
            try:
                return await store.read(key)
            except KeyNotFoundError:
                return None

        for round_ in range(40 * soak):
            tasks: list[tuple[str, Any, asyncio.Task[Any]]] = []
            for key in rng.sample(keys, 10):
                current = await settle(key)
                if current is None:
                    value: Any = {"r": round_, "pad": "v" * rng.randrange(0, 2000)}
                    task = asyncio.ensure_future(store.create(key, value))
                else:
                    value = None
                    task = asyncio.ensure_future(store.delete(key))
                possible[key] = [current, value]
                tasks.append((key, value, task))
            compaction = asyncio.ensure_future(store.compact())
            for _ in range(rng.randrange(0, 6)):
                await asyncio.sleep(0)
            for _key, _value, task in tasks:
                if rng.random() < 0.5:
                    cancelled += task.cancel()
            if rng.random() < 0.5:
                compaction.cancel()
            for key, value, task in tasks:
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                else:
                    possible[key] = [value]  # acknowledged: only the new state
            with contextlib.suppress(asyncio.CancelledError):
                await compaction
            for key in keys:
                found = await settle(key)
                assert found in possible[key], (round_, key, found, possible[key])
                possible[key] = [found]
        await store.create("after", {"still": "serving"})
        assert await store.read("after") == {"still": "serving"}
    assert cancelled > 0
    async with AsyncDataStore(store_path) as store:  # and it all survives a reopen
        for key in keys:
            try:
                found = await store.read(key)
            except KeyNotFoundError:
                found = None
            assert found == possible[key][0], key


@pytest.mark.parametrize("in_flight", [1, 50, 500])
async def test_close_amid_operations_answers_each_and_returns(
    store_path: Path, in_flight: int
) -> None:
    store = AsyncDataStore(store_path)
    await store.open()
    for i in range(0, in_flight, 2):
        await store.create(f"old{i}", {"i": i})

    async def one(i: int) -> str:
        try:
            if i % 2:
                await store.create(f"new{i}", {"i": i})
            else:
                await store.delete(f"old{i}")
        except StoreClosedError:
            return "refused"
        return "done"

    ops = [asyncio.ensure_future(one(i)) for i in range(in_flight)]
    await asyncio.sleep(0)
    await asyncio.wait_for(store.close(), 10)
    outcomes = await asyncio.wait_for(asyncio.gather(*ops), 10)
    async with AsyncDataStore(store_path) as again:
        for i, outcome in enumerate(outcomes):
            key = f"new{i}" if i % 2 else f"old{i}"
            try:
                await again.read(key)
                present = True
            except KeyNotFoundError:
                present = False
            # A create that was done is there; a delete that was done took its key away;
            # a refused one changed nothing.
            assert present == ((outcome == "done") == bool(i % 2)), (i, outcome)


def test_datastore_calls_racing_close_never_hang(store_path: Path) -> None:
    store = DataStore(store_path)
    errors: list[BaseException] = []
    started = threading.Barrier(5)

    def hammer(n: int) -> None:
        started.wait()
        i = 0
        while True:
            try:
                store.create(f"h{n}-{i}", {"i": i})
                store.read(f"h{n}-{i}")
            except StoreClosedError:
                return
            except DataStoreError as exc:  # anything else is a failure
                errors.append(exc)
                return
            i += 1

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    started.wait()
    time.sleep(0.05)
    store.close()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()
    assert errors == []

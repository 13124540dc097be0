"""create / read / delete semantics, persistence, lifecycle, options and concurrency."""

from __future__ import annotations

import asyncio
import copy
import gc
import time
from pathlib import Path
from typing import Any

import pytest

from aiokv import (
    AsyncDataStore,
    InvalidOptionError,
    KeyExistsError,
    KeyNotFoundError,
    ManualClock,
    StoreClosedError,
    StoreLockedError,
)

pytestmark = pytest.mark.purepy


def exists(path: Path) -> bool:
    """Whether anything is at ``path`` (a symlink counts too)."""
    return path.is_symlink() or path.exists()


NESTED_VALUES = [
    pytest.param({}, id="empty"),
    pytest.param({"": ""}, id="empty-key-and-string"),
    pytest.param({"text": 'héllo wörld — 中文 — 😀 — \u200b — \x00 — \n\t"\\'}, id="unicode"),
    pytest.param({"pi": 3.141592653589793, "tiny": 5e-324, "big": 1.7976931348623157e308}, id="fl"),
    pytest.param({"neg": -0.0, "third": 1 / 3, "sum": 0.1 + 0.2}, id="float-repr"),
    pytest.param({"big": 2**200, "neg": -(3**150), "zero": 0}, id="big-ints"),
    pytest.param({"t": True, "f": False, "n": None}, id="literals"),
    pytest.param(
        {
            "user": {"name": "Ada", "tags": ["a", "b", {"deep": [1, [2, [3, {}]]]}]},
            "empty": {"list": [], "dict": {}},
            "mixed": [1, 2.5, "three", None, True, [], {}],
        },
        id="nested",
    ),
]


@pytest.mark.parametrize("value", NESTED_VALUES)
async def test_value_round_trips_equal_and_typed(store: AsyncDataStore, value: Any) -> None:
    await store.create("k", value)
    got = await store.read("k")
    assert got == value
    assert repr(got) == repr(value)  # same types: ints stay ints, floats stay floats


@pytest.mark.parametrize("value", NESTED_VALUES)
async def test_value_round_trips_after_reopen(
    store_path: Path, clock: ManualClock, value: Any
) -> None:
    async with AsyncDataStore(store_path, clock=clock) as store:
        await store.create("k", value)
    async with AsyncDataStore(store_path, clock=clock) as store:
        got = await store.read("k")
    assert got == value
    assert repr(got) == repr(value)


async def test_read_returns_a_fresh_dict_each_time(store: AsyncDataStore) -> None:
    await store.create("k", {"list": [1, 2], "inner": {"a": 1}})
    first = await store.read("k")
    first["added"] = True
    first["list"].append(3)
    first["inner"]["a"] = 99
    second = await store.read("k")
    assert second == {"list": [1, 2], "inner": {"a": 1}}
    assert second is not first
    assert second["inner"] is not first["inner"]


async def test_mutating_the_original_after_create_changes_nothing(store: AsyncDataStore) -> None:
    original: dict[str, Any] = {"list": [1, 2], "inner": {"a": 1}}
    snapshot = copy.deepcopy(original)
    await store.create("k", original)
    original["list"].append(3)
    original["inner"]["a"] = 99
    original["new"] = "x"
    assert await store.read("k") == snapshot


async def test_create_on_live_key_raises_and_keeps_old_value(store: AsyncDataStore) -> None:
    await store.create("k", {"v": "old"})
    with pytest.raises(KeyExistsError, match=r"'k'"):
        await store.create("k", {"v": "new"})
    with pytest.raises(KeyExistsError):
        await store.create("k", {"v": "newer"}, ttl=5)
    assert await store.read("k") == {"v": "old"}


async def test_key_exists_survives_reopen(store_path: Path, clock: ManualClock) -> None:
    async with AsyncDataStore(store_path, clock=clock) as store:
        await store.create("k", {"v": "old"})
    async with AsyncDataStore(store_path, clock=clock) as store:
        with pytest.raises(KeyExistsError):
            await store.create("k", {"v": "new"})
        assert await store.read("k") == {"v": "old"}


async def test_delete_then_create_again(store: AsyncDataStore) -> None:
    await store.create("k", {"n": 1})
    await store.delete("k")
    with pytest.raises(KeyNotFoundError):
        await store.read("k")
    await store.create("k", {"n": 2})
    assert await store.read("k") == {"n": 2}
    await store.delete("k")
    await store.create("k", {"n": 3})
    assert await store.read("k") == {"n": 3}


async def test_missing_key_raises_key_not_found(store: AsyncDataStore) -> None:
    with pytest.raises(KeyNotFoundError) as info:
        await store.read("missing")
    assert isinstance(info.value, KeyError)
    with pytest.raises(KeyError):
        await store.delete("missing")


async def test_deleted_key_raises_key_not_found(store: AsyncDataStore) -> None:
    await store.create("k", {"n": 1})
    await store.delete("k")
    with pytest.raises(KeyNotFoundError, match=r"'k' not found"):
        await store.read("k")
    with pytest.raises(KeyNotFoundError, match=r"'k' not found"):
        await store.delete("k")


async def test_many_keys_persist_across_reopen_and_deleted_stay_gone(
    store_path: Path, clock: ManualClock
) -> None:
    expected: dict[str, dict[str, Any]] = {}
    async with AsyncDataStore(store_path, clock=clock) as store:
        for i in range(300):
            await store.create(f"key-{i}", {"i": i, "s": "v" * (i % 40)})
            expected[f"key-{i}"] = {"i": i, "s": "v" * (i % 40)}
        for i in range(0, 300, 3):
            await store.delete(f"key-{i}")
            del expected[f"key-{i}"]
        # Re-created after a delete: the newest record must win on reopen.
        for i in range(0, 300, 9):
            await store.create(f"key-{i}", {"again": i})
            expected[f"key-{i}"] = {"again": i}
    async with AsyncDataStore(store_path, clock=clock) as store:
        assert f"keys={len(expected)}" in repr(store)
        for i in range(300):
            key = f"key-{i}"
            if key in expected:
                assert await store.read(key) == expected[key]
            else:
                with pytest.raises(KeyNotFoundError):
                    await store.read(key)
        # Deleted keys are absent, not merely unreadable: they can be created afresh.
        await store.create("key-3", {"fresh": True})
    async with AsyncDataStore(store_path, clock=clock) as store:
        assert await store.read("key-3") == {"fresh": True}
        assert f"keys={len(expected) + 1}" in repr(store)


# -- lifecycle ---------------------------------------------------------------------------


async def test_operations_before_open_raise_store_closed(store_path: Path) -> None:
    store = AsyncDataStore(store_path)
    with pytest.raises(StoreClosedError):
        await store.create("k", {"a": 1})
    with pytest.raises(StoreClosedError):
        await store.read("k")
    with pytest.raises(StoreClosedError):
        await store.delete("k")
    assert not exists(store_path)  # nothing touched the disk
    await store.close()


async def test_operations_after_close_raise_store_closed(store_path: Path) -> None:
    store = AsyncDataStore(store_path)
    await store.open()
    await store.create("k", {"a": 1})
    await store.close()
    with pytest.raises(StoreClosedError):
        await store.create("j", {"a": 1})
    with pytest.raises(StoreClosedError):
        await store.read("k")
    with pytest.raises(StoreClosedError):
        await store.delete("k")


@pytest.mark.parametrize("opened", [False, True], ids=["before-open", "after-close"])
async def test_closed_check_comes_before_argument_validation(
    store_path: Path, opened: bool
) -> None:
    store = AsyncDataStore(store_path)
    if opened:
        await store.open()
        await store.close()
    with pytest.raises(StoreClosedError):
        await store.create(123, [1], ttl=-1)  # type: ignore[arg-type]
    with pytest.raises(StoreClosedError):
        await store.read("")
    with pytest.raises(StoreClosedError):
        await store.delete(None)  # type: ignore[arg-type]


async def test_close_twice_is_fine(store_path: Path) -> None:
    store = AsyncDataStore(store_path)
    await store.open()
    await store.close()
    await store.close()
    assert "closed" in repr(store)


async def test_close_never_opened_store_is_fine(store_path: Path) -> None:
    store = AsyncDataStore(store_path)
    await store.close()
    await store.close()
    with pytest.raises(StoreClosedError):
        await store.open()
    assert not exists(store_path)


async def test_open_after_close_raises_store_closed(store_path: Path) -> None:
    store = AsyncDataStore(store_path)
    async with store:
        await store.create("k", {"a": 1})
    with pytest.raises(StoreClosedError):
        await store.open()
    with pytest.raises(StoreClosedError):
        async with store:
            pass
    # A new object reopens the same directory.
    async with AsyncDataStore(store_path) as again:
        assert await again.read("k") == {"a": 1}


async def test_explicit_open_and_close(store_path: Path) -> None:
    store = AsyncDataStore(store_path)
    await store.open()
    try:
        await store.create("k", {"a": 1})
        assert await store.read("k") == {"a": 1}
    finally:
        await store.close()
    async with AsyncDataStore(store_path) as again:
        assert await again.read("k") == {"a": 1}


async def test_open_in_one_task_close_in_another(store_path: Path) -> None:
    store = AsyncDataStore(store_path)
    await asyncio.create_task(store.open())
    await asyncio.create_task(store.create("k", {"a": 1}))
    await asyncio.create_task(store.close())
    assert "closed" in repr(store)
    with pytest.raises(StoreClosedError):
        await store.read("k")
    # The lock was released and the write is there.
    async with AsyncDataStore(store_path) as again:
        assert await again.read("k") == {"a": 1}


async def test_second_open_of_same_path_is_locked(store_path: Path) -> None:
    async with AsyncDataStore(store_path) as store:
        await store.create("k", {"a": 1})
        other = AsyncDataStore(store_path)
        with pytest.raises(StoreLockedError):
            await other.open()
        await other.close()
        assert await store.read("k") == {"a": 1}


async def test_repr_shows_path_and_state(store_path: Path, clock: ManualClock) -> None:
    store = AsyncDataStore(store_path, clock=clock)
    assert str(store_path) in repr(store)
    assert "new" in repr(store)
    await store.open()
    try:
        await store.create("a", {"x": 1})
        await store.create("b", {"x": 2})
        await store.create("c", {"x": 3})
        await store.delete("b")
        text = repr(store)
        assert text == f"<AsyncDataStore {str(store_path)!r} open keys=2 segments=1>"
    finally:
        await store.close()
    assert repr(store) == f"<AsyncDataStore {str(store_path)!r} closed>"


async def test_path_is_absolute_for_a_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cwd = Path.cwd()
    store = AsyncDataStore("rel/store")
    assert isinstance(store.path, Path)
    assert store.path.is_absolute()
    assert store.path == cwd / "rel" / "store"
    await store.open()
    try:
        # A chdir after construction does not move the store.
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        await store.create("k", {"a": 1})
    finally:
        await store.close()
    assert (cwd / "rel" / "store" / "LOCK").is_file()
    assert not (elsewhere / "rel").exists()
    async with AsyncDataStore(cwd / "rel" / "store") as again:
        assert await again.read("k") == {"a": 1}


async def test_path_is_absolute_for_an_absolute_path(store_path: Path) -> None:
    store = AsyncDataStore(store_path)
    assert store.path == store_path
    assert isinstance(store.path, Path)


# -- concurrency -------------------------------------------------------------------------


async def test_concurrent_creates_of_one_key_exactly_one_wins(store: AsyncDataStore) -> None:
    results = await asyncio.gather(
        *(store.create("race", {"task": i}) for i in range(200)), return_exceptions=True
    )
    winners = [i for i, result in enumerate(results) if result is None]
    losers = [result for result in results if result is not None]
    assert len(winners) == 1
    assert len(losers) == 199
    assert all(isinstance(result, KeyExistsError) for result in losers)
    assert await store.read("race") == {"task": winners[0]}


async def test_concurrent_creates_of_one_key_winner_persists(
    store_path: Path, clock: ManualClock
) -> None:
    async with AsyncDataStore(store_path, clock=clock) as store:
        results = await asyncio.gather(
            *(store.create("race", {"task": i}) for i in range(50)), return_exceptions=True
        )
    winners = [i for i, result in enumerate(results) if result is None]
    assert len(winners) == 1
    async with AsyncDataStore(store_path, clock=clock) as store:
        assert await store.read("race") == {"task": winners[0]}
        assert "keys=1" in repr(store)


async def test_concurrent_create_and_delete_of_distinct_keys(
    store_path: Path, clock: ManualClock
) -> None:
    async def life(i: int) -> None:
        key = f"k{i}"
        await store.create(key, {"v": 1, "i": i})
        assert await store.read(key) == {"v": 1, "i": i}
        await store.delete(key)
        await store.create(key, {"v": 2, "i": i})
        if i % 2:
            await store.delete(key)

    async with AsyncDataStore(store_path, clock=clock) as store:
        await asyncio.gather(*(life(i) for i in range(400)))
        for i in range(400):
            if i % 2:
                with pytest.raises(KeyNotFoundError):
                    await store.read(f"k{i}")
            else:
                assert await store.read(f"k{i}") == {"v": 2, "i": i}
    async with AsyncDataStore(store_path, clock=clock) as store:
        assert "keys=200" in repr(store)
        for i in range(0, 400, 2):
            assert await store.read(f"k{i}") == {"v": 2, "i": i}


# -- options -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_size": 2**20 - 1}, r"max_size.*1048576.*1048575"),
        ({"max_size": 0}, r"max_size"),
        ({"max_size": -(2**30)}, r"max_size"),
        ({"max_size": 2.0**30}, r"max_size must be an int, not float"),
        ({"max_size": "1GiB"}, r"max_size must be an int, not str"),
        ({"max_size": True}, r"max_size must be an int, not bool"),
        ({"max_size": None}, r"max_size must be an int, not NoneType"),
        ({"durability": "sync"}, r"durability.*'sync'"),
        ({"durability": "FSYNC"}, r"durability.*'FSYNC'"),
        ({"durability": ""}, r"durability"),
        ({"durability": None}, r"durability"),
        ({"reaper_interval_s": -1}, r"reaper_interval_s.*-1"),
        ({"reaper_interval_s": -0.001}, r"reaper_interval_s"),
        ({"reaper_interval_s": "1"}, r"reaper_interval_s"),
        ({"max_size": 2**40, "segment_max_bytes": 2**32}, r"segment_max_bytes.*under 4294967296"),
    ],
)
def test_invalid_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidOptionError, match=message) as info:
        AsyncDataStore("unused-path", **options)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "options",
    [
        {"max_size": 2**20},
        {"max_size": 2**40},
        {"max_size": 2**40, "segment_max_bytes": 2**32 - 1},
        {"durability": "flush"},
        {"durability": "fsync"},
        {"reaper_interval_s": 0.01},
        {"reaper_interval_s": 60},
    ],
)
def test_valid_options_are_accepted(options: dict[str, Any]) -> None:
    AsyncDataStore("unused-path", **options)


def test_invalid_option_touches_nothing(store_path: Path) -> None:
    with pytest.raises(InvalidOptionError):
        AsyncDataStore(store_path, max_size=1000)
    assert not exists(store_path)


async def test_smallest_max_size_store_works(store_path: Path) -> None:
    async with AsyncDataStore(store_path, max_size=2**20) as store:
        await store.create("k", {"a": 1})
        assert await store.read("k") == {"a": 1}


# -- the event loop stays responsive -----------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("durability", ["flush", "fsync"])
async def test_event_loop_heartbeat_stays_under_50ms(store_path: Path, durability: str) -> None:
    gaps: list[float] = []
    stop = asyncio.Event()

    async def heartbeat() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    value = {"payload": "x" * 1000}
    count, batch = 10_000, 100
    # A full garbage collection scans every object the test run holds, which takes tens of
    # milliseconds here and is none of the store's doing: the objects that exist now are moved
    # out of the collector's sight, so only what the workload itself allocates is scanned.
    gc.collect()
    gc.freeze()
    try:
        async with AsyncDataStore(store_path, durability=durability) as store:  # type: ignore[arg-type]
            beat = asyncio.create_task(heartbeat())
            await asyncio.sleep(0.02)
            for start in range(0, count, batch):
                await asyncio.gather(
                    *(store.create(f"key-{i}", value) for i in range(start, start + batch))
                )
            for start in range(0, count, batch):
                values = await asyncio.gather(
                    *(store.read(f"key-{i}") for i in range(start, start + batch))
                )
                assert values == [value] * batch
            stop.set()
            await beat
            assert f"keys={count}" in repr(store)
    finally:
        gc.unfreeze()
    assert len(gaps) > 10
    assert max(gaps) < 0.050, f"longest event-loop stall {max(gaps) * 1000:.1f} ms"


async def test_a_tight_read_loop_lets_other_tasks_run(store: AsyncDataStore) -> None:
    # A read never waits for I/O, so without a checkpoint a loop of reads would starve every
    # other task on the loop until it ended.
    await store.create("k", {"v": 1})
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    ticks_before = ticks
    for _ in range(3200):
        await store.read("k")
    done = True
    await task
    assert ticks - ticks_before >= 50

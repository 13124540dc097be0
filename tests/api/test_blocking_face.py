"""``BlockingStore``: the blocking face is generic over any ``AsyncStore``.

Most of it is driven here over ``DictStore``, the least a backend can be (a dict, on the loop),
so that nothing the face does can lean on the local engine; ``DataStore``'s own behaviour is
tested in test_sync.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from _internals import AsyncStore, BlockingStore

from aiokv import (
    AsyncDataStore,
    BlockingCallError,
    CorruptionError,
    DataStore,
    DataStoreError,
    InvalidKeyError,
    InvalidTTLError,
    InvalidValueError,
    KeyExistsError,
    KeyNotFoundError,
    StoreClosedError,
    StoreFullError,
    StoreIOError,
    StoreLockedError,
    StoreStats,
)

LOOP_THREAD = "aiokv-loop"


class DictStore:
    """An ``AsyncStore`` kept in a dict, with the real aiokv errors.

    Every call notes the thread it ran on, and checks that it runs on the loop that opened it.
    ``damaged`` keys read as corrupt; ``fail_close`` makes the close fail as a failed final
    write would.
    """

    def __init__(self, max_keys: int = 100, fail_open: DataStoreError | None = None) -> None:
        self.data: dict[str, str] = {}
        self.state = "new"
        self.max_keys = max_keys
        self.fail_open = fail_open
        self.fail_close = False
        self.damaged: set[str] = set()
        self.dead = 0
        self.closes = 0
        self.threads: set[str] = set()
        self.backups: dict[str, dict[str, str]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        keys = f" keys={len(self.data)}" if self.state == "open" else ""
        return f"<DictStore {self.state}{keys}>"

    def _enter(self) -> None:
        self.threads.add(threading.current_thread().name)
        assert asyncio.get_running_loop() is self._loop

    def _check_open(self, key: object = None) -> None:
        self._enter()
        if self.state != "open":
            raise StoreClosedError(f"the store is {self.state}, not open")
        if key is not None and not (isinstance(key, str) and 1 <= len(key) <= 32):
            raise InvalidKeyError(f"bad key {key!r}")

    async def open(self) -> None:
        if self.state == "closed":
            raise StoreClosedError("this store was closed")
        if self.fail_open is not None:
            raise self.fail_open
        self._loop = asyncio.get_running_loop()
        self._enter()
        self.state = "open"

    async def close(self) -> None:
        if self.state != "closed":
            self._enter()
        self.closes += 1
        self.state = "closed"
        if self.fail_close:
            self.fail_close = False
            raise StoreIOError("the last write failed")

    async def __aenter__(self) -> DictStore:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def create(self, key: str, value: dict[str, Any], ttl: int | None = None) -> None:
        self._check_open(key)
        if ttl is not None and (type(ttl) is not int or not 1 <= ttl < 2**31):
            raise InvalidTTLError(f"bad ttl {ttl!r}")
        if not isinstance(value, dict):
            raise InvalidValueError("the value is not a dict")
        if key in self.data:
            raise KeyExistsError(f"key {key!r} already exists")
        if len(self.data) >= self.max_keys:
            raise StoreFullError("no room")
        await asyncio.sleep(0)  # a real backend waits for its write
        self.data[key] = json.dumps(value)

    async def read(self, key: str) -> dict[str, Any]:
        self._check_open(key)
        if key not in self.data:
            raise KeyNotFoundError(f"key {key!r} not found")
        if key in self.damaged:
            raise CorruptionError(f"the value of {key!r} is damaged")
        value: dict[str, Any] = json.loads(self.data[key])
        return value

    async def delete(self, key: str) -> None:
        self._check_open(key)
        if key not in self.data:
            raise KeyNotFoundError(f"key {key!r} not found")
        self.dead += len(self.data.pop(key))

    def keys(self, prefix: str = "") -> AsyncIterator[str]:
        self._check_open()
        if not isinstance(prefix, str) or len(prefix) > 32:
            raise InvalidKeyError(f"bad prefix {prefix!r}")
        return self._keys(prefix)

    async def _keys(self, prefix: str) -> AsyncIterator[str]:
        for key in [key for key in self.data if key.startswith(prefix)]:
            self._check_open()
            yield key

    def items(self, prefix: str = "") -> AsyncIterator[tuple[str, dict[str, Any]]]:
        return self._items(self.keys(prefix))

    async def _items(self, keys: AsyncIterator[str]) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        async for key in keys:
            with contextlib.suppress(KeyNotFoundError):  # deleted meanwhile: passed over
                yield key, await self.read(key)

    async def exists(self, key: str) -> bool:
        self._check_open(key)
        return key in self.data

    async def read_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        listed = list(keys)
        for key in listed:
            self._check_open(key)
        return {key: json.loads(self.data[key]) for key in listed if key in self.data}

    async def touch(self, key: str, ttl: int | None) -> None:
        self._check_open(key)
        if ttl is not None and (type(ttl) is not int or not 1 <= ttl < 2**31):
            raise InvalidTTLError(f"bad ttl {ttl!r}")
        if key not in self.data:
            raise KeyNotFoundError(f"key {key!r} not found")

    async def create_many(
        self,
        items: Mapping[str, dict[str, Any]] | Iterable[tuple[str, dict[str, Any]]],
        *,
        ttl: int | None = None,
    ) -> None:
        pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
        for key, _value in pairs:
            self._check_open(key)
            if key in self.data:
                raise KeyExistsError(f"keys already exist: {key!r}")
        self.data.update((key, json.dumps(value)) for key, value in pairs)

    async def delete_many(self, keys: Iterable[str]) -> int:
        listed = [key for key in dict.fromkeys(keys) if key in self.data]
        for key in listed:
            self.dead += len(self.data.pop(key))
        return len(listed)

    async def export_jsonl(self, path: str | os.PathLike[str], *, prefix: str = "") -> int:
        self._check_open()
        lines = [
            json.dumps({"key": key, "value": json.loads(value), "expires_at": None}) + "\n"
            for key, value in self.data.items()
            if key.startswith(prefix)
        ]
        Path(path).write_text("".join(lines), encoding="utf-8")
        return len(lines)

    async def import_jsonl(
        self, path: str | os.PathLike[str], *, skip_existing: bool = False
    ) -> int:
        self._check_open()
        entries = [json.loads(line) for line in Path(path).read_text("utf-8").splitlines()]
        fresh = [e for e in entries if not (skip_existing and e["key"] in self.data)]
        await self.create_many([(e["key"], e["value"]) for e in fresh])
        return len(fresh)

    async def backup(self, dest: str | os.PathLike[str]) -> None:
        self._check_open()
        self.backups[os.fspath(dest)] = dict(self.data)

    async def compact(self) -> int:
        self._check_open()
        reclaimed, self.dead = self.dead, 0
        return reclaimed

    async def stats(self) -> StoreStats:
        self._check_open()
        live = sum(map(len, self.data.values()))
        return StoreStats(len(self.data), live, self.dead, live + self.dead, 1, None)


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == LOOP_THREAD]


class WatchedPortal:
    """Stands in for a face's portal: notes the name of each function called through it, and
    runs ``before(func)`` first if given."""

    def __init__(self, portal: Any, before: Callable[[Any], None] | None = None) -> None:
        self.portal = portal
        self.before = before
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.portal, name)

    def call(self, func: Callable[..., Any], *args: Any) -> Any:
        self.calls.append(getattr(func, "__name__", repr(func)))
        if self.before is not None:
            self.before(func)
        return self.portal.call(func, *args)


@pytest.fixture
def backend() -> DictStore:
    return DictStore()


@pytest.fixture
def face(backend: DictStore) -> Iterator[BlockingStore[DictStore]]:
    store = BlockingStore(backend)
    try:
        yield store
    finally:
        store.close()


# -- the contract --------------------------------------------------------------------------


def test_both_backends_meet_the_contract(store_path: Path) -> None:
    # isinstance checks the methods are there; mypy checks their signatures, through
    # DataStore's base class BlockingStore[AsyncDataStore], whose parameter is bound to
    # AsyncStore.
    assert isinstance(AsyncDataStore(store_path), AsyncStore)
    assert isinstance(DictStore(), AsyncStore)
    assert not isinstance(object(), AsyncStore)
    assert issubclass(DataStore, BlockingStore)


# -- the face over any store ---------------------------------------------------------------


def test_exists_read_many_and_touch_go_through_the_face(
    face: BlockingStore[DictStore], backend: DictStore
) -> None:
    face.create("a", {"n": 1})
    assert face.exists("a")
    assert not face.exists("b")
    assert face.read_many(iter(["a", "b"])) == {"a": {"n": 1}}
    with pytest.raises(InvalidKeyError, match="not one str"):
        face.read_many("a")
    face.touch("a", 10)
    with pytest.raises(KeyNotFoundError):
        face.touch("b", 10)
    with pytest.raises(InvalidTTLError):
        face.touch("a", 0)
    face.create_many({"m1": {"n": 1}, "m2": {"n": 2}})
    face.create_many(iter([("m3", {"n": 3})]))
    assert face.delete_many(["m1", "m3", "nope", "m1"]) == 2
    with pytest.raises(InvalidKeyError, match="not one str"):
        face.delete_many("m2")
    face.backup("elsewhere")
    assert set(backend.backups["elsewhere"]) == {"a", "m2"}


def test_export_and_import_go_through_the_face(
    face: BlockingStore[DictStore], backend: DictStore, tmp_path: Path
) -> None:
    face.create_many({"a": {"n": 1}, "b": {"n": 2}})
    assert face.export_jsonl(tmp_path / "out.jsonl", prefix="a") == 1
    face.delete("a")
    assert face.import_jsonl(tmp_path / "out.jsonl") == 1
    assert face.import_jsonl(tmp_path / "out.jsonl", skip_existing=True) == 0
    assert face.read("a") == {"n": 1}
    assert backend.threads == {LOOP_THREAD}
    assert backend.threads == {LOOP_THREAD}


def test_operations_go_through_the_face_to_the_loop_thread(
    face: BlockingStore[DictStore], backend: DictStore
) -> None:
    assert repr(face) == "<BlockingStore open keys=0>"
    face.create("k", {"a": [1, 2]})
    face.create("t", {"b": 1}, ttl=30)
    value = face.read("k")
    assert value == {"a": [1, 2]}
    value["a"].append(3)
    assert face.read("k") == {"a": [1, 2]}
    assert repr(face) == "<BlockingStore open keys=2>"
    face.delete("t")
    stats = face.stats()
    assert (stats.live_keys, stats.dead_bytes) == (1, len('{"b": 1}'))
    assert face.compact() == len('{"b": 1}')
    assert face.stats().dead_bytes == 0
    # Opened, and every call answered, on the one loop thread (DictStore asserts the loop).
    assert backend.threads == {LOOP_THREAD}


def test_the_store_is_opened_by_the_face(backend: DictStore) -> None:
    threads_before = len(loop_threads())
    face = BlockingStore(backend)
    try:
        assert backend.state == "open"
        assert len(loop_threads()) == threads_before + 1
    finally:
        face.close()
    assert backend.state == "closed"
    assert backend.closes == 1
    assert len(loop_threads()) == threads_before


def test_a_store_that_fails_to_open_leaves_no_thread() -> None:
    threads_before = len(loop_threads())
    with pytest.raises(StoreLockedError, match="held elsewhere"):
        BlockingStore(DictStore(fail_open=StoreLockedError("held elsewhere")))
    assert len(loop_threads()) == threads_before


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.create("k", {"v": 2}), KeyExistsError),
        (lambda s: s.read("missing"), KeyNotFoundError),
        (lambda s: s.delete("missing"), KeyNotFoundError),
        (lambda s: s.create("", {"v": 1}), InvalidKeyError),
        (lambda s: s.read("x" * 33), InvalidKeyError),
        (lambda s: s.create("j", {"v": 1}, ttl=0), InvalidTTLError),
        (lambda s: s.create("j", ["not", "a", "dict"]), InvalidValueError),
        (lambda s: s.create("full", {"v": 1}), StoreFullError),
        (lambda s: s.read("damaged"), CorruptionError),
    ],
)
def test_errors_pass_through_the_face_as_raised(
    backend: DictStore,
    call: Callable[[BlockingStore[DictStore]], object],
    error: type[DataStoreError],
) -> None:
    backend.max_keys = 2
    with BlockingStore(backend) as face:
        face.create("k", {"v": 1})
        face.create("damaged", {"v": 1})
        backend.damaged.add("damaged")
        with pytest.raises(error) as info:
            call(face)
        assert type(info.value) is error  # not wrapped, not turned into another error
        assert face.read("k") == {"v": 1}  # and the face goes on working


def test_a_close_that_fails_still_closes(backend: DictStore) -> None:
    threads_before = len(loop_threads())
    face = BlockingStore(backend)
    backend.fail_close = True
    with pytest.raises(StoreIOError, match="the last write failed"):
        face.close()
    assert len(loop_threads()) == threads_before
    face.close()  # closed already: nothing to do
    assert backend.closes == 1
    with pytest.raises(StoreClosedError):
        face.read("k")


# -- calls from a running event loop -------------------------------------------------------


async def test_construction_in_an_event_loop_is_refused(backend: DictStore) -> None:
    threads_before = len(loop_threads())
    with pytest.raises(BlockingCallError, match=r"BlockingStore\.__init__\(\) blocks"):
        BlockingStore(backend)
    assert backend.state == "new"  # never opened
    assert len(loop_threads()) == threads_before


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("create", ("k", {"v": 1})),
        ("read", ("k",)),
        ("delete", ("k",)),
        ("compact", ()),
        ("stats", ()),
        ("close", ()),
    ],
)
async def test_calls_in_an_event_loop_are_refused(
    backend: DictStore, method: str, args: tuple[Any, ...]
) -> None:
    face = await asyncio.to_thread(BlockingStore, backend)
    try:
        await asyncio.to_thread(face.create, "k", {"v": 0})
        with pytest.raises(BlockingCallError) as info:
            getattr(face, method)(*args)
        assert isinstance(info.value, RuntimeError)
        message = str(info.value)
        assert f"BlockingStore.{method}() blocks" in message
        assert f"use DictStore (await store.{method}(...))" in message
        # Nothing ran, and the face still answers from a thread.
        value = await asyncio.wait_for(asyncio.to_thread(face.read, "k"), timeout=30)
        assert value == {"v": 0}
        assert backend.state == "open"
    finally:
        await asyncio.wait_for(asyncio.to_thread(face.close), timeout=30)


# -- closing -------------------------------------------------------------------------------


def test_close_twice_is_fine(face: BlockingStore[DictStore], backend: DictStore) -> None:
    face.close()
    face.close()
    assert backend.closes == 1


def close_from_two_threads(face: BlockingStore[DictStore], store: DictStore) -> list[str]:
    """Close ``face`` from this thread and another at once; the store's state as each saw it
    when its close() returned."""
    barrier = threading.Barrier(2)
    seen: list[str] = []

    def close() -> None:
        barrier.wait()
        face.close()
        seen.append(store.state)

    other = threading.Thread(target=close)
    other.start()
    close()
    other.join(30)
    assert not other.is_alive()
    return seen


def test_close_from_two_threads_at_once_closes_once_and_both_wait() -> None:
    for _ in range(20):
        store = DictStore()
        # Neither close() returns before the store is closed.
        assert close_from_two_threads(BlockingStore(store), store) == ["closed", "closed"]
        assert store.closes == 1


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("create", ("j", {"v": 1})),
        ("read", ("k",)),
        ("delete", ("k",)),
        ("compact", ()),
        ("stats", ()),
    ],
)
def test_use_after_close_raises_store_closed(
    backend: DictStore, method: str, args: tuple[Any, ...]
) -> None:
    face = BlockingStore(backend)
    face.create("k", {"v": 1})
    face.close()
    with pytest.raises(StoreClosedError):
        getattr(face, method)(*args)


def test_calls_racing_close_answer_or_raise_store_closed(backend: DictStore) -> None:
    face = BlockingStore(backend)
    face.create("k", {"v": 1})
    outcomes: list[str] = []
    started = threading.Barrier(4)

    def reader() -> None:
        started.wait()
        while True:
            try:
                value = face.read("k")
            except StoreClosedError:
                outcomes.append("closed")
                return
            except BaseException as exc:  # the portal's own RuntimeError, say
                outcomes.append(f"error {exc!r}")
                return
            if value != {"v": 1}:
                outcomes.append(f"wrong {value!r}")
                return

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for thread in threads:
        thread.start()
    started.wait()
    face.close()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive()
    assert outcomes == ["closed"] * 3


def test_a_call_overtaken_by_close_raises_store_closed(backend: DictStore) -> None:
    """A call that found the face open, and reaches the portal only once close() has stopped
    it, is told the store is closed (not the portal's own RuntimeError)."""
    face = BlockingStore(backend)
    face.create("k", {"v": 1})
    entered, closed = threading.Event(), threading.Event()

    def late(func: Any) -> None:
        if func == backend.read:
            entered.set()
            assert closed.wait(30)

    face._portal = WatchedPortal(face._portal, late)  # type: ignore[assignment]
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            face.read("k")
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    assert entered.wait(30)
    face.close()
    closed.set()
    reader.join(30)
    assert not reader.is_alive()
    assert [type(exc) for exc in outcome] == [StoreClosedError]


def drop_and_collect(holder: list[BlockingStore[DictStore]]) -> None:
    """Drop the last reference to the faces in ``holder`` and run the garbage collector."""
    holder.clear()
    gc.collect()


def test_an_unclosed_face_warns_and_is_closed_when_collected(backend: DictStore) -> None:
    threads_before = len(loop_threads())
    holder = [BlockingStore(backend)]
    holder[0].create("k", {"v": 1})
    with pytest.warns(ResourceWarning, match=r"BlockingStore of DictStore was not closed"):
        drop_and_collect(holder)
    assert backend.state == "closed"
    assert backend.closes == 1
    assert len(loop_threads()) == threads_before


def test_a_face_collected_on_its_own_loop_thread_is_closed(backend: DictStore) -> None:
    face = BlockingStore(backend)
    thread = face._thread
    # Where a reference cycle might get collected: on the loop thread, which cannot wait for
    # itself; the shutdown is handed to another thread.
    with pytest.warns(ResourceWarning, match="was not closed"):
        face._portal.call(face._finalizer)
    thread.join(10)
    assert not thread.is_alive()
    assert backend.state == "closed"


# -- DataStore keeps the local engine's shorter ways -------------------------------------------


def test_data_store_reads_and_writes_skip_the_portal(store_path: Path) -> None:
    with DataStore(store_path) as store:
        portal = WatchedPortal(store._portal)
        store._portal = portal  # type: ignore[assignment]
        store.create("k", {"v": 1})
        store.create("t", {"v": 2}, ttl=60)
        assert store.read("k") == {"v": 1}
        store.delete("t")
        with pytest.raises(KeyNotFoundError):
            store.read("t")
        assert portal.calls == []  # in the calling thread, or one call_soon_threadsafe
        assert store.stats().live_keys == 1
        assert portal.calls == ["stats"]


def test_keys_and_items_go_through_the_face_a_chunk_at_a_time() -> None:
    store = DictStore(max_keys=3000)
    with BlockingStore(store) as face:
        for i in range(2500):
            face.create(f"k{i}", {"i": i})
        assert sorted(face.keys("k24")) == sorted(k for k in store.data if k.startswith("k24"))
        assert dict(face.items()) == {f"k{i}": {"i": i} for i in range(2500)}
        with pytest.raises(InvalidKeyError):
            face.keys(None)  # type: ignore[arg-type]
        keys = face.keys()
        assert next(keys) == "k0"
        keys.close()  # the async generator is closed on the loop
        assert list(keys) == []
    assert store.threads == {LOOP_THREAD}

"""``BlockingStore``: the blocking, thread-safe face of any :class:`AsyncStore`.

Each ``BlockingStore`` runs its store on an event loop in a thread of its own, reached through an
anyio :class:`~anyio.from_thread.BlockingPortal`: a call from any thread is handed to that loop
and the caller blocks until it is answered. The loop thread is a daemon, so a store that was
never closed cannot hang the interpreter at exit; a finaliser still closes it cleanly (the
writes it accepted finished, whatever it holds let go) when the face is collected or the
interpreter exits.

The face knows nothing of the backend: ``BlockingStore(store)`` drives any ``AsyncStore``. A
backend that can do better than a portal round trip per call (the local engine reads in the
calling thread, say) subclasses it and overrides those methods alone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import threading
import warnings
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, Generic, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from aiokv import errors
from aiokv._core.chunks import BlockingChunks, made
from aiokv._core.contract import AsyncStore
from aiokv._core.stats import StoreStats
from aiokv.errors import BlockingCallError, DataStoreError

S = TypeVar("S", bound=AsyncStore)
T = TypeVar("T")
_Face = TypeVar("_Face", bound="BlockingStore[Any]")

LOOP_THREAD_NAME = "aiokv-loop"


def refuse_event_loop(face: BlockingStore[Any], method: str) -> None:
    """Raise :class:`BlockingCallError` if called from a running event loop."""
    # asyncio._get_running_loop answers None where get_running_loop raises, and raising and
    # catching that error on every call (the usual case) cost a read a few percent.
    if asyncio._get_running_loop() is None:
        return
    raise BlockingCallError(
        f"{type(face).__name__}.{method}() blocks, so it cannot be called from a running "
        f"event loop; use {face._async_name()} (await store.{method}(...)) there instead"
    )


def _start_loop_thread() -> tuple[BlockingPortal, threading.Thread]:
    """Start an event loop in a daemon thread; return the portal into it.

    Not anyio's ``start_blocking_portal``, measured against this one. Before anyio 4.5 it runs
    the loop in a ``ThreadPoolExecutor`` worker, which the interpreter joins at exit before any
    finaliser runs: a face never closed hangs the exit (it did with anyio 4.4, our floor). From
    4.5 its thread is a daemon too, but it does not hand the thread back, and the face needs it
    (to join it, to tell whether a write it waits for can still be answered, to know when it
    is shut down from the loop itself): fetching it is one more portal round trip, and a start
    and stop took 0.52 ms against 0.41 ms here (medians of 500).
    """
    handed_over: concurrent.futures.Future[BlockingPortal] = concurrent.futures.Future()

    async def serve() -> None:
        async with BlockingPortal() as portal:
            handed_over.set_result(portal)
            await portal.sleep_until_stopped()

    def main() -> None:
        try:
            anyio.run(serve, backend="asyncio")
        except BaseException as exc:  # pragma: no cover - the loop failed to start
            if not handed_over.done():
                handed_over.set_exception(exc)
            raise

    thread = threading.Thread(target=main, name=LOOP_THREAD_NAME, daemon=True)
    thread.start()
    return handed_over.result(), thread


def _shut_down(
    store: AsyncStore, portal: BlockingPortal, thread: threading.Thread, unclosed: str | None
) -> None:
    """Close the store, stop its loop and join the thread. Runs once per face.

    :param unclosed: the face's name, to warn that it was never closed; ``None``: no warning.
    """
    if unclosed is not None:
        warnings.warn(
            f"{unclosed} was not closed; close it or use 'with'", ResourceWarning, stacklevel=2
        )
    if threading.current_thread() is thread:
        # Collected on the store's own loop thread, which cannot wait for itself: hand the
        # shutdown to another thread, which runs once this callback returns to the loop.
        threading.Thread(
            target=_shut_down, args=(store, portal, thread, None), name="aiokv-close"
        ).start()
        return
    try:
        portal.call(store.close)
    finally:
        portal.call(portal.stop)
        thread.join()


def _listed(items: Iterable[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """A batch's pairs as a list (the store checks each is a pair)."""
    if isinstance(items, (str, bytes)):
        raise errors.not_pairs("create_many")
    try:
        return list(items)
    except TypeError:
        raise errors.not_pairs("create_many") from None


_faces: weakref.WeakSet[BlockingStore[Any]] = weakref.WeakSet()
"""Every face of this process, to be told of a fork."""


def _after_fork_in_child() -> None:
    """In a child made by ``fork()``: the faces the parent made have no loop thread here (a
    fork copies only the thread that called it), so a call would wait for ever. Each refuses
    every call from now on, and its close (or finaliser) lets go without waiting on it."""
    for face in list(_faces):
        face._forked = True
        face._finalizer.detach()


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


class BlockingStore(Generic[S]):
    """An :class:`AsyncStore` for blocking code: safe to share between threads.

    ::

        with BlockingStore(SomeAsyncStore(...)) as store:
            store.create("user:1", {"name": "Ada"})
            print(store.read("user:1"))

    Takes a store not yet opened, and opens it at once on a loop thread of its own; closing
    the face closes the store. The methods are those of :class:`AsyncStore`, blocking, with
    the same errors.

    :param store: the store to drive; it belongs to the face from now on.
    :raises BlockingCallError: any method called from a running event loop.
    :raises StoreClosedError: any method called once :meth:`close` has begun.
    """

    def __init__(self, store: S) -> None:
        self._store = store
        refuse_event_loop(self, "__init__")
        portal, thread = _start_loop_thread()
        try:
            portal.call(store.open)
        except BaseException:
            portal.call(portal.stop)
            thread.join()
            raise
        self._portal = portal
        self._thread = thread
        self._close_lock = threading.Lock()
        self._closed = False
        self._forked = False  # this is a child process's copy: see _after_fork_in_child
        # Runs at garbage collection or interpreter exit if close() never did. It holds the
        # store, the portal and the thread, never the face, or the face would never be collected.
        self._finalizer = weakref.finalize(
            self, _shut_down, store, portal, thread, self._describe()
        )
        _faces.add(self)

    # -- what a subclass may name differently ----------------------------------------------

    def _async_name(self) -> str:
        """What to use from a running event loop instead, named in :class:`BlockingCallError`."""
        return type(self._store).__name__

    def _describe(self) -> str:
        """The face in the warning that it was not closed."""
        return f"{type(self).__name__} of {type(self._store).__name__}"

    def __repr__(self) -> str:
        # The store's own repr (its state, its size), under the face's name.
        inner = repr(self._store)
        prefix = f"<{type(self._store).__name__}"
        if inner.startswith(prefix):
            return f"<{type(self).__name__}{inner[len(prefix) :]}"
        return f"<{type(self).__name__} {inner}>"

    # -- the operations --------------------------------------------------------------------

    def _call(self, method: str, func: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """``await func(*args)`` on the loop thread; its outcome, or its error unchanged."""
        refuse_event_loop(self, method)
        if self._closed:
            raise errors.store_closed()
        if self._forked:
            raise errors.used_across_fork()
        try:
            result: T = self._portal.call(func, *args)
            return result
        except RuntimeError as exc:
            if isinstance(exc, DataStoreError):
                raise
            # The portal stopped between the check above and the call: close() won the race.
            if self._closed:
                raise errors.store_closed() from exc
            raise

    def create(self, key: str, value: dict[str, Any], ttl: int | None = None) -> None:
        """Store ``value`` under ``key``, which must not be live; see :meth:`AsyncStore.create`."""
        self._call("create", self._store.create, key, value, ttl)

    def read(self, key: str) -> dict[str, Any]:
        """A fresh copy of the value under ``key``; see :meth:`AsyncStore.read`."""
        return self._call("read", self._store.read, key)

    def delete(self, key: str) -> None:
        """Delete ``key``; see :meth:`AsyncStore.delete`."""
        self._call("delete", self._store.delete, key)

    def exists(self, key: str) -> bool:
        """Whether ``key`` is live; see :meth:`AsyncStore.exists`."""
        return self._call("exists", self._store.exists, key)

    def read_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The values of the live keys among ``keys``; see :meth:`AsyncStore.read_many`."""
        if isinstance(keys, str):
            raise errors.keys_not_str("read_many")
        return self._call("read_many", self._store.read_many, list(keys))

    def touch(self, key: str, ttl: int | None) -> None:
        """Give ``key`` a new deadline; see :meth:`AsyncStore.touch`."""
        self._call("touch", self._store.touch, key, ttl)

    def create_many(
        self,
        items: Mapping[str, dict[str, Any]] | Iterable[tuple[str, dict[str, Any]]],
        *,
        ttl: int | None = None,
    ) -> None:
        """Store every ``(key, value)`` of ``items``, all or none; see
        :meth:`AsyncStore.create_many`."""
        refuse_event_loop(self, "create_many")
        # Taken here, in the caller's thread: the loop thread must not run a caller's iterator.
        pairs = dict(items) if isinstance(items, Mapping) else _listed(items)
        self._call("create_many", functools.partial(self._store.create_many, pairs, ttl=ttl))

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete the live keys among ``keys``, all or none; see :meth:`AsyncStore.delete_many`."""
        if isinstance(keys, str):
            raise errors.keys_not_str("delete_many")
        return self._call("delete_many", self._store.delete_many, list(keys))

    def export_jsonl(self, path: str | os.PathLike[str], *, prefix: str = "") -> int:
        """Write the live keys to a JSON Lines file; see :meth:`AsyncStore.export_jsonl`."""
        return self._call(
            "export_jsonl", functools.partial(self._store.export_jsonl, path, prefix=prefix)
        )

    def import_jsonl(self, path: str | os.PathLike[str], *, skip_existing: bool = False) -> int:
        """Create the entries of a JSON Lines file; see :meth:`AsyncStore.import_jsonl`."""
        return self._call(
            "import_jsonl",
            functools.partial(self._store.import_jsonl, path, skip_existing=skip_existing),
        )

    def backup(self, dest: str | os.PathLike[str]) -> None:
        """Copy the store to ``dest``; see :meth:`AsyncStore.backup`."""
        self._call("backup", self._store.backup, dest)

    def keys(self, prefix: str = "") -> BlockingChunks[str]:
        """The live keys that start with ``prefix``, fetched from the loop thread a chunk at
        a time; see :meth:`AsyncStore.keys`. ``close()`` it (or use ``with``) to stop early;
        dropping it lets go of it too.

        :raises InvalidKeyError: ``prefix`` is not a str, or is longer than a key.
        """
        return self._iterate("keys", self._store.keys, prefix)

    def items(self, prefix: str = "") -> BlockingChunks[tuple[str, dict[str, Any]]]:
        """``(key, value)`` of the live keys that start with ``prefix``, a chunk at a time;
        see :meth:`AsyncStore.items`."""
        return self._iterate("items", self._store.items, prefix)

    def _iterate(
        self, method: str, open_iterator: Callable[[str], AsyncIterator[T]], prefix: str
    ) -> BlockingChunks[T]:
        iterator: AsyncIterator[T] = self._call(method, made, open_iterator, prefix)
        return BlockingChunks(self._call, method, iterator, self._portal, self._thread)

    def compact(self) -> int:
        """Reclaim the space of dead values; see :meth:`AsyncStore.compact`."""
        return self._call("compact", self._store.compact)

    def stats(self) -> StoreStats:
        """A snapshot of the store's size; see :meth:`AsyncStore.stats`."""
        return self._call("stats", self._store.stats)

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Finish queued writes, close the store and stop its thread. Safe to call twice.

        A second caller, from any thread, returns once the store is closed.

        :raises StoreIOError: as :meth:`AsyncStore.close`; the face is closed all the same.
        """
        refuse_event_loop(self, "close")
        # Held for the whole shutdown, so that nobody sees close() return before the store has
        # let go of what it holds (the lock on a directory, a connection).
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._finalizer.detach()
            if self._forked:
                return  # the loop thread is the parent's: nothing of this copy runs
            _shut_down(self._store, self._portal, self._thread, None)

    def __enter__(self: _Face) -> _Face:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

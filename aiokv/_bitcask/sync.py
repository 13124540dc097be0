"""``DataStore``: the blocking, thread-safe face of :class:`AsyncDataStore`.

Each ``DataStore`` runs its ``AsyncDataStore`` on an event loop in a thread of its own, reached
through an anyio :class:`~anyio.from_thread.BlockingPortal`: a call from any thread is handed to
that loop and the caller blocks until it is answered. The loop thread is a daemon, so a store
that was never closed cannot hang the interpreter at exit; a finaliser still closes it cleanly
(flushing and unlocking) when the object is collected or the interpreter exits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import warnings
import weakref
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from aiokv import errors
from aiokv._bitcask.options import DEFAULT_MAX_SIZE, Durability
from aiokv._bitcask.store import AsyncDataStore, StrPath
from aiokv._core.clock import Clock
from aiokv._core.stats import StoreStats
from aiokv.errors import BlockingCallError, DataStoreError, StoreClosedError

T = TypeVar("T")

_POLL_S = 1.0
"""How often a thread waiting for its write checks that the store's loop thread still runs."""


def _refuse_event_loop(method: str) -> None:
    # asyncio._get_running_loop answers None where get_running_loop raises, and raising and
    # catching that error on every call (the usual case) cost a read a few percent.
    if asyncio._get_running_loop() is None:
        return
    raise BlockingCallError(
        f"DataStore.{method}() blocks, so it cannot be called from a running event loop; "
        f"use AsyncDataStore (await store.{method}(...)) there instead"
    )


def _start_loop_thread() -> tuple[BlockingPortal, threading.Thread]:
    """Start an event loop in a daemon thread; return the portal into it."""
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

    thread = threading.Thread(target=main, name="aiokv-loop", daemon=True)
    thread.start()
    return handed_over.result(), thread


def _shut_down(
    store: AsyncDataStore, portal: BlockingPortal, thread: threading.Thread, warn: bool
) -> None:
    """Close the store, stop its loop and join the thread. Runs once per DataStore."""
    if warn:
        warnings.warn(
            f"DataStore {str(store.path)!r} was not closed; close it or use 'with'",
            ResourceWarning,
            stacklevel=2,
        )
    if threading.current_thread() is thread:
        # Collected on the store's own loop thread, which cannot wait for itself: hand the
        # shutdown to another thread, which runs once this callback returns to the loop.
        threading.Thread(
            target=_shut_down, args=(store, portal, thread, False), name="aiokv-close"
        ).start()
        return
    try:
        portal.call(store.close)
    finally:
        portal.call(portal.stop)
        thread.join()


class DataStore:
    """A key-value store in a directory, for blocking code: safe to share between threads.

    ::

        with DataStore("data/kv") as store:
            store.create("user:1", {"name": "Ada"})
            print(store.read("user:1"))

    Takes the same arguments as :class:`AsyncDataStore` and opens the store at once, so a
    store that is already open elsewhere fails here with :class:`StoreLockedError`.

    :raises BlockingCallError: any method called from a running event loop.
    """

    def __init__(
        self,
        path: StrPath | None = None,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        durability: Durability = "flush",
        segment_max_bytes: int | None = None,
        reaper_interval_s: float = 1.0,
        compact_dead_ratio: float | None = 0.3,
        clock: Clock | None = None,
    ) -> None:
        _refuse_event_loop("__init__")
        store = AsyncDataStore(
            path,
            max_size=max_size,
            durability=durability,
            segment_max_bytes=segment_max_bytes,
            reaper_interval_s=reaper_interval_s,
            compact_dead_ratio=compact_dead_ratio,
            clock=clock,
        )
        portal, thread = _start_loop_thread()
        try:
            portal.call(store.open)
        except BaseException:
            portal.call(portal.stop)
            thread.join()
            raise
        self._store = store
        self._portal = portal
        self._thread = thread
        self._close_lock = threading.Lock()
        self._closed = False
        # Runs at garbage collection or interpreter exit if close() never did.
        self._finalizer = weakref.finalize(self, _shut_down, store, portal, thread, True)

    @property
    def path(self) -> Path:
        """The store directory."""
        return self._store.path

    def __repr__(self) -> str:
        return repr(self._store).replace("<AsyncDataStore", "<DataStore", 1)

    def _call(self, method: str, func: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        _refuse_event_loop(method)
        if self._closed:
            raise StoreClosedError("the store is closed")
        try:
            result: T = self._portal.call(func, *args)
            return result
        except RuntimeError as exc:
            # The portal stopped between the check above and the call: close() won the race.
            if self._closed:
                raise StoreClosedError("the store is closed") from exc
            raise

    def _write(
        self, method: str, hand_over: Callable[..., concurrent.futures.Future[None]], *args: Any
    ) -> None:
        _refuse_event_loop(method)
        if self._closed:
            raise StoreClosedError("the store is closed")
        try:
            done = hand_over(*args)
        except RuntimeError as exc:
            if isinstance(exc, DataStoreError):
                raise
            # The loop is gone (call_soon_threadsafe on a closed loop): close() won the race.
            raise StoreClosedError("the store is closed") from exc
        while True:
            try:
                done.result(timeout=_POLL_S)
                return
            except concurrent.futures.TimeoutError:
                # A hand-off the loop never ran, because close() stopped the loop first, is
                # never answered; once the loop thread is gone, it never will be.
                if not self._thread.is_alive() and not done.done():
                    raise errors.closed_before_write() from None

    def create(self, key: str, value: dict[str, Any], ttl: int | None = None) -> None:
        """Store ``value`` under ``key``; see :meth:`AsyncDataStore.create`.

        The arguments are checked and the value encoded in the calling thread; only the
        write itself is handed to the store's loop thread.
        """
        self._write("create", self._store._create_from_thread, key, value, ttl)

    def read(self, key: str) -> dict[str, Any]:
        """Return a fresh copy of the value under ``key``; see :meth:`AsyncDataStore.read`.

        Made in the calling thread, not handed to the loop thread: a read never waits for
        the writer, so the round trip would be pure cost.
        """
        _refuse_event_loop("read")
        if self._closed:
            raise StoreClosedError("the store is closed")
        return self._store._read_from_thread(key)

    def delete(self, key: str) -> None:
        """Delete ``key``; see :meth:`AsyncDataStore.delete`."""
        self._write("delete", self._store._delete_from_thread, key)

    def compact(self) -> int:
        """Reclaim the space of dead records; see :meth:`AsyncDataStore.compact`."""
        return self._call("compact", self._store.compact)

    def stats(self) -> StoreStats:
        """A snapshot of the store's size; see :meth:`AsyncDataStore.stats`."""
        return self._call("stats", self._store.stats)

    def close(self) -> None:
        """Finish queued writes, close the store and stop its thread. Safe to call twice.

        A second caller, from any thread, returns once the store is closed.
        """
        _refuse_event_loop("close")
        # Held for the whole shutdown, so that nobody sees close() return before the lock
        # on the directory is released.
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._finalizer.detach()
            _shut_down(self._store, self._portal, self._thread, False)

    def __enter__(self) -> DataStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

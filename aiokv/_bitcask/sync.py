"""``DataStore``: the blocking, thread-safe face of :class:`AsyncDataStore`.

The generic face (:class:`~aiokv._core.blocking.BlockingStore`) runs the store on an event loop
in a thread of its own and hands it every call through an anyio portal. ``DataStore`` keeps that
for ``compact``, ``stats`` and the lifecycle, and takes the local engine's shorter ways for the
calls that are made most: a read runs in the calling thread, and a write is checked and encoded
there and handed to the loop with one ``call_soon_threadsafe``, not a portal round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aiokv import errors
from aiokv._bitcask.options import DEFAULT_MAX_SIZE, Durability
from aiokv._bitcask.store import AsyncDataStore
from aiokv._bitcask.system.paths import StrPath
from aiokv._core.blocking import BlockingStore, refuse_event_loop
from aiokv._core.clock import Clock
from aiokv._core.handoff import Handoff
from aiokv._core.verify_report import VerifyReport
from aiokv.errors import DataStoreError

_POLL_S = 1.0
"""How often a thread waiting for its write checks that the store's loop thread still runs."""


class DataStore(BlockingStore[AsyncDataStore]):
    """A key-value store in a directory, for blocking code: safe to share between threads.

    ::

        with DataStore("data/kv") as store:
            store.create("user:1", {"name": "Ada"})
            print(store.read("user:1"))

    Takes the same arguments as :class:`AsyncDataStore` and opens the store at once, so a
    store that is already open elsewhere fails here with :class:`StoreLockedError`.

    :raises BlockingCallError: any method called from a running event loop.
    """

    # Declaring the base class as BlockingStore[AsyncDataStore] is also what checks, under
    # mypy, that AsyncDataStore keeps to the AsyncStore contract: S is bound to AsyncStore.

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
        refuse_event_loop(self, "__init__")  # before the options are checked, as ever
        super().__init__(
            AsyncDataStore(
                path,
                max_size=max_size,
                durability=durability,
                segment_max_bytes=segment_max_bytes,
                reaper_interval_s=reaper_interval_s,
                compact_dead_ratio=compact_dead_ratio,
                clock=clock,
            )
        )

    @property
    def path(self) -> Path:
        """The store directory."""
        return self._store.path

    def _async_name(self) -> str:
        return "AsyncDataStore"  # named before the store is made: __init__ refuses first

    def _describe(self) -> str:
        return f"DataStore {str(self.path)!r}"

    # -- the local engine's shorter ways -----------------------------------------------------

    def _write(self, method: str, hand_over: Callable[..., Handoff], *args: Any) -> None:
        refuse_event_loop(self, method)
        if self._closed:
            raise errors.store_closed()
        try:
            done = hand_over(*args)
        except RuntimeError as exc:
            if isinstance(exc, DataStoreError):
                raise
            # The loop is gone (call_soon_threadsafe on a closed loop): close() won the race.
            raise errors.store_closed() from exc
        while not done.wait(timeout=_POLL_S):
            # A hand-off the loop never ran, because close() stopped the loop first, is
            # never answered; once the loop thread is gone, it never will be.
            if not self._thread.is_alive() and not done.done():
                raise errors.closed_before_write()

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
        refuse_event_loop(self, "read")
        if self._closed:
            raise errors.store_closed()
        return self._store._read_from_thread(key)

    def exists(self, key: str) -> bool:
        """Whether ``key`` is live; see :meth:`AsyncDataStore.exists`. Asked in the calling
        thread, as :meth:`read` is."""
        refuse_event_loop(self, "exists")
        if self._closed:
            raise errors.store_closed()
        return self._store._exists_from_thread(key)

    def read_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The values of the live keys among ``keys``; see :meth:`AsyncDataStore.read_many`.
        Read in the calling thread, as :meth:`read` is."""
        refuse_event_loop(self, "read_many")
        if self._closed:
            raise errors.store_closed()
        return self._store._read_many_from_thread(keys)

    def delete(self, key: str) -> None:
        """Delete ``key``; see :meth:`AsyncDataStore.delete`."""
        self._write("delete", self._store._delete_from_thread, key)

    def verify(self) -> VerifyReport:
        """Check every data file, hint and index entry; see :meth:`AsyncDataStore.verify`."""
        return self._call("verify", self._store.verify)

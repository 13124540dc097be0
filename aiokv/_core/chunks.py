"""Blocking iteration over an async iterator that lives on a store's event loop, in chunks.

A ``for key in store.keys()`` in a thread would pay a round trip to the loop thread (tens of
microseconds) for every key if it asked for each; :class:`BlockingChunks` asks for ``CHUNK``
items at a time instead, with the iterator's own ``next_chunk(n)`` where it has one (the local
engine's) and ``__anext__`` calls on the loop where it does not.

The async iterator is made, stepped and closed on the loop thread only. Abandoning the blocking
iterator (closing it early, or dropping it) closes the async one there too, without waiting
for it: a finaliser may run on any thread, the loop's own included, and must not block.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine
from types import TracebackType
from typing import Any, Final, Generic, TypeVar

from anyio.from_thread import BlockingPortal

from aiokv.errors import StoreClosedError

T = TypeVar("T")

CHUNK: Final = 1024
"""Items fetched per round trip to the loop thread."""

Call = Callable[..., Any]
"""The face's ``_call(method, async_function, *args)``: the function's outcome, run on the loop
and waited for, with the face's checks (closed, forked, called from a loop)."""


async def made(factory: Callable[..., AsyncIterator[T]], *args: Any) -> AsyncIterator[T]:
    """``factory(*args)``, called on the loop thread (a store's iterator belongs to its loop)."""
    return factory(*args)


async def take(iterator: AsyncIterator[T], n: int) -> list[T]:
    """Up to ``n`` more items of ``iterator``: fewer only at its end."""
    next_chunk: Callable[[int], Coroutine[Any, Any, list[T]]] | None = getattr(
        iterator, "next_chunk", None
    )
    if next_chunk is not None:
        return await next_chunk(n)
    items: list[T] = []
    try:
        while len(items) < n:
            items.append(await iterator.__anext__())
    except StopAsyncIteration:
        pass
    return items


async def release(iterator: AsyncIterator[Any]) -> None:
    """Close ``iterator`` if it can be closed (an async generator, or the engine's)."""
    aclose: Callable[[], Coroutine[Any, Any, None]] | None = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


class BlockingChunks(Generic[T]):
    """An iterator for blocking code over an async iterator on a portal's loop thread.

    Safe to share between threads (each item goes to one of them). :meth:`close` (or a
    ``with`` block) ends it early and lets go of what the store holds for it; so does
    dropping it.

    :param call: the face's call into the loop (see :data:`Call`); its errors pass through.
    :param method: the face's method, named in its errors.
    :param iterator: the async iterator, made on the loop thread (see :func:`made`).
    :param portal: the portal into that loop, to close the iterator when this one is dropped.
    :param loop_thread: the loop's thread, which cannot wait for its own loop.
    """

    def __init__(
        self,
        call: Call,
        method: str,
        iterator: AsyncIterator[T],
        portal: BlockingPortal,
        loop_thread: threading.Thread,
        chunk: int = CHUNK,
    ) -> None:
        self._call = call
        self._method = method
        self._iterator = iterator
        self._chunk = chunk
        self._buffer: collections.deque[T] = collections.deque()
        self._lock = threading.Lock()
        self._done = False
        # Holds the iterator, the portal and the thread, never this object.
        self._finalizer = weakref.finalize(self, _release_soon, iterator, portal, loop_thread)

    def __iter__(self) -> BlockingChunks[T]:
        return self

    def __next__(self) -> T:
        with self._lock:
            if not self._buffer:
                if self._done:
                    raise StopIteration
                chunk: list[T] = self._call(self._method, take, self._iterator, self._chunk)
                if not chunk:
                    self._done = True  # the async iterator has ended, and let go itself
                    self._finalizer.detach()
                    raise StopIteration
                self._buffer.extend(chunk)
            return self._buffer.popleft()

    def close(self) -> None:
        """End the iteration early, letting go of what it holds. Safe to call twice."""
        with self._lock:
            if self._done:
                return
            self._done = True
            self._buffer.clear()
            self._finalizer.detach()
            with contextlib.suppress(StoreClosedError):  # the store let go of it as it closed
                self._call(self._method, release, self._iterator)

    def __enter__(self) -> BlockingChunks[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _release_soon(
    iterator: AsyncIterator[Any], portal: BlockingPortal, loop_thread: threading.Thread
) -> None:
    """Close a dropped iterator on its loop, without waiting (a finaliser must not block)."""
    if threading.current_thread() is loop_thread:
        # Collected on the loop thread itself, which a portal refuses to hand work to: a
        # short thread hands it over instead, once this callback has returned to the loop.
        threading.Thread(
            target=_release_soon,
            args=(iterator, portal, loop_thread),
            name="aiokv-release",
            daemon=True,
        ).start()
        return
    # RuntimeError: the portal has stopped; the store is closed, and let go of it as it closed.
    with contextlib.suppress(RuntimeError):
        portal.start_task_soon(release, iterator)

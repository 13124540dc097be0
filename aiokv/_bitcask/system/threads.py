"""The store's calls into worker threads, counted so that reads on the loop can make way.

A read on the event loop slices a memory map: no system call, so the loop thread keeps the
GIL. That is what makes it fast, and it starves a worker thread in one case. A loop reading
without pause still lets go of the GIL for a moment on every turn (its ``select`` with no
timeout) and takes it straight back; CPython's waiting thread is woken by each such release,
finds the GIL taken again, and starts its 5 ms wait over, so it never asks for a switch. A
compaction or a batch written in a thread would then wait seconds after each of its system
calls. While any such call is in flight, reads on the loop use ``pread`` instead, whose time in
the kernel without the GIL is the worker's opening. Counted for the whole process, because the
GIL is shared by every store in it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import anyio.to_thread

T = TypeVar("T")


class _Count:
    __slots__ = ("_lock", "busy")

    def __init__(self) -> None:
        self.busy = 0
        # Stores on different loops (each DataStore has its own thread) count here too, and
        # ``busy += 1`` is a read and a write that another thread could come between.
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.busy += n


in_flight = _Count()
"""``in_flight.busy``: how many of the store's calls are running in worker threads now."""


async def run(func: Callable[..., T], *args: object) -> T:
    """``func(*args)`` in a worker thread, counted in :data:`in_flight` until it returns.

    Not cancellable: a caller cancelled meanwhile still waits for the thread to end, then
    raises ``CancelledError``. A thread cannot be stopped, and returning early would let the
    caller clean up (close descriptors, remove files, release the batch lock) under work
    still going on: a backup's copy reading a closed descriptor, a compaction's output
    published after its step was given up. (anyio's ``run_sync`` shields only against
    anyio's own cancel scopes, not a plain ``Task.cancel()``.)
    """
    return await uncancellable(_counted(func, *args))


async def uncancellable(step: Coroutine[Any, Any, T]) -> T:
    """Run ``step`` to its end even if the caller is cancelled meanwhile, then raise the
    caller's ``CancelledError`` (or return ``step``'s result).

    For work that must not stop halfway: a thread's call, or the steps of a compaction from
    publishing its output to switching the index to it. (An anyio shielded cancel scope
    holds off anyio's cancellation only, not a plain ``Task.cancel()``.)
    """
    work = asyncio.ensure_future(step)
    cancelled: asyncio.CancelledError | None = None
    while not work.done():
        try:
            await asyncio.wait([work])  # a cancelled wait leaves the work running
        except asyncio.CancelledError as exc:
            cancelled = exc
    if cancelled is not None:
        if not work.cancelled():
            work.exception()  # retrieved: the caller's cancellation is what it raises
        raise cancelled
    return work.result()


async def _counted(func: Callable[..., T], *args: object) -> T:
    in_flight.add(1)
    try:
        return await anyio.to_thread.run_sync(func, *args)
    finally:
        in_flight.add(-1)

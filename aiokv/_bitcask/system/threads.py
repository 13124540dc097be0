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

import threading
from collections.abc import Callable
from typing import TypeVar

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

    Not cancellable, like ``anyio.to_thread.run_sync``'s default: the thread runs to its end
    before this returns, so the count never drops while the work goes on.
    """
    in_flight.add(1)
    try:
        return await anyio.to_thread.run_sync(func, *args)
    finally:
        in_flight.add(-1)

"""``Handoff``: the outcome of a write a thread handed to the store's loop, and its wait.

A ``DataStore`` write is checked and encoded in the calling thread, then queued on the loop
thread, which answers it when the writer has written or refused it. That answer used to travel
by an asyncio future, a done-callback on the loop and a ``concurrent.futures.Future``, whose
``set_result`` runs ``Condition.notify_all`` in Python: in a profile of 4 threads mixing reads
and creates, that notify was 40% of the loop thread's time holding the GIL. Here the writer
answers the op itself (a ``Handoff`` is what the writer calls an op's future) and the waiting
thread is woken by releasing a plain lock it is blocked on: one C call, no Python condition.
"""

from __future__ import annotations

import threading


class Handoff:
    """One handed-over write: answered once from the loop thread, waited for by its caller.

    It has the methods the writer calls on an op's future (``done``, ``cancelled``,
    ``set_result``, ``set_exception``); it is never cancelled.
    """

    __slots__ = ("_error", "_lock")

    def __init__(self) -> None:
        self._error: BaseException | None = None
        self._lock: threading.Lock | None = threading.Lock()  # None once answered
        self._lock.acquire()  # released by the answer; the caller blocks on it

    def done(self) -> bool:
        return self._lock is None

    def cancelled(self) -> bool:
        return False

    def set_result(self, result: None) -> None:
        self._answer(None)

    def set_exception(self, error: BaseException) -> None:
        self._answer(error)

    def _answer(self, error: BaseException | None) -> None:
        lock = self._lock
        if lock is None:
            raise RuntimeError("a handed-over write answered twice")
        self._error = error
        self._lock = None
        lock.release()

    def wait(self, timeout: float) -> bool:
        """Block until answered (True) or ``timeout`` seconds pass (False); raise the
        write's error if it was refused."""
        lock = self._lock
        if lock is not None and not lock.acquire(timeout=timeout):
            return False
        if self._error is not None:
            raise self._error
        return True

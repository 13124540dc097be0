"""The interface every store is driven through, and the errors a broken runner raises."""

from __future__ import annotations

import asyncio
import importlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType

from _bench.values import Value, ValueOf

Pairs = Iterable[tuple[str, Value]]  # the keys and values of one batch write

LOAD_BATCH = 10_000  # keys per transaction of a peer's untimed bulk load


def optional(name: str) -> ModuleType | None:
    """A peer's module, or None when it is not installed (that peer is then skipped)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


class WrongValueError(AssertionError):
    """A read returned something other than the value written: the runner is broken."""


class KeyExistsError(KeyError):
    """A peer reported a create of a key that is already there."""


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class SyncOps:
    """The three operations of a store opened for plain threads.

    ``read`` raises ``KeyError`` (``aiokv.KeyNotFoundError`` is one) for a missing key.
    ``drain`` waits until every write issued so far is done; it is called inside the timing at
    the end of each write phase, for the peer that queues writes and returns at once.
    ``create_many`` writes a batch of pairs in one call, for the stores that have one.
    """

    create: Callable[[str, Value], object]
    read: Callable[[str], Value]
    delete: Callable[[str], object]
    drain: Callable[[], None] = _nothing
    create_many: Callable[[Pairs], object] | None = None


@dataclass(frozen=True)
class AsyncOps:
    create: Callable[[str, Value], Awaitable[object]]
    read: Callable[[str], Awaitable[Value]]
    delete: Callable[[str], Awaitable[object]]
    create_many: Callable[[Pairs], Awaitable[object]] | None = None


class SyncHandle(ABC):
    """An open store driven from plain threads."""

    @abstractmethod
    def ops(self) -> SyncOps: ...

    def for_thread(self) -> SyncHandle:
        """The handle another thread uses: the store itself, or a connection of its own."""
        return self

    def close_thread(self) -> None:
        """Close what ``for_thread`` opened (in the thread that opened it)."""
        return None

    def bulk_load(self, keys: Sequence[str], value: ValueOf) -> None:
        """Fill the store as fast as the library allows; not timed (pre-loads only)."""
        create = self.ops().create
        for i, key in enumerate(keys):
            create(key, value(i))
        self.ops().drain()

    @abstractmethod
    def close(self) -> None: ...


class AsyncHandle(ABC):
    """An open store driven from asyncio tasks."""

    @abstractmethod
    def ops(self) -> AsyncOps: ...

    async def bulk_load(self, keys: Sequence[str], value: ValueOf) -> None:
        """Fill the store; not timed (pre-loads only). By default, creates a thousand at a time,
        each thousand one ``asyncio.gather``."""
        create = self.ops().create
        for start in range(0, len(keys), 1000):
            stop = min(len(keys), start + 1000)
            await asyncio.gather(*(create(keys[i], value(i)) for i in range(start, stop)))

    @abstractmethod
    async def close(self) -> None: ...

"""``AsyncStore``: the contract every backend behind aiokv's API implements.

The local engine's :class:`~aiokv.AsyncDataStore` implements it, and so will a Redis backend;
the faces (the blocking :class:`~aiokv._core.blocking.BlockingStore`, later the command line and
the HTTP server) are written against it alone. It holds what those faces call today and no
more: a method joins it when a face needs it from every backend.

A store object is opened once and closed once: ``open()`` on a closed store fails rather than
reopening it (make a new object for that). Every error a method raises is a
:class:`~aiokv.errors.DataStoreError`, of the subclass named below, so that a face can pass it
on unchanged whatever the backend.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import Any, Protocol, TypeVar, runtime_checkable

from aiokv._core.stats import StoreStats

_Self = TypeVar("_Self", bound="AsyncStore")


@runtime_checkable
class AsyncStore(Protocol):
    """A key-value store for asyncio code: JSON-object values under short string keys.

    Keys are ``str`` of 1 to 32 characters; values are ``dict`` (JSON objects); a TTL is
    ``None`` or whole seconds from 1 to 2**31 - 1 (see :mod:`aiokv._core.codec`). The methods
    are called from the event loop that opened the store.

    ``isinstance(obj, AsyncStore)`` checks only that the methods exist; their signatures are
    checked statically (mypy).
    """

    async def open(self) -> None:
        """Make the store ready for use: take hold of its data and start its background work.

        :raises StoreLockedError: the store is held by another user that excludes this one.
        :raises StoreClosedError: this store object was already closed.
        :raises DataStoreError: the store cannot be opened (a subclass says why: a bad path,
            damaged data, an I/O failure).
        """
        ...

    async def close(self) -> None:
        """Finish the writes already accepted, then let go of everything ``open()`` took.

        Safe to call more than once, from several tasks at once, and on a store never opened;
        each call returns once the store is closed. Every operation called after ``close()``
        has begun raises :class:`~aiokv.errors.StoreClosedError`.

        :raises StoreIOError: the last writes may not have been kept; the store is closed all
            the same.
        """
        ...

    async def __aenter__(self: _Self) -> _Self:
        """``open()``, then the store itself."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """``close()``."""
        ...

    async def create(self, key: str, value: dict[str, Any], ttl: int | None = None) -> None:
        """Store ``value`` under ``key``, which must not be live; expire it after ``ttl`` seconds.

        :raises KeyExistsError: ``key`` is live; the stored value is left as it was.
        :raises InvalidKeyError, InvalidValueError, ValueTooLargeError, InvalidTTLError: a bad
            argument; nothing is written.
        :raises StoreFullError: the store has no room for the value; nothing is written.
        :raises StoreClosedError: the store is not open.
        :raises StoreIOError: the write failed.
        """
        ...

    async def read(self, key: str) -> dict[str, Any]:
        """A fresh copy of the value under ``key``: the caller may change it freely.

        :raises KeyNotFoundError: ``key`` is missing, deleted or expired.
        :raises InvalidKeyError: ``key`` is not a valid key.
        :raises StoreClosedError: the store is not open.
        :raises CorruptionError: the stored value is damaged.
        """
        ...

    async def delete(self, key: str) -> None:
        """Delete ``key``.

        :raises KeyNotFoundError: ``key`` is missing, deleted or expired.
        :raises InvalidKeyError: ``key`` is not a valid key.
        :raises StoreClosedError: the store is not open.
        :raises StoreIOError: the write failed.
        """
        ...

    async def exists(self, key: str) -> bool:
        """Whether ``key`` is live: not missing, deleted or expired.

        :raises InvalidKeyError: ``key`` is not a valid key.
        :raises StoreClosedError: the store is not open.
        """
        ...

    async def read_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The values of the live keys among ``keys``, each as :meth:`read` gives it; absent
        keys are left out. Every key is checked before any is read.

        :raises InvalidKeyError: a key is not valid, or ``keys`` is one ``str``.
        :raises StoreClosedError: the store is not open.
        :raises CorruptionError: a stored value is damaged.
        """
        ...

    async def touch(self, key: str, ttl: int | None) -> None:
        """Make ``key`` expire ``ttl`` seconds from now (``None``: never), keeping its value;
        after a crash it has the old deadline or the new one.

        :raises KeyNotFoundError: ``key`` is missing, deleted or expired.
        :raises InvalidKeyError, InvalidTTLError: a bad argument; nothing is written.
        :raises StoreFullError: no room to write the new deadline.
        :raises StoreClosedError: the store is not open.
        :raises StoreIOError: the write failed.
        """
        ...

    async def create_many(
        self,
        items: Mapping[str, dict[str, Any]] | Iterable[tuple[str, dict[str, Any]]],
        *,
        ttl: int | None = None,
    ) -> None:
        """Store every ``(key, value)`` of ``items`` as one unit: all of them or none, also
        after a crash. Every argument is checked before anything is written.

        :raises KeyExistsError: some keys are live (the first ten named); nothing is written.
        :raises InvalidKeyError: a key is invalid or given twice; nothing is written.
        :raises InvalidValueError, ValueTooLargeError, InvalidTTLError: a bad argument;
            nothing is written.
        :raises StoreFullError: the batch does not fit whole; nothing is written.
        :raises StoreClosedError: the store is not open.
        :raises StoreIOError: the write failed.
        """
        ...

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete the live keys among ``keys`` as one unit (all or none, also after a crash);
        the others are passed over. Returns how many were deleted.

        :raises InvalidKeyError: a key is invalid, or ``keys`` is one ``str``.
        :raises StoreFullError: no room for the delete markers; nothing is written.
        :raises StoreClosedError: the store is not open.
        :raises StoreIOError: the write failed.
        """
        ...

    def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """The live keys that start with ``prefix`` (``""``: every key), in no set order:
        ``async for key in store.keys("user:")``.

        Every key live from the iteration's start to its end is yielded exactly once; a key
        created, deleted or expiring meanwhile may be or not; no key is yielded twice.
        Writers are not held up by it.

        :raises InvalidKeyError: ``prefix`` is not a str, or is longer than a key.
        :raises StoreClosedError: the store is not open (when called, or as it iterates).
        """
        ...

    def items(self, prefix: str = "") -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """``(key, value)`` of the live keys that start with ``prefix``, as :meth:`keys`
        yields them; each value a fresh copy, as :meth:`read` gives it. A key that can no
        longer be read when its turn comes is passed over.

        :raises InvalidKeyError: ``prefix`` is not a str, or is longer than a key.
        :raises StoreClosedError: the store is not open (when called, or as it iterates).
        """
        ...

    async def export_jsonl(self, path: str | os.PathLike[str], *, prefix: str = "") -> int:
        """Write the live keys that start with ``prefix`` to ``path`` as JSON Lines (one
        ``{"key", "value", "expires_at"}`` object a line), never leaving a half file there;
        return how many.

        :raises StorePathError: ``path`` exists and is not a regular file; nothing is written.
        :raises StoreFullError, StoreIOError: the file could not be written; nothing is left.
        :raises StoreClosedError: the store is not open.
        """
        ...

    async def import_jsonl(
        self, path: str | os.PathLike[str], *, skip_existing: bool = False
    ) -> int:
        """Create the entries of a JSON Lines file as :meth:`export_jsonl` writes them, their
        deadlines kept; the file is checked whole first, then written in atomic batches.
        Return how many keys were created.

        :raises ImportFileError: a line is wrong (named); nothing is imported.
        :raises KeyExistsError: a key is live and ``skip_existing`` is false.
        :raises StoreFullError: the entries do not fit.
        :raises StoreClosedError: the store is not open.
        """
        ...

    async def backup(self, dest: str | os.PathLike[str]) -> None:
        """Copy the store as it is now to ``dest`` (a new or empty directory), as a store that
        opens on its own and shares nothing with this one that can change; writes go on
        meanwhile. A backup cut off by a crash never opens as a store.

        :raises StorePathError: ``dest`` is not a new or empty directory; nothing is touched.
        :raises StoreFullError, StoreIOError: the copy failed; nothing is left in ``dest``.
        :raises StoreClosedError: the store is not open.
        """
        ...

    async def compact(self) -> int:
        """Reclaim the space held by dead values (a backend with none to reclaim returns 0).

        :returns: the bytes reclaimed.
        :raises StoreClosedError: the store is not open.
        :raises CorruptionError: data being compacted is damaged.
        """
        ...

    async def stats(self) -> StoreStats:
        """A snapshot of the store's size.

        :raises StoreClosedError: the store is not open.
        """
        ...

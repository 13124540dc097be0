"""The exceptions aiokv raises.

Every error is a :class:`DataStoreError`, so ``except DataStoreError`` catches them all.
Errors that describe a bad argument are also the built-in a caller would expect
(``ValueError``, ``KeyError``, ``RuntimeError``)::

    DataStoreError
    ├── InvalidKeyError            (also ValueError)
    ├── InvalidValueError          (also ValueError)
    │   └── ValueTooLargeError
    ├── InvalidTTLError            (also ValueError)
    ├── InvalidOptionError         (also ValueError)
    ├── KeyExistsError
    ├── KeyNotFoundError           (also KeyError)
    ├── StoreFullError
    ├── StoreLockedError
    ├── StoreClosedError
    ├── StorePathError
    ├── StoreIOError
    ├── CorruptionError
    └── BlockingCallError          (also RuntimeError)
"""

from __future__ import annotations

__all__ = [
    "BlockingCallError",
    "CorruptionError",
    "DataStoreError",
    "InvalidKeyError",
    "InvalidOptionError",
    "InvalidTTLError",
    "InvalidValueError",
    "KeyExistsError",
    "KeyNotFoundError",
    "StoreClosedError",
    "StoreFullError",
    "StoreIOError",
    "StoreLockedError",
    "StorePathError",
    "ValueTooLargeError",
]


class DataStoreError(Exception):
    """Base class of every error raised by aiokv."""


class InvalidKeyError(DataStoreError, ValueError):
    """The key is not a ``str`` of 1 to 32 characters encodable as UTF-8."""


class InvalidValueError(DataStoreError, ValueError):
    """The value is not a JSON object that JSON can carry exactly."""


class ValueTooLargeError(InvalidValueError):
    """The value's compact JSON encoding is longer than ``MAX_VALUE_BYTES``."""


class InvalidTTLError(DataStoreError, ValueError):
    """The time-to-live is not ``None`` or an ``int`` from 1 to 2**31 - 1 seconds."""


class InvalidOptionError(DataStoreError, ValueError):
    """A store option (``max_size``, ``durability``, ...) is out of range or of the wrong type."""


class KeyExistsError(DataStoreError):
    """``create`` was called for a key that is live in the store."""


class KeyNotFoundError(DataStoreError, KeyError):
    """The key is missing, deleted or expired."""

    # KeyError.__str__ shows the repr of its argument; a message reads better as itself.
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class StoreFullError(DataStoreError):
    """The write would take the store directory over ``max_size`` (or the disk is full)."""


class StoreLockedError(DataStoreError):
    """Another ``AsyncDataStore`` or ``DataStore``, in this process or another, holds the store."""


class StoreClosedError(DataStoreError):
    """The store was closed (or never opened)."""


class StorePathError(DataStoreError):
    """The store path is not a directory, or cannot be created or written."""


class StoreIOError(DataStoreError):
    """The operating system failed a write or fsync; the store no longer accepts writes.

    After a failed fsync the kernel may have dropped the dirty pages, so a retry could report
    success for data that never reached the disk. Reads keep working; reopen the store to write.
    """


class CorruptionError(DataStoreError):
    """A record failed its checksum or does not parse. The message names the file and offset."""


class BlockingCallError(DataStoreError, RuntimeError):
    """A blocking ``DataStore`` method was called from a running event loop.

    Use ``AsyncDataStore`` there instead: blocking the loop on the store's own loop thread could
    deadlock and would stall every other task.
    """

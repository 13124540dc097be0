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
    ├── ImportFileError            (also ValueError)
    ├── KeyExistsError
    ├── KeyNotFoundError           (also KeyError)
    ├── StoreFullError
    ├── StoreLockedError
    ├── StoreClosedError
    ├── StorePathError
    ├── StoreIOError
    ├── StoreUnavailableError
    ├── NotSupportedError          (also NotImplementedError)
    ├── CorruptionError
    └── BlockingCallError          (also RuntimeError)
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "BlockingCallError",
    "CorruptionError",
    "DataStoreError",
    "ImportFileError",
    "InvalidKeyError",
    "InvalidOptionError",
    "InvalidTTLError",
    "InvalidValueError",
    "KeyExistsError",
    "KeyNotFoundError",
    "NotSupportedError",
    "StoreClosedError",
    "StoreFullError",
    "StoreIOError",
    "StoreLockedError",
    "StorePathError",
    "StoreUnavailableError",
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
    """A path given to the store cannot be used: the store's own (not a directory, or one
    that cannot be created or written), a backup's (not empty), an export's (not a regular
    file)."""


class ImportFileError(DataStoreError, ValueError):
    """A file given to ``import_jsonl`` is not one it can import whole; the message names the
    line (1-based) and what is wrong. Nothing was imported."""


class StoreIOError(DataStoreError):
    """The operating system failed a write or fsync; the store no longer accepts writes.

    After a failed fsync the kernel may have dropped the dirty pages, so a retry could report
    success for data that never reached the disk. Reads keep working; reopen the store to write.
    """


class StoreUnavailableError(DataStoreError):
    """A store served by another process (Redis) cannot be reached, or cannot answer now
    (refused, timed out, read-only, loading), after the retries the store allows. The same
    store object works again once the server is back. A write whose reply was lost says that
    its outcome is unknown."""


class NotSupportedError(DataStoreError, NotImplementedError):
    """The backend has no such operation (``backup`` of a Redis store: Redis's own tools do
    it); the message says what to use instead."""


class CorruptionError(DataStoreError):
    """A record failed its checksum or does not parse. The message names the file and offset."""


class BlockingCallError(DataStoreError, RuntimeError):
    """A blocking ``DataStore`` method was called from a running event loop.

    Use ``AsyncDataStore`` there instead: blocking the loop on the store's own loop thread could
    deadlock and would stall every other task.
    """


# -- the messages ------------------------------------------------------------------------
# Each error the package raises in more than one place is made here, so that one mistake
# reads the same wherever it is found. Private: the exception types above are the API.


def describe_key(key: object) -> str:
    """A short printable form of a key for error messages (never the whole of a long one)."""
    text = repr(key)
    return text if len(text) <= 48 else text[:40] + "…" + text[-4:]


def key_not_found(key: object) -> KeyNotFoundError:
    return KeyNotFoundError(f"key {describe_key(key)} not found")


def key_exists(key: object) -> KeyExistsError:
    return KeyExistsError(f"key {describe_key(key)} already exists")


def _first_ten(keys: list[str]) -> str:
    """``keys`` named in a message: the first ten, and how many more."""
    named = ", ".join(map(describe_key, keys[:10]))
    return named + (f" and {len(keys) - 10} more" if len(keys) > 10 else "")


def keys_exist(keys: list[str]) -> KeyExistsError:
    """A ``create_many`` of keys some of which are live: the first ten are named."""
    return KeyExistsError(f"keys already exist: {_first_ten(keys)}; nothing was written")


def keys_skipped(keys: list[str]) -> KeyExistsError:
    """A ``create_many(atomic=False)`` that passed over the keys already live and wrote the
    others: the first ten are named."""
    return KeyExistsError(
        f"keys already exist: {_first_ten(keys)}; they were skipped, the other keys written"
    )


def keys_repeated(keys: list[str]) -> InvalidKeyError:
    """A batch that names one key more than once: the first ten are named."""
    return InvalidKeyError(f"keys given more than once: {_first_ten(keys)}; nothing was written")


def batch_no_room(records: int, needed: int, max_size: int) -> StoreFullError:
    """A batch that does not fit under ``max_size`` whole."""
    return StoreFullError(
        f"store is full: the batch's {records} bytes of records would bring the store to "
        f"{needed} bytes with the room kept for deletes and compaction (as much again as a "
        f"batch larger than a segment), over max_size {max_size}; nothing was written"
    )


def batch_too_large(records: int) -> StoreFullError:
    """A batch larger than one segment file can hold."""
    return StoreFullError(
        f"the batch's {records} bytes of records are more than a segment file can hold "
        "(4 GiB): split it; nothing was written"
    )


def not_pairs(method: str) -> InvalidValueError:
    """A batch whose items are not ``(key, value)`` pairs."""
    return InvalidValueError(f"{method}() takes a mapping or an iterable of (key, value) pairs")


def keys_not_str(method: str) -> InvalidKeyError:
    """A ``*_many`` call given one ``str``, which would be taken as an iterable of letters."""
    return InvalidKeyError(f"{method}() takes an iterable of keys, not one str")


def not_a_bool(name: str, value: object) -> InvalidOptionError:
    return InvalidOptionError(f"{name} must be a bool, not {type(value).__name__}")


def reopened(kind: str) -> StoreClosedError:
    """``open()`` of a store object (of class ``kind``) that was closed."""
    return StoreClosedError(f"this store was closed; make a new {kind} to reopen")


def opened_twice(state: str) -> DataStoreError:
    """``open()`` of a store object that is already ``state`` (opening, open, closing)."""
    return DataStoreError(f"this store is already {state}")


def not_open(state: str) -> StoreClosedError:
    """An operation on a store that is not open (``state``: new, opening, closing, closed,
    or forked: see :func:`used_across_fork`)."""
    if state == FORKED:
        return used_across_fork()
    return StoreClosedError(f"the store is {state}, not open")


FORKED = "forked"
"""The state of a store object inherited by a child process from the parent that opened it."""


def used_across_fork() -> StoreClosedError:
    """A store object used in a child process made by ``fork()`` after its parent opened it."""
    return StoreClosedError(
        "this store was opened by the parent of this process, before fork(): a store cannot "
        "be used across a fork; open it in this process instead (after the parent closes it)"
    )


def store_closed() -> StoreClosedError:
    """A call on a face that was closed."""
    return StoreClosedError("the store is closed")


def closed_before_write() -> StoreClosedError:
    """A write queued, or handed over, that the store closed before it could run."""
    return StoreClosedError("the store was closed before this write ran")


def incomplete_backup(path: Path) -> StorePathError:
    return StorePathError(
        f"{path} is a backup that was never finished (its copy was cut off): remove it and "
        "take the backup again"
    )


def not_a_file_target(path: Path, what: str) -> StorePathError:
    return StorePathError(
        f"cannot export to {path}: it is {what}, not a regular file (an export replaces its "
        "target whole, by renaming a new file over it); nothing was written"
    )


def bad_record(path: Path, offset: int, reason: str) -> CorruptionError:
    return CorruptionError(f"{path}: bad record at offset {offset}: {reason}")


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def disk_full(what: str, exc: OSError) -> StoreFullError:
    """The disk itself is full (not the store's ``max_size``): the caller can free room."""
    return StoreFullError(f"the disk is full ({what}: {exc.strerror})")


@contextlib.contextmanager
def map_os_errors(what: str) -> Iterator[None]:
    """Turn an ``OSError`` raised inside into the store's own error, at the OS boundary.

    A full disk is a :class:`StoreFullError` (the caller can free room and go on); any other
    failure a :class:`StoreIOError` naming ``what`` was being done.
    """
    try:
        yield
    except OSError as exc:
        if is_disk_full(exc):
            raise disk_full(what, exc) from exc
        raise StoreIOError(f"{what}: {exc.strerror or exc}") from exc

"""aiokv: an asyncio-native, file-based key-value store.

``AsyncDataStore`` for asyncio code, ``DataStore`` for threads; both keep their data in
append-only, checksummed segment files with an in-memory index (the Bitcask design).
"""

from __future__ import annotations

from aiokv._bitcask.native import ACCELERATED
from aiokv._bitcask.options import DEFAULT_MAX_SIZE
from aiokv._bitcask.store import AsyncDataStore
from aiokv._bitcask.sync import DataStore
from aiokv._core.clock import Clock, ManualClock, SystemClock
from aiokv._core.codec import MAX_KEY_LENGTH, MAX_TTL_S, MAX_VALUE_BYTES, MAX_VALUE_DEPTH
from aiokv._core.contract import AsyncStore
from aiokv._core.stats import StoreStats
from aiokv._core.verify_report import Problem, VerifyReport
from aiokv.errors import (
    BlockingCallError,
    CorruptionError,
    DataStoreError,
    ImportFileError,
    InvalidKeyError,
    InvalidOptionError,
    InvalidTTLError,
    InvalidValueError,
    KeyExistsError,
    KeyNotFoundError,
    NotSupportedError,
    StoreClosedError,
    StoreFullError,
    StoreIOError,
    StoreLockedError,
    StorePathError,
    StoreUnavailableError,
    ValueTooLargeError,
)

__version__ = "0.1.0.dev0"

accelerated: bool = ACCELERATED
"""True when the C extensions (the key directory, the record check and the value codec) are
all in use; False where the pure-Python twins run instead: a machine with no C compiler at
install, a source checkout that was not built, or ``AIOKV_PURE_PYTHON=1``. A store opened on
the pure-Python parts unasked warns once (a ``RuntimeWarning``)."""

__all__ = [
    "DEFAULT_MAX_SIZE",
    "MAX_KEY_LENGTH",
    "MAX_TTL_S",
    "MAX_VALUE_BYTES",
    "MAX_VALUE_DEPTH",
    "AsyncDataStore",
    "AsyncStore",
    "BlockingCallError",
    "Clock",
    "CorruptionError",
    "DataStore",
    "DataStoreError",
    "ImportFileError",
    "InvalidKeyError",
    "InvalidOptionError",
    "InvalidTTLError",
    "InvalidValueError",
    "KeyExistsError",
    "KeyNotFoundError",
    "ManualClock",
    "NotSupportedError",
    "Problem",
    "StoreClosedError",
    "StoreFullError",
    "StoreIOError",
    "StoreLockedError",
    "StorePathError",
    "StoreStats",
    "StoreUnavailableError",
    "SystemClock",
    "ValueTooLargeError",
    "VerifyReport",
    "__version__",
    "accelerated",
]

"""The checks of the batch and iteration arguments, shared by every backend.

A key, a value and a TTL are checked by :mod:`aiokv._core.codec`; what is here checks the
arguments made of many of them (a batch of pairs, a list of keys, a prefix) in the same order
and with the same messages whatever the backend, so that a caller moving from one to another
meets the same errors.
"""

from __future__ import annotations

import asyncio
import collections
import operator
import os
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from aiokv import errors
from aiokv._core.codec import MAX_KEY_LENGTH, check_key, encode_value, encode_values
from aiokv.errors import DataStoreError, InvalidKeyError, InvalidOptionError

BATCH_ITEMS_PER_YIELD: Final = 1024
"""Items of a ``create_many`` checked and encoded between two yields to the event loop."""


def check_prefix(prefix: object) -> bytes:
    """The UTF-8 bytes of ``prefix``, checked as a key would be, but for its length: from 0
    (every key) to ``MAX_KEY_LENGTH`` characters.

    A ``str`` starts with a prefix exactly when its UTF-8 bytes start with the prefix's, so
    the keys are matched as the bytes the records hold, with no decoding.
    """
    if not isinstance(prefix, str):
        raise InvalidKeyError(f"prefix must be a str, not {type(prefix).__name__}")
    if len(prefix) > MAX_KEY_LENGTH:
        raise InvalidKeyError(
            f"prefix must be at most {MAX_KEY_LENGTH} characters, got {len(prefix)}: "
            f"{errors.describe_key(prefix)}"
        )
    try:
        return str.encode(prefix, "utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKeyError(
            f"prefix is not encodable as UTF-8 (lone surrogate at {exc.start}): "
            f"{errors.describe_key(prefix)}"
        ) from None


def check_path(path: object) -> Path:
    """``path`` (a ``str`` or ``os.PathLike`` of one) made absolute, so that a later ``chdir``
    cannot move what it names."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidOptionError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise InvalidOptionError("path must be a str path, not bytes")
    if not text:
        raise InvalidOptionError("path must not be empty")
    return Path(os.path.abspath(text))


def checked_keys(keys: Iterable[str], method: str) -> list[str]:
    """``keys`` as a list, each checked as a key, before any is used."""
    if isinstance(keys, str):
        raise errors.keys_not_str(method)
    listed = list(keys)
    deque(map(check_key, listed), maxlen=0)  # each checked, in C-level passes
    return listed


async def batch_chunks(
    items: Mapping[str, dict[str, Any]] | Iterable[tuple[str, dict[str, Any]]], method: str
) -> AsyncIterator[tuple[list[str], list[Any]]]:
    """The keys and values of a batch, a piece at a time, giving the loop back between two:
    a batch of a million is checked and encoded without holding the loop for all of it."""
    if isinstance(items, (str, bytes)):
        raise errors.not_pairs(method)
    if isinstance(items, Mapping):
        keys, values = list(items.keys()), list(items.values())
    else:
        try:
            pairs = list(items)
        except TypeError:
            raise errors.not_pairs(method) from None
        if not _all_pairs(pairs):
            raise errors.not_pairs(method)
        keys, values = list(map(_FIRST, pairs)), list(map(_SECOND, pairs))
    for start in range(0, len(keys), BATCH_ITEMS_PER_YIELD):
        if start:
            await asyncio.sleep(0)
        end = start + BATCH_ITEMS_PER_YIELD
        yield keys[start:end], values[start:end]


_FIRST = operator.itemgetter(0)
_SECOND = operator.itemgetter(1)


def _is_pair(item: object) -> bool:
    return isinstance(item, (tuple, list)) and len(item) == 2


_PAIR_TYPES: Final = frozenset({tuple, list})


def _all_pairs(items: list[Any]) -> bool:
    # Two C-level passes answer for the usual items (exact tuples or lists): a Python call
    # per item cost as much as encoding a small value. Subclasses (a named tuple) go one by one.
    if _PAIR_TYPES.issuperset(map(type, items)):
        return not items or set(map(len, items)) == {2}
    return all(map(_is_pair, items))


def encoded(keys: list[str], values: list[Any]) -> tuple[list[bytes], list[int]]:
    """Each value encoded (a C-level pass); an error names its key (a batch has many)."""
    try:
        return encode_values(values)
    except DataStoreError as exc:
        for key, value in zip(keys, values, strict=True):
            try:
                encode_value(value)
            except DataStoreError:
                raise type(exc)(f"key {errors.describe_key(key)}: {exc}") from None
        raise


def refuse_repeats(keys: list[str], key_bytes: list[bytes]) -> None:
    """Refuse a batch that names a key twice (all of them named, as the first ten)."""
    if len(set(key_bytes)) < len(key_bytes):
        counts = collections.Counter(keys)
        raise errors.keys_repeated([key for key, seen in counts.items() if seen > 1])

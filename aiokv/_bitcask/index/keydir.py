"""The key directory: a key's hash → the location of its record, with no key held.

The index keeps a million keys in a few bytes each by holding neither the keys nor Python
objects per key: :class:`KeyDir` maps a keyed 48-bit hash of each key to a location (see
``index.index.location``), and whoever asks checks the record it finds there, which holds
the key. Two live keys whose hashes agree are told apart by :class:`index.index.Index`,
which keeps the second one by its full key.

Two implementations with the same behaviour: ``index._ckeydir`` (C, built with the package
when a compiler is at hand: about 25 bytes per key) and :class:`PyKeyDir` below (a dict, for
where it is not). ``AIOKV_PURE_PYTHON=1`` in the environment picks the pure one.

Every method runs to its end without releasing the GIL or calling back into Python code, so
a reader in another thread sees each change whole.

:func:`check_hint_entries` checks a hint's entries before an open loads them, likewise in C
where the C key directory is in use.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Final

from aiokv._bitcask.format import hint as _hint
from aiokv._bitcask.format.hint import BadHint, Hint
from aiokv._bitcask.format.record import (
    FILE_HEADER_SIZE,
    HEADER_SIZE,
    MAX_KEY_BYTES,
    MAX_RECORD_SIZE,
)

HASH_BITS: Final = 48
"""Bits of a key's hash kept. A wider hash would not leave room for a location beside it in
16 bytes; the rare two live keys with one hash are handled exactly, not assumed away."""

_KIND_PUT: Final = 1  # aiokv._bitcask.format.record.KIND_PUT
_KIND_DELETE: Final = 2  # aiokv._bitcask.format.record.KIND_DELETE
_KEY_END: Final = 0xFF  # aiokv._bitcask.format.hint.KEY_END


class PyKeyDir:
    """:class:`KeyDir` as a dict keyed by the masked built-in hash of the key.

    ``seed`` is checked for the C type's sake and otherwise unused: the built-in hash of
    ``bytes`` is already SipHash under a key drawn for each process.
    """

    __slots__ = ("_mask", "_table")

    def __init__(self, seed: bytes, hash_bits: int = HASH_BITS) -> None:
        if len(seed) != 16:
            raise ValueError("seed must be 16 bytes")
        if not 1 <= hash_bits <= HASH_BITS:
            raise ValueError(f"hash_bits must be from 1 to {HASH_BITS}")
        self._mask = (1 << hash_bits) - 1
        self._table: dict[int, int] = {}

    def hash(self, key: bytes) -> int:
        if type(key) is not bytes:
            raise TypeError(f"a key is bytes, not {type(key).__name__}")
        return hash(key) & self._mask

    def __len__(self) -> int:
        return len(self._table)

    def get(self, key: bytes) -> int | None:
        return self._table.get(self.hash(key))

    def put(self, key: bytes, loc: int) -> int | None:
        _check_location(loc)
        h = self.hash(key)
        old = self._table.get(h)
        self._table[h] = loc
        return old

    def pop(self, key: bytes) -> int | None:
        return self._table.pop(self.hash(key), None)

    def locations(self) -> list[int]:
        """Every entry's location, in no particular order."""
        return list(self._table.values())

    def load(
        self,
        keys: bytes | memoryview[Any],
        lengths: Sequence[int],
        kinds: Sequence[int],
        offsets: Sequence[int],
        sizes: Sequence[int],
        segment: int,
        start: int,
        pos: int,
    ) -> tuple[int, int, int, int, int]:
        """Apply a hint's entries from ``start`` (whose key begins at ``pos`` in ``keys``).

        A put of a key whose hash is absent is added; a delete of one is skipped (the key is
        not live). The first entry whose key's hash is present stops the load: the caller
        decides it, knowing which key the present entry is, and calls again from there.
        Returns ``(stop, pos, added, added_key_bytes, added_size)``: the entry it stopped at
        (``len(kinds)`` if none) and where that entry's key begins, how many keys it added,
        their total length and their records' total size.
        """
        count = len(kinds)
        if not len(lengths) == len(offsets) == len(sizes) == count:
            raise ValueError("columns of different lengths")
        if not 0 <= start <= count or not 0 <= pos <= len(keys):
            raise ValueError("start or pos out of range")
        table = self._table
        base = segment << 48
        added = added_key_bytes = added_size = 0
        i = start
        while i < count:
            length = lengths[i]
            end = pos + length
            if end >= len(keys) or keys[end] != _KEY_END:
                raise ValueError(f"entry {i}: its key does not end where its length says")
            kind = kinds[i]
            if kind != _KIND_PUT and kind != _KIND_DELETE:
                raise ValueError(f"entry {i}: unknown kind {kind}")
            h = self.hash(bytes(keys[pos:end]))
            if h in table:
                break
            if kind == _KIND_PUT:
                loc = base | offsets[i] << 16 | sizes[i]
                _check_location(loc)
                table[h] = loc
                added += 1
                added_key_bytes += length
                added_size += sizes[i]
            pos = end + 1
            i += 1
        return i, pos, added, added_key_bytes, added_size

    def __sizeof__(self) -> int:
        return object.__sizeof__(self) + self._table.__sizeof__()


def _check_location(loc: int) -> None:
    # segment < 2**32, offset < 2**32, size < 2**16: what the C type's 16-byte entry holds.
    if not isinstance(loc, int):
        raise TypeError(f"a location is an int, not {type(loc).__name__}")
    if not 0 <= loc < 1 << 80:
        raise ValueError(f"not a location: {loc}")


def _pick() -> Any:
    if os.environ.get("AIOKV_PURE_PYTHON"):
        return PyKeyDir
    try:
        from aiokv._bitcask.index._ckeydir import KeyDir as CKeyDir
    except ImportError:
        return PyKeyDir
    return CKeyDir


KeyDir: Final[type[PyKeyDir]] = _pick()
"""The implementation in use: the C one where it was built."""

IN_C: Final = KeyDir is not PyKeyDir
"""Whether the C key directory (``index._ckeydir``) is the one in use."""


# -- a hint's entries, checked before they are loaded ------------------------------------


def check_entries_py(hint: Hint) -> None:
    """:func:`check_hint_entries` in Python: ``format.hint``'s column checks and its UTF-8
    check of the keys (where each key ends is then checked as the keys are loaded)."""
    _hint.check_entries(hint)
    _hint.check_keys(hint)


def _check_entries_c(hint: Hint) -> None:
    from aiokv._bitcask.index._ckeydir import check_entries

    kinds, lengths, offsets, sizes = hint.columns[:4]
    try:
        check_entries(
            hint.keys,
            lengths,
            kinds,
            offsets,
            sizes,
            FILE_HEADER_SIZE,
            hint.covered,
            MAX_KEY_BYTES,
            HEADER_SIZE,
            MAX_RECORD_SIZE,
        )
    except ValueError as exc:
        raise BadHint(str(exc)) from None


def _pick_check() -> Callable[[Hint], None]:
    if KeyDir is PyKeyDir:
        return check_entries_py
    return _check_entries_c


check_hint_entries: Final[Callable[[Hint], None]] = _pick_check()
"""Raise :class:`~format.hint.BadHint` unless a hint's entries are sound: what
``format.hint.check_entries`` and ``check_keys`` check, and in C (with the C key directory)
also that each key ends where its length says. One pass over the columns and the keys, with
no Python object per entry: the Python checks' iterators cost more than loading the entries.
"""

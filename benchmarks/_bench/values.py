"""The keys and values the benchmarks store, and the orders they go in."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

# Every peer pays the same encoding aiokv pays inside: the compact JSON of the dict (one cached
# encoder, as json.dumps keeps one for its defaults) and json.loads on the way back.
ENCODE: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
DECODE: Callable[[str | bytes], Any] = json.loads

Value = dict[str, Any]
ValueOf = Callable[[int], Value]


def key_of(i: int) -> str:
    return f"key:{i:08d}"


def make_keys(n: int) -> list[str]:
    return [key_of(i) for i in range(n)]


LONG_KEY_CHARS = 32
"""The length of the reopen workload's keys: the reopen target is set for keys this long."""


def long_key_of(i: int) -> str:
    """``key_of(i)`` padded with ``-`` to :data:`LONG_KEY_CHARS` characters."""
    return key_of(i).ljust(LONG_KEY_CHARS, "-")


def make_long_keys(n: int) -> list[str]:
    return [long_key_of(i) for i in range(n)]


def sized_value_of(value_bytes: int) -> ValueOf:
    """``i -> {"i": i, "pad": "x" * k}``, whose compact JSON is exactly ``value_bytes``: the
    values of :func:`sized_values` one at a time, for stores too large to hold in a list.

    The padding strings are shared between values of the same digit count, so a list of a
    hundred thousand 1 KB values costs a few megabytes, not a hundred.
    """
    pads: dict[int, str] = {}

    def value(i: int) -> Value:
        digits = len(str(i))
        pad = pads.get(digits)
        if pad is None:
            overhead = len(ENCODE({"i": i, "pad": ""}))
            pad = pads[digits] = "x" * (value_bytes - overhead)
        return {"i": i, "pad": pad}

    return value


def sized_values(n: int, value_bytes: int) -> list[Value]:
    """``n`` dicts ``{"i": i, "pad": "x" * k}`` whose compact JSON is exactly ``value_bytes``."""
    value = sized_value_of(value_bytes)
    values = [value(i) for i in range(n)]
    assert all(len(ENCODE(values[i]).encode()) == value_bytes for i in (0, n - 1))
    return values


def small_value(i: int) -> Value:
    return {"i": i}


def id_value(i: int, pad: str) -> Value:
    """The values of ``bench_core.py`` and ``bench_compaction.py``: an 8-digit id and a pad."""
    return {"id": f"{i:08d}", "pad": pad}


ID_OVERHEAD = len(ENCODE(id_value(0, "")))  # the compact JSON of an ``id_value`` with no pad


def id_pad(value_bytes: int) -> str:
    """The padding that makes ``id_value``'s compact JSON exactly ``value_bytes`` long."""
    pad = "x" * (value_bytes - ID_OVERHEAD)
    assert len(ENCODE(id_value(0, pad)).encode()) == value_bytes
    return pad


def chunks(items: Sequence[T], parts: int) -> list[Sequence[T]]:
    """``items`` dealt round-robin into ``parts`` parts."""
    return [items[i::parts] for i in range(parts)]


def shuffled(n: int, seed: int) -> list[int]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


NESTED_TAGS = 50  # the ints of a nested value's ``tags`` array
_FIELD_NAMES = tuple(f"field_{j:02d}" for j in range(30))  # bench_codec.py's nested names
_WORDS = tuple(f"value {k:02d}" for k in range(100))


def nested_value(i: int, note: str = "") -> Value:
    """A record of the shape applications store: an ``id``, a 50-int ``tags`` array, 30 short
    string and integer ``fields``, a few bools and nulls, and a ``note``.

    Each ``i`` has containers and numbers of its own; the field names and the short strings are
    shared between values, as an application's interned names and enum-like strings are (a
    shared ``str`` costs the encoders as much as a fresh one).
    """
    first = i * NESTED_TAGS
    return {
        "id": i,
        "tags": [(first + j) * 2_654_435_761 % 9_973 for j in range(NESTED_TAGS)],
        "fields": {
            name: _WORDS[(i + j) % len(_WORDS)] if j % 2 else (i * 31 + j * 1_000) % 1_000_000
            for j, name in enumerate(_FIELD_NAMES)
        },
        "active": i % 2 == 0,
        "deleted": False,
        "parent": None,
        "owner": None,
        "note": note,
    }


def nested_bytes_bound(n: int) -> int:
    """A bound on the compact JSON of ``nested_value(i)`` for every ``i < n``, note empty: the
    value of the longest id with every number at its widest and ``false`` for ``active``."""
    widest = nested_value(n - 1)
    widest["tags"] = [9_999] * NESTED_TAGS  # the tags are below 9,973
    widest["fields"] = {
        name: text if isinstance(text, str) else 999_999  # the numbers are below 1,000,000
        for name, text in widest["fields"].items()
    }
    widest["active"] = False
    return len(ENCODE(widest).encode())


def nested_value_of(value_bytes: int) -> ValueOf:
    """``i -> nested_value(i)`` whose compact JSON is exactly ``value_bytes``, padded by its
    ``note`` (the padding strings shared between values of the same length): the values of
    :func:`nested_values` one at a time, for stores too large to hold in a list.

    The function raises ``ValueError`` for a value over ``value_bytes`` with no note.
    """
    pads: dict[int, str] = {}

    def value_of(i: int) -> Value:
        value = nested_value(i)
        missing = value_bytes - len(ENCODE(value).encode())
        if missing < 0:
            raise ValueError(f"nested value {i} is over {value_bytes} bytes with no note")
        pad = pads.get(missing)
        if pad is None:
            pad = pads[missing] = "x" * missing
        value["note"] = pad
        return value

    return value_of


def nested_values(n: int, value_bytes: int) -> list[Value]:
    """``n`` values ``nested_value(i)`` whose compact JSON is exactly ``value_bytes``."""
    value_of = nested_value_of(value_bytes)
    values = [value_of(i) for i in range(n)]
    assert all(len(ENCODE(values[i]).encode()) == value_bytes for i in (0, n - 1))
    return values

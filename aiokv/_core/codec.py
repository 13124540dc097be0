"""The limits of keys, values and TTLs, and the checks that enforce them.

Pure functions, no I/O: every argument is checked (and a value encoded) here, in the caller's
task, before anything is queued for the writer, so a bad argument never costs a write.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from itertools import chain
from typing import Any, Final, NoReturn

import orjson

from aiokv.errors import (
    InvalidKeyError,
    InvalidTTLError,
    InvalidValueError,
    ValueTooLargeError,
    describe_key,
)

MAX_KEY_LENGTH: Final = 32
"""The longest key, in characters (code points)."""

MAX_VALUE_BYTES: Final = 16384
"""The largest value: the UTF-8 length of its compact JSON encoding."""

MAX_TTL_S: Final = 2**31 - 1
"""The longest time-to-live, in seconds."""

MAX_VALUE_DEPTH: Final = 256
"""How deeply lists and objects may nest in a value.

A fixed limit, rather than whatever the interpreter's recursion limit allows at the moment of
``create``, so that a value accepted once can always be decoded again, from any thread's stack.
"""

_encoder = json.JSONEncoder(
    ensure_ascii=False,
    allow_nan=False,  # NaN and Infinity are not JSON; no other reader could load them
    separators=(",", ":"),
)
VALUE_JSON: Final = 0
"""A value's encoding: compact UTF-8 JSON, read back with Python's ``json``."""
VALUE_JSON64: Final = 1
"""A value's encoding: compact UTF-8 JSON with every integer within 64 bits, which orjson reads
back exactly (it would read a larger integer as a float, silently losing digits)."""

MAX_INT_DIGITS: Final = 4300
"""The most digits of an integer in a value: CPython's default limit on int/str conversion.

Fixed here, not read from ``sys.get_int_max_str_digits()``, so a value stored by a process
that raised the limit can still be read by one that did not.
"""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of more than {MAX_INT_DIGITS} digits")
    return int(text)


_decode = json.JSONDecoder(parse_int=_parse_int).decode


def _check_key_py(key: object) -> bytes:
    """Return the key's UTF-8 bytes, or raise :class:`InvalidKeyError` saying what is wrong.

    The specification of :func:`check_key`; the one place its errors are made.
    """
    if not isinstance(key, str):
        raise InvalidKeyError(f"key must be a str, not {type(key).__name__}")
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        raise InvalidKeyError(
            f"key must be 1 to {MAX_KEY_LENGTH} characters, got {len(key)}: {describe_key(key)}"
        )
    try:
        # str's own encode: a subclass is taken for the text it holds, as the C check takes it.
        return str.encode(key, "utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKeyError(
            f"key is not encodable as UTF-8 (lone surrogate at {exc.start}): {describe_key(key)}"
        ) from None


def check_ttl(ttl: object) -> int | None:
    """Return ``ttl`` if it is ``None`` or an ``int`` from 1 to ``MAX_TTL_S``, else raise."""
    if ttl is None:
        return None
    # bool is an int subclass, but ``ttl=True`` is surely a mistake, not "one second".
    if isinstance(ttl, bool) or not isinstance(ttl, int):
        raise InvalidTTLError(f"ttl must be None or an int of seconds, not {type(ttl).__name__}")
    if not 1 <= ttl <= MAX_TTL_S:
        raise InvalidTTLError(f"ttl must be from 1 to {MAX_TTL_S} seconds, got {ttl}")
    return int(ttl)


def encode_value(value: object) -> tuple[bytes, int]:
    """Return the compact UTF-8 JSON of ``value`` and its encoding (``VALUE_JSON64`` or
    ``VALUE_JSON``), or raise :class:`InvalidValueError`.

    The value must be a ``dict`` that JSON carries exactly: decoding the bytes must give back
    an equal object. orjson itself refuses a key that is not exactly a ``str``, an integer
    beyond 64 bits and a lone surrogate; what it would write but not read back the same (a
    tuple, an enum, a subclass, NaN or Infinity written as ``null``) is caught by comparing
    the value with its JSON read back. That comparison is skipped only when the walk of
    :func:`_least_json_size` saw nothing but ``dict``, ``list``, ``str``, ``int``, ``float``,
    ``bool`` and ``None``, exactly, and no float could have been written as ``null``: such a
    value always reads back equal.

    The walk, and the encoding of a value it found plain, are the C ones of
    ``aiokv._core._ccodec`` where it was built (a few nanoseconds an item, 10 to 25 times
    faster than the Python walk, :func:`_least_json_size_py`, which is its specification;
    :func:`_encode_plain_py` likewise), and the Python ones where it was not or
    ``AIOKV_PURE_PYTHON`` is set.

    orjson encodes and decodes many times faster than ``json``. What it refuses or changes
    (an integer beyond 64 bits, nesting past its limit, a lone surrogate, a tuple, a
    datetime) goes to ``json``, which stores what orjson could not, or says precisely why the
    value cannot be stored.
    """
    # Its type, not isinstance: an object whose __class__ claims dict is not one.
    if type(value) is not dict and not issubclass(type(value), dict):
        raise InvalidValueError(f"value must be a dict (a JSON object), not {type(value).__name__}")
    checked: dict[Any, Any] = value  # type: ignore[assignment]  # a dict: tested above
    walked = _encode_plain(checked)
    if isinstance(walked, bytes):
        return walked, VALUE_JSON64  # reads back equal: see the docstring
    least, _kinds = walked
    if not 0 <= least <= MAX_VALUE_BYTES:
        _refuse(least)
    try:
        data = orjson.dumps(checked)
    except orjson.JSONEncodeError:
        return _encode_with_json(checked), VALUE_JSON
    if len(data) > MAX_VALUE_BYTES:
        raise ValueTooLargeError(
            f"value is {len(data)} bytes as JSON; the limit is {MAX_VALUE_BYTES} bytes"
        )
    # orjson nests at most 254 levels deep (under MAX_VALUE_DEPTH), so no depth check here.
    if orjson.loads(data) != checked:
        return _encode_with_json(checked), VALUE_JSON
    return data, VALUE_JSON64


def _encode_plain_py(value: dict[Any, Any]) -> bytes | tuple[int, int]:
    """orjson's JSON of ``value`` if it needs no other check: the walk found it within the
    limits and saw only plain kinds, and orjson wrote it within the size limit, with no
    ``null`` where a float may have been; else the walk's result, ``(least, kinds)``, for
    :func:`encode_value` to go on from (a value orjson refused, or wrote too long, is
    encoded again there: both are rare)."""
    walked = _least_json_size_py(value)
    least, kinds = walked
    if not 0 <= least <= MAX_VALUE_BYTES or kinds == _OTHER:
        return walked
    try:
        data = orjson.dumps(value)
    except orjson.JSONEncodeError:
        return walked
    if len(data) > MAX_VALUE_BYTES or (kinds == _PLAIN_WITH_FLOATS and b"null" in data):
        return walked
    return data


def _refuse(least: int) -> NoReturn:
    """Raise the error the walk's result ``least`` calls for (it is not a size within the
    limit)."""
    if least == CYCLE:
        raise InvalidValueError("value holds a container inside itself (a cycle)")
    if least < 0:
        raise InvalidValueError(f"value nests deeper than {MAX_VALUE_DEPTH} levels")
    raise ValueTooLargeError(
        f"value is at least {least} bytes as JSON; the limit is {MAX_VALUE_BYTES} bytes"
    )


_CONTAINERS = (dict, list, tuple)
# Sets of exact types, for the walk's C-level checks of a container's items, such as
# ``_STR.issuperset(map(type, items))`` (which stops at the first item of another type).
_STR: Final = frozenset({str})
_DICT: Final = frozenset({dict})
_WHOLE: Final = frozenset({int, bool, type(None)})
"""The exact scalar types orjson always writes so that they read back equal."""
_SCALARS: Final = _WHOLE | {float}
"""The exact types whose JSON is at least one byte and holds no string or container."""
_PLAIN_TYPES: Final = _SCALARS | {str, dict, list}
"""The exact types orjson writes so that they read back equal (a float only if finite)."""
_BATCH: Final = 8
"""The fewest dicts in a list bounded all at once (see :func:`_least_dicts`)."""

# What the walk saw, for encode_value: only plain types, with or without a float, or other.
# Small ints, which the C walk returns as cheaply as these names.
_PLAIN: Final = 0
_PLAIN_WITH_FLOATS: Final = 1
_OTHER: Final = 2
_SAW_OTHER: Final = 1  # a flag of the walk: an object not of a plain type
_SAW_FLOAT: Final = 2  # a flag of the walk: a float


def _least_json_size_py(value: dict[Any, Any]) -> tuple[int, int]:
    """A lower bound of the size of ``value``'s JSON, from its strings' and containers'
    lengths, or any number over ``MAX_VALUE_BYTES`` once the bound passes it; -1 if lists
    and dicts nest deeper than ``MAX_VALUE_DEPTH``. With it, what kinds of objects the walk
    saw: ``_PLAIN``, ``_PLAIN_WITH_FLOATS`` or ``_OTHER`` (see :func:`encode_value`).

    Checked before any encoder runs, so that a value of a gigabyte is refused without being
    encoded: an encoder would build (and orjson reserves several times) its whole JSON first,
    which can exhaust the memory of the process. A container's length is counted before any
    of its items is looked at, and the walk stops as soon as the bound passes the limit, so
    it looks at no more than about ``MAX_VALUE_BYTES`` items whatever the value's size.

    The walk is most of the cost of a create, so it stays out of Python's bytecode where it
    can: a container whose items are all exact scalars or all exact strings is bounded with
    ``len``, ``sum(map(len, ...))`` and ``frozenset.issuperset(map(type, ...))``, and a list
    of many exact dicts (a list of records) all at once (:func:`_least_dicts`); only a
    container of mixed items is walked item by item. A container met again is counted again
    (its JSON repeats it); one met inside itself is a cycle: ``CYCLE``.

    The order of the walk decides which of a cycle, the depth and the size is reported when a
    value has more than one of them; ``aiokv._core._ccodec.least_json_size`` walks in the same
    order and gives the same results: a container's own length, keys and scalar items are
    counted before any container inside it is walked, and those are walked last first. A
    subclass of ``dict``, ``list``, ``str`` or ``tuple`` is counted by its own storage (as
    orjson writes it: see :func:`_own_len`), whatever its ``__len__`` or ``__iter__`` say,
    and types are tested with ``issubclass(type(item), ...)``, which runs no Python code
    (``isinstance`` may call a ``__class__`` property): no code of the value runs in a walk.
    """
    if type(value) is dict:  # most values are one flat dict: bounded with no stack
        least = 2 * len(value) + 1
        if least > MAX_VALUE_BYTES:
            return least, _OTHER
        flags = 0
        for item in value.values():
            kind = type(item)
            if kind is str:
                least += len(item) + 2
            elif kind in _SCALARS:
                least += 1
                if kind is float:
                    flags |= _SAW_FLOAT
            elif issubclass(kind, _CONTAINERS):
                return _least_nested_json_size(value)
            else:  # a subclass of str or int, or a type JSON lacks: one byte, never plain
                least += 1
                flags |= _SAW_OTHER
        # Only keys exactly of type str count here (orjson refuses any other).
        if _STR.issuperset(map(type, value)):
            least += sum(map(len, value)) + 2 * len(value)
        else:
            least += sum(len(key) + 2 for key in value if type(key) is str)
        if flags & _SAW_OTHER:
            return least, _OTHER
        return least, _PLAIN_WITH_FLOATS if flags else _PLAIN
    return _least_nested_json_size(value)


def _least_nested_json_size(value: dict[Any, Any]) -> tuple[int, int]:
    """:func:`_least_json_size_py` of a value with containers inside (or of a dict subclass).

    A container that stands in the value more than once is counted each time, as its JSON
    repeats it: counted once, a list holding one list twice, 64 levels deep, would pass as a
    few hundred bytes and ask the encoder for 2**64 items. One met again inside itself is a
    cycle (``CYCLE``), which no JSON can carry. Each container adds at least a byte, so the
    walk still ends by the limit.
    """
    least = 0
    flags = 0 if type(value) is dict else _SAW_OTHER
    # The containers being walked, from the value down to here: their ids, and the depths
    # they were met at (the walk is depth first, so popping an item at some depth means every
    # container at that depth or below it has been walked).
    inside: set[int] = set()
    path_ids: list[int] = []
    path_depths: list[int] = []
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        while path_depths and path_depths[-1] >= depth:
            path_depths.pop()
            inside.discard(path_ids.pop())
        key = id(item)
        if key in inside:
            return CYCLE, _OTHER
        if depth > MAX_VALUE_DEPTH:
            return -1, _OTHER
        kind = type(item)
        # The brackets and commas: n + 1 for n items (two for none, so a lower bound), and a
        # dict's n colons more.
        size = len(item) if kind is dict or kind is list else _own_len(item)
        least += (size if kind is list or not issubclass(kind, dict) else 2 * size) + 1
        if least > MAX_VALUE_BYTES:
            break  # before looking at a single item: a list of 10**7 costs nothing
        inside.add(key)
        path_ids.append(key)
        path_depths.append(depth)
        if kind is list:
            if len(item) >= _BATCH and depth < MAX_VALUE_DEPTH and _plain_dicts(item, inside):
                more, found = _least_dicts(item, depth + 2, stack)
            else:
                more, found = _least_items(item, depth + 1, stack)
        elif kind is dict:
            least += _least_keys(item)
            more, found = _least_items(item.values(), depth + 1, stack)
        else:  # a tuple or a subclass: bounded as an exact one, but never plain
            if issubclass(kind, dict):
                least += _least_keys(dict.keys(item))
                item = dict.values(item)
            else:
                item = _own_items(item)
            more, found = _least_items(item, depth + 1, stack)
            found |= _SAW_OTHER
        least += more
        flags |= found
        if least > MAX_VALUE_BYTES:
            break
    if flags & _SAW_OTHER:
        return least, _OTHER
    return least, _PLAIN_WITH_FLOATS if flags & _SAW_FLOAT else _PLAIN


CYCLE: Final = -2
"""What the walk returns for a value with a container inside itself."""


def _plain_dicts(items: list[Any], inside: set[int]) -> bool:
    """Whether ``items`` are all exact dicts, none of them one the walk is inside (that would
    be a cycle, found by walking them one by one)."""
    return _DICT.issuperset(map(type, items)) and inside.isdisjoint(map(id, items))


def _own_len(item: Any) -> int:
    """The length of a container or a string in its own storage, which orjson and the C walk
    read, whatever ``__len__`` a subclass has."""
    kind = type(item)
    if issubclass(kind, str):
        return str.__len__(item)
    if issubclass(kind, dict):
        return dict.__len__(item)
    if issubclass(kind, list):
        return list.__len__(item)
    return tuple.__len__(item)


def _own_items(items: Any) -> list[Any] | tuple[Any, ...]:
    """The items of a tuple, or of a subclass of list or tuple, from its own storage (a copy
    for a subclass: ``list.copy`` and a tuple's slice read the storage, not ``__iter__``)."""
    if type(items) is tuple:
        return items
    if issubclass(type(items), list):
        return list.copy(items)
    return tuple.__getitem__(items, slice(None))


def _least_keys(keys: Any) -> int:
    """The least JSON size of the keys of a dict (or of several): those that are strings."""
    if _STR.issuperset(map(type, keys)):
        return sum(map(len, keys)) + 2 * len(keys)
    return sum(str.__len__(key) + 2 for key in keys if issubclass(type(key), str))


def _least_items(items: Any, depth: int, stack: list[tuple[Any, int]]) -> tuple[int, int]:
    """The least JSON size of ``items``, without the containers among them (pushed on
    ``stack`` at ``depth``), and the ``_SAW_*`` flags of what they are."""
    if _WHOLE.issuperset(map(type, items)):
        return len(items), 0
    if _STR.issuperset(map(type, items)):
        return sum(map(len, items)) + 2 * len(items), 0
    least = 0
    flags = 0
    for item in items:  # the exact types tested first, without a global name
        kind = type(item)
        if kind is str:
            least += len(item) + 2  # at least a byte a character, and the quotes
        elif kind is int or kind is bool or item is None:
            least += 1
        elif kind is dict or kind is list:
            stack.append((item, depth))
        elif kind is float:
            least += 1
            flags |= _SAW_FLOAT
        else:  # a subclass, a tuple or a type JSON lacks: counted as before, never plain
            flags |= _SAW_OTHER
            if issubclass(kind, str):
                least += str.__len__(item) + 2
            elif issubclass(kind, _CONTAINERS):
                stack.append((item, depth))
            else:
                least += 1
    return least, flags


def _least_dicts(dicts: list[dict[Any, Any]], depth: int, stack: list[Any]) -> tuple[int, int]:
    """:func:`_least_items` of a list of exact dicts, all at once: with their own
    brackets, commas and colons, their keys, and their values (whose containers are pushed
    at ``depth``); over ``MAX_VALUE_BYTES`` before their keys are looked at if that is enough."""
    count = sum(map(len, dicts))  # every key and value of them all
    least = 2 * count + len(dicts)
    if least > MAX_VALUE_BYTES:
        return least, 0
    join = chain.from_iterable
    if _STR.issuperset(map(type, join(dicts))):
        least += sum(map(len, join(dicts))) + 2 * count
    else:
        least += _least_keys(list(join(dicts)))
    if _WHOLE.issuperset(map(type, join(map(dict.values, dicts)))):
        return least + count, 0
    more, flags = _least_items(list(join(map(dict.values, dicts))), depth, stack)
    return least + more, flags


def _encode_plains_py(values: list[Any]) -> list[bytes]:
    """:func:`_encode_plain_py` of each value, each copied into bytes of its own size
    (orjson's result keeps the larger buffer it grew), for as long as it gives bytes and the
    value is exactly a ``dict``: the specification of the C ``encode_plains``."""
    done = []
    for value in values:
        if type(value) is not dict:
            break
        data = _encode_plain_py(value)
        if not isinstance(data, bytes):
            break
        done.append(bytes(memoryview(data)))
    return done


Walk = Callable[[dict[Any, Any]], tuple[int, int]]
EncodePlain = Callable[[dict[Any, Any]], "bytes | tuple[int, int]"]
EncodePlains = Callable[[list[Any]], list[bytes]]


def _pick() -> tuple[Walk, EncodePlain, EncodePlains]:
    if os.environ.get("AIOKV_PURE_PYTHON"):
        return _least_json_size_py, _encode_plain_py, _encode_plains_py
    try:
        from aiokv._core._ccodec import encode_plain, encode_plains, least_json_size
    except ImportError:  # not built where no C compiler was found
        return _least_json_size_py, _encode_plain_py, _encode_plains_py
    return least_json_size, encode_plain, encode_plains


# The walk and the encoding of plain values in use: the C ones where they were built.
_least_json_size, _encode_plain, _encode_plains = _pick()


def encode_values(values: list[Any]) -> tuple[list[bytes], list[int]]:
    """:func:`encode_value` of each of ``values``: their JSON and encodings, for a batch.

    The plain values (nearly all) go through one C-level pass that keeps each result in
    bytes of its own size: orjson's own result holds the buffer it grew, about 8 KB for a
    1 KB value, which a batch would hold for every value until it is written. The first value
    that pass leaves, and the ones after it, are encoded one at a time (and raise the first
    error). The caller names the value's key in the error.
    """
    data = _encode_plains(values)
    encodings = [VALUE_JSON64] * len(data)
    for value in values[len(data) :]:
        encoded, encoding = encode_value(value)
        data.append(bytes(memoryview(encoded)))  # right-sized, as above
        encodings.append(encoding)
    return data, encodings


def _pick_check_key() -> Callable[[object], bytes]:
    if os.environ.get("AIOKV_PURE_PYTHON"):
        return _check_key_py
    try:
        from aiokv._core._ccodec import check_key as c_check_key
        from aiokv._core._ccodec import use_key_check
    except ImportError:  # not built where no C compiler was found
        return _check_key_py
    use_key_check(_check_key_py)  # it raises the error for every key the C check refuses
    return c_check_key


check_key: Final = _pick_check_key()
"""The key's UTF-8 bytes, or :class:`InvalidKeyError` saying what is wrong: every read and
write asks it, so it is C where built (see :func:`_check_key_py`)."""

IN_C: Final = check_key is not _check_key_py and _least_json_size is not _least_json_size_py
"""Whether the C codec (``aiokv._core._ccodec``) is the one in use."""


def _encode_with_json(value: dict[Any, Any]) -> bytes:
    try:
        text = _encoder.encode(value)
    except RecursionError:
        raise InvalidValueError(
            f"value nests deeper than {MAX_VALUE_DEPTH} levels (or is self-referencing)"
        ) from None
    except (TypeError, ValueError) as exc:
        # TypeError: an object JSON has no form for (set, bytes, ...); ValueError: NaN or
        # Infinity, a circular reference, or an int too long to convert to text.
        raise InvalidValueError(f"value cannot be stored as JSON: {exc}") from None
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidValueError(
            f"value holds a string not encodable as UTF-8 (lone surrogate): {exc.reason}"
        ) from None
    if len(data) > MAX_VALUE_BYTES:
        raise ValueTooLargeError(
            f"value is {len(data)} bytes as JSON; the limit is {MAX_VALUE_BYTES} bytes"
        )
    # Counting brackets is C-speed and bounds the depth from above; only a value with many
    # containers pays for the exact walk.
    if text.count("[") + text.count("{") > MAX_VALUE_DEPTH and _depth(value) > MAX_VALUE_DEPTH:
        raise InvalidValueError(f"value nests deeper than {MAX_VALUE_DEPTH} levels")
    try:
        same = _decode(text) == value
    except ValueError as exc:  # an integer too long to read back everywhere
        raise InvalidValueError(f"value cannot be stored as JSON: {exc}") from None
    except RecursionError:  # pragma: no cover - the depth check rules this out
        same = False
    if not same:
        raise InvalidValueError(
            "value would not read back the same from JSON "
            "(non-string dict keys, tuples or other types JSON cannot carry exactly)"
        )
    return data


def decode_value(data: bytes | memoryview, encoding: int) -> dict[str, Any]:
    """Decode a stored value. The caller has checked the record's CRC."""
    result: dict[str, Any] = (
        orjson.loads(data) if encoding == VALUE_JSON64 else json.loads(bytes(data))
    )
    return result


_DIGITS_AS_ZERO: Final = bytes.maketrans(b"123456789", b"000000000")
_NINETEEN_DIGITS: Final = b"0" * 19  # as long as 2**63


def has_long_digits(data: bytes) -> bool:
    """Whether ``data`` holds a run of 19 digits or more: an integer orjson may read as a
    float. (Every digit made a 0 by ``bytes.translate``, then a substring search: 0.85 µs
    for 1 KB, where the regular expression ``[0-9]{19}`` took 7.5 µs, three times the decode
    it guards.)"""
    return _NINETEEN_DIGITS in data.translate(_DIGITS_AS_ZERO)


def decode_json(data: bytes) -> dict[str, Any]:
    """Decode a value's compact JSON stored without its encoding (by a backend other than
    the local engine): orjson, unless the JSON may hold an integer beyond 64 bits (which
    orjson reads as a float, changing it) or nests past orjson's limit; ``json`` then.

    :raises ValueError: ``data`` is not JSON, or not a JSON object.
    """
    if not has_long_digits(data):
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            value = json.loads(data)  # too deep for orjson; or not JSON: json says so too
    else:
        value = json.loads(data)
    if type(value) is not dict:
        raise ValueError(f"a JSON {type(value).__name__}, not an object")
    return value


def _depth(value: object) -> int:
    """The nesting depth of lists and dicts in ``value``, walked without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth > deepest:
            deepest = depth
            if deepest > MAX_VALUE_DEPTH:
                break
        stack.extend((child, depth + 1) for child in children)
    return deepest

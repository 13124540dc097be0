"""The limits of keys, values and TTLs, and the checks that enforce them.

Pure functions, no I/O: every argument is checked (and a value encoded) here, in the caller's
task, before anything is queued for the writer, so a bad argument never costs a write.
"""

from __future__ import annotations

import json
from typing import Any, Final

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


def check_key(key: object) -> bytes:
    """Return the key's UTF-8 bytes, or raise :class:`InvalidKeyError` saying what is wrong."""
    if not isinstance(key, str):
        raise InvalidKeyError(f"key must be a str, not {type(key).__name__}")
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        raise InvalidKeyError(
            f"key must be 1 to {MAX_KEY_LENGTH} characters, got {len(key)}: {describe_key(key)}"
        )
    try:
        return key.encode("utf-8")
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
    an equal object. That one comparison refuses non-string keys (JSON would silently turn
    ``{1: x}`` into ``{"1": x}``), tuples, NaN (which orjson writes as ``null``), and anything
    else that would not read back the same.

    orjson encodes and decodes many times faster than ``json``. What it refuses or changes
    (an integer beyond 64 bits, nesting past its limit, a lone surrogate, a tuple, a
    datetime) goes to ``json``, which stores what orjson could not, or says precisely why the
    value cannot be stored.
    """
    if not isinstance(value, dict):
        raise InvalidValueError(f"value must be a dict (a JSON object), not {type(value).__name__}")
    least = _least_json_size(value)
    if least < 0:
        raise InvalidValueError(f"value nests deeper than {MAX_VALUE_DEPTH} levels")
    if least > MAX_VALUE_BYTES:
        raise ValueTooLargeError(
            f"value is at least {least} bytes as JSON; the limit is {MAX_VALUE_BYTES} bytes"
        )
    try:
        data = orjson.dumps(value)
    except orjson.JSONEncodeError:
        return _encode_with_json(value), VALUE_JSON
    if len(data) > MAX_VALUE_BYTES:
        raise ValueTooLargeError(
            f"value is {len(data)} bytes as JSON; the limit is {MAX_VALUE_BYTES} bytes"
        )
    # orjson nests at most 254 levels deep (under MAX_VALUE_DEPTH), so no depth check here.
    if orjson.loads(data) != value:
        return _encode_with_json(value), VALUE_JSON
    return data, VALUE_JSON64


def _least_json_size(value: dict[Any, Any]) -> int:
    """A lower bound of the size of ``value``'s JSON, from its strings' and containers'
    lengths, or any number over ``MAX_VALUE_BYTES`` once the bound passes it; -1 if lists
    and dicts nest deeper than ``MAX_VALUE_DEPTH``.

    Checked before any encoder runs, so that a value of a gigabyte is refused without being
    encoded: an encoder would build (and orjson reserves several times) its whole JSON first,
    which can exhaust the memory of the process. The walk stops as soon as the bound passes
    the limit, so it visits at most a few thousand objects; a container met twice (a cycle)
    is left for the encoder to report.
    """
    # Most values are one flat dict: bounded in one pass over it, with no stack.
    least = 2 * len(value) + 1
    for key, item in value.items():
        if type(key) is str:
            least += len(key) + 2
        kind = type(item)
        if kind is str:
            least += len(item) + 2
        elif kind is dict or kind is list or kind is tuple or isinstance(item, _CONTAINERS):
            return _least_nested_json_size(value)
        else:
            least += 1
    return least


_CONTAINERS = (dict, list, tuple)


def _least_nested_json_size(value: dict[Any, Any]) -> int:
    """:func:`_least_json_size` of a value with containers inside."""
    least = 0
    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            least += len(item) + 2  # at least a byte a character, and the quotes
        elif isinstance(item, _CONTAINERS):
            if id(item) in seen:
                continue
            if depth > MAX_VALUE_DEPTH:
                return -1
            seen.add(id(item))
            least += 2 * len(item) + 1  # the brackets, the commas (and a dict's colons)
            if isinstance(item, dict):
                for key in item:
                    if isinstance(key, str):
                        least += len(key) + 2
                children: Any = item.values()
            else:
                children = item
            stack.extend((child, depth + 1) for child in children)
        else:
            least += 1
        if least > MAX_VALUE_BYTES:
            break
    return least


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

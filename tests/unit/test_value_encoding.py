"""Values go through orjson when it carries them exactly and through ``json`` otherwise; the
record says which, and every value reads back equal, across reopen, whichever path it took."""

from __future__ import annotations

import enum
import json
import math
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from _internals import (
    HEADER_SIZE,
    KIND_DELETE,
    MAX_VALUE_BYTES,
    VALUE_JSON,
    VALUE_JSON64,
    BadRecord,
    _encode_with_json,
    decode,
    decode_value,
    encode_delete,
    encode_put,
    encode_value,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiokv import AsyncDataStore, InvalidValueError, ValueTooLargeError


def nested_lists(depth: int) -> dict[str, Any]:
    inner: Any = []
    for _ in range(depth - 2):
        inner = [inner]
    return {"v": inner}


@pytest.mark.parametrize(
    ("value", "encoding"),
    [
        pytest.param({"i": 2**64 - 1}, VALUE_JSON64, id="u64-max"),
        pytest.param({"i": -(2**63)}, VALUE_JSON64, id="i64-min"),
        pytest.param({"i": 2**64}, VALUE_JSON, id="u64-max-plus-1"),
        pytest.param({"i": -(2**63) - 1}, VALUE_JSON, id="i64-min-minus-1"),
        pytest.param({"i": [1, {"deep": 10**30}]}, VALUE_JSON, id="nested-big-int"),
        pytest.param({"f": 1e-05, "g": 1e16, "h": -0.0}, VALUE_JSON64, id="floats"),
        pytest.param({"s": "é\x00\u2028🙂", "n": None, "b": True}, VALUE_JSON64, id="plain"),
        pytest.param(nested_lists(254), VALUE_JSON64, id="depth-254"),
        pytest.param(nested_lists(256), VALUE_JSON, id="depth-256"),
    ],
)
def test_encoding_is_chosen_by_what_orjson_carries_exactly(
    value: dict[str, Any], encoding: int
) -> None:
    data, chosen = encode_value(value)
    assert chosen == encoding
    assert decode_value(data, chosen) == value


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"e": Colour.RED}, id="enum"),  # orjson writes "red": not the same value
        pytest.param({"t": (1, 2)}, id="tuple"),  # orjson writes a list
        pytest.param({"n": math.nan}, id="nan"),  # orjson writes null
        pytest.param({"n": -math.inf}, id="inf"),
    ],
)
def test_values_orjson_would_change_are_refused(value: dict[str, Any]) -> None:
    with pytest.raises(InvalidValueError):
        encode_value(value)


def test_int_enum_is_stored_as_its_int_like_json_does() -> None:
    data, encoding = encode_value({"l": Level.HIGH})
    assert decode_value(data, encoding) == {"l": 3}
    assert data == _encode_with_json({"l": Level.HIGH})


def test_size_limit_applies_to_the_bytes_stored() -> None:
    room = MAX_VALUE_BYTES - len(b'{"s":""}')
    data, _ = encode_value({"s": "x" * room})
    assert len(data) == MAX_VALUE_BYTES
    with pytest.raises(ValueTooLargeError, match=f"{MAX_VALUE_BYTES + 1} bytes"):
        encode_value({"s": "x" * (room + 1)})
    with pytest.raises(ValueTooLargeError):  # too large on the json path as well
        encode_value({"s": "x" * room, "i": 2**64})


async def test_values_of_both_encodings_read_back_after_reopen(tmp_path: Path) -> None:
    values = {
        "small": {"i": 1, "f": 0.1},
        "big": {"i": 2**64, "j": -(10**100)},
        "deep": nested_lists(256),
    }
    async with AsyncDataStore(tmp_path / "s") as store:
        for key, value in values.items():
            await store.create(key, value)
        for key, value in values.items():
            assert await store.read(key) == value
    async with AsyncDataStore(tmp_path / "s") as store:
        for key, value in values.items():
            assert await store.read(key) == value
        await store.compact()  # copied records keep their encoding byte
        for key, value in values.items():
            assert await store.read(key) == value


def test_record_carries_its_value_encoding() -> None:
    for encoding in (VALUE_JSON, VALUE_JSON64):
        record = decode(encode_put(5, b"k", b"{}", 0.0, encoding))
        assert record.encoding == encoding


def _with_byte_7(data: bytes, byte: int) -> bytes:
    """``data`` with its value-encoding byte set to ``byte``, and the CRC made to match."""
    body = bytearray(data[4:])
    body[3] = byte
    return struct.pack("<I", zlib.crc32(body)) + bytes(body)


@pytest.mark.parametrize("byte", [2, 3, 255])
def test_unknown_value_encoding_is_a_bad_record(byte: int) -> None:
    with pytest.raises(BadRecord, match=f"unknown value encoding {byte}"):
        decode(_with_byte_7(encode_put(5, b"k", b"{}", 0.0), byte))


def test_tombstone_with_a_value_encoding_is_a_bad_record() -> None:
    data = _with_byte_7(encode_delete(5, b"k", 1), VALUE_JSON64)
    assert data[5] == KIND_DELETE
    assert len(data) == HEADER_SIZE + 1 + 4
    with pytest.raises(BadRecord, match="tombstone with a value encoding"):
        decode(data)


json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
json_like = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=4), children, max_size=4)
        | st.tuples(children)
    ),
    max_leaves=20,
)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=6), json_like, max_size=5))
def test_accepts_exactly_what_the_json_path_accepts(value: dict[str, Any]) -> None:
    """The model: ``json`` with its round-trip check. orjson changes speed, never the
    outcome."""
    try:
        _encode_with_json(value)
        expected_ok = True
    except InvalidValueError:
        expected_ok = False
    try:
        data, encoding = encode_value(value)
    except InvalidValueError:
        assert not expected_ok, value
        return
    assert expected_ok, value
    assert decode_value(data, encoding) == value
    assert json.loads(data) == value  # whichever encoder wrote it, it is plain JSON

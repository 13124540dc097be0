"""The record codec: what encode writes, decode gives back, and every damaged record is refused."""

from __future__ import annotations

import math
import struct
import zlib

import pytest
from _internals import (
    FILE_COMPACTED,
    FILE_HEADER_SIZE,
    FILE_LOG,
    HEADER_SIZE,
    KIND_DELETE,
    KIND_PUT,
    MAX_KEY_BYTES,
    VALUE_JSON,
    VALUE_JSON64,
    BadRecord,
    Record,
    check_put,
    decode,
    decode_file_header,
    encode_delete,
    encode_file_header,
    encode_put,
    tombstone_target,
)
from _internals import record as _record
from hypothesis import given, settings
from hypothesis import strategies as st

KEY = b"k1"
VALUE = b'{"a":1}'
EXPIRY = 1_700_000_123.25
PUT = encode_put(7, KEY, VALUE, EXPIRY)
DELETE = encode_delete(8, KEY, 0x01020304)

_CRC = struct.Struct("<I")
_BODY = struct.Struct("<BBBxIQd")


def raw_record(
    *,
    version: int = 1,
    kind: int = KIND_PUT,
    key_len: int | None = None,
    value_len: int | None = None,
    seq: int = 1,
    expiry: float = 0.0,
    key: bytes = b"key",
    value: bytes = b"{}",
    reserved: int = 0,
) -> bytes:
    """A record with any header fields, and a CRC that matches whatever was written."""
    key_len = len(key) if key_len is None else key_len
    value_len = len(value) if value_len is None else value_len
    body = struct.pack("<BBBBIQd", version, kind, key_len, reserved, value_len, seq, expiry)
    body += key + value
    return _CRC.pack(zlib.crc32(body)) + body


FILE_HEADER = encode_file_header(FILE_LOG, 1)


def test_header_sizes_match_the_format() -> None:
    assert HEADER_SIZE == 28
    assert FILE_HEADER_SIZE == 32
    head = encode_file_header(FILE_COMPACTED, 0x0102030405060708, 0x0A0B0C0D)
    assert len(head) == FILE_HEADER_SIZE
    assert head[:10] == b"AIOKVSEG\x02\x02"  # file version 2, compacted
    assert head[10:16] == bytes(6)
    assert head[16:24] == bytes([8, 7, 6, 5, 4, 3, 2, 1])
    assert head[24:28] == bytes([0x0D, 0x0C, 0x0B, 0x0A])
    assert struct.unpack("<I", head[28:])[0] == zlib.crc32(head[:28])


@pytest.mark.parametrize("kind", [FILE_LOG, FILE_COMPACTED])
def test_file_header_round_trips(kind: int) -> None:
    head = encode_file_header(kind, 12345)
    assert decode_file_header(head + b"records follow") == (kind, 12345, 0)
    assert decode_file_header(encode_file_header(kind, 1, 42)).source == 42


@pytest.mark.parametrize("position", range(FILE_HEADER_SIZE))
def test_file_header_with_any_byte_flipped_is_refused(position: int) -> None:
    head = bytearray(encode_file_header(FILE_LOG, 7))
    head[position] ^= 0x40
    with pytest.raises(BadRecord):
        decode_file_header(bytes(head))


@pytest.mark.parametrize("length", range(FILE_HEADER_SIZE))
def test_truncated_file_header_is_refused(length: int) -> None:
    with pytest.raises(BadRecord, match="truncated"):
        decode_file_header(encode_file_header(FILE_LOG, 7)[:length])


def test_unknown_file_kind_is_refused_even_with_a_good_crc() -> None:
    head = b"AIOKVSEG\x01\x03" + bytes(6) + struct.pack("<Q", 1) + bytes(4)
    with pytest.raises(BadRecord, match="kind"):
        decode_file_header(head + struct.pack("<I", zlib.crc32(head)))


def test_put_layout_is_little_endian_with_crc_over_the_rest() -> None:
    assert len(PUT) == HEADER_SIZE + len(KEY) + len(VALUE)
    (crc,) = _CRC.unpack_from(PUT, 0)
    assert crc == zlib.crc32(PUT[4:])
    version, kind, key_len, value_len, seq, expiry = _BODY.unpack_from(PUT, 4)
    assert (version, kind, key_len, value_len, seq, expiry) == (1, 1, 2, 7, 7, EXPIRY)
    assert PUT[7] == 0  # reserved
    assert PUT[28:30] == KEY
    assert PUT[30:] == VALUE


def test_put_round_trip() -> None:
    record = decode(PUT)
    assert record == Record(KIND_PUT, 7, EXPIRY, KEY, HEADER_SIZE + len(KEY), len(PUT))
    assert PUT[record.value_start : record.size] == VALUE


def test_delete_round_trip() -> None:
    record = decode(DELETE)
    assert record == Record(KIND_DELETE, 8, 0.0, KEY, HEADER_SIZE + len(KEY), len(DELETE))
    assert len(DELETE) == HEADER_SIZE + len(KEY) + 4
    assert DELETE[record.value_start :] == bytes([4, 3, 2, 1])  # the target, little-endian
    assert tombstone_target(DELETE, record) == 0x01020304


def test_put_without_expiry_and_empty_value_round_trip() -> None:
    data = encode_put(1, b"x", b"", 0.0)
    record = decode(data)
    assert record.expiry == 0.0
    assert record.value_start == record.size == HEADER_SIZE + 1


def test_decode_at_an_offset_inside_a_larger_buffer() -> None:
    second = encode_put(2**64 - 1, "ключ🙂".encode(), b'{"z":[1,2]}', 0.0)
    buf = FILE_HEADER + PUT + second + DELETE
    first = decode(buf, FILE_HEADER_SIZE)
    assert first.size == len(PUT)
    offset = FILE_HEADER_SIZE + first.size
    record = decode(memoryview(buf), offset)
    assert record.kind == KIND_PUT
    assert record.seq == 2**64 - 1
    assert record.key == "ключ🙂".encode()
    assert buf[record.value_start : offset + record.size] == b'{"z":[1,2]}'
    assert decode(bytearray(buf), offset + record.size).kind == KIND_DELETE


def test_largest_value_and_key_are_accepted() -> None:
    key = b"k" * MAX_KEY_BYTES
    value = b"v" * 16384
    record = decode(encode_put(3, key, value, 0.0))
    assert record.key == key
    assert record.size == HEADER_SIZE + MAX_KEY_BYTES + 16384


@pytest.mark.parametrize(
    ("record", "offset"),
    [
        *((PUT, offset) for offset in range(len(PUT))),
        *((DELETE, offset) for offset in range(len(DELETE))),
    ],
    ids=[
        *(f"put-{offset}" for offset in range(len(PUT))),
        *(f"delete-{offset}" for offset in range(len(DELETE))),
    ],
)
def test_every_single_byte_change_is_refused(record: bytes, offset: int) -> None:
    for mask in range(1, 256):
        damaged = bytearray(record)
        damaged[offset] ^= mask
        with pytest.raises(BadRecord):
            decode(bytes(damaged))


@pytest.mark.parametrize("record", [PUT, DELETE], ids=["put", "delete"])
def test_truncation_at_every_length_is_refused(record: bytes) -> None:
    for length in range(len(record)):
        with pytest.raises(BadRecord, match="truncated") as caught:
            decode(record[:length])
        expected = "truncated header" if length < HEADER_SIZE else "truncated record"
        assert caught.value.reason == expected, length


def test_truncation_is_measured_from_the_offset() -> None:
    buf = FILE_HEADER + PUT
    for end in range(FILE_HEADER_SIZE, len(buf)):
        with pytest.raises(BadRecord, match="truncated"):
            decode(buf[:end], FILE_HEADER_SIZE)
    assert decode(buf, FILE_HEADER_SIZE).size == len(PUT)


class _CrcSpy:
    """Stands in for the zlib module inside format.record, counting every CRC computed."""

    def __init__(self) -> None:
        self.calls = 0

    def crc32(self, data: bytes | memoryview, value: int = 0) -> int:
        self.calls += 1
        return zlib.crc32(data, value)


@pytest.fixture
def crc_spy(monkeypatch: pytest.MonkeyPatch) -> _CrcSpy:
    spy = _CrcSpy()
    monkeypatch.setattr(_record, "crc32", spy.crc32)
    return spy


def test_crc_spy_sees_a_good_record(crc_spy: _CrcSpy) -> None:
    decode(PUT)
    assert crc_spy.calls == 1


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"key_len": 0}, r"key length 0 out of range"),
        ({"key_len": 129}, r"key length 129 out of range"),
        ({"key_len": 255}, r"key length 255 out of range"),
        ({"value_len": 16385}, r"value length 16385 over the limit"),
        ({"value_len": 2**32 - 1}, r"value length 4294967295 over the limit"),
        ({"kind": KIND_DELETE, "value_len": 0}, r"tombstone with a value of 0 bytes"),
        ({"kind": KIND_DELETE, "value_len": 5}, r"tombstone with a value of 5 bytes"),
        ({"kind": KIND_DELETE, "key_len": 0, "value": bytes(4)}, r"key length 0 out of range"),
        (
            {"kind": KIND_DELETE, "key_len": 200, "value": bytes(4)},
            r"key length 200 out of range",
        ),
    ],
)
def test_implausible_lengths_are_refused_before_hashing(
    crc_spy: _CrcSpy, fields: dict[str, int], reason: str
) -> None:
    # The header claims a length the buffer could never hold: with a correct CRC over what is
    # there, and with enough bytes after it that only the length check can refuse it.
    data = raw_record(**fields) + bytes(20_000)
    with pytest.raises(BadRecord, match=reason):
        decode(data)
    assert crc_spy.calls == 0
    with pytest.raises(BadRecord, match=reason):
        decode(raw_record(**fields)[:HEADER_SIZE])  # a bare header: no "truncated record"
    assert crc_spy.calls == 0


def test_lengths_at_the_limits_are_plausible() -> None:
    decode(raw_record(key=b"k" * 128, value=b"v" * 16384))
    decode(raw_record(key=b"k", value=b""))


@pytest.mark.parametrize("version", [0, 2, 255])
def test_unknown_format_version_is_refused(version: int) -> None:
    with pytest.raises(BadRecord, match=f"unknown format version {version}"):
        decode(raw_record(version=version))


@pytest.mark.parametrize("kind", [0, 4, 255])
def test_unknown_kind_is_refused(kind: int) -> None:
    with pytest.raises(BadRecord, match=f"unknown record kind {kind}"):
        decode(raw_record(kind=kind))


def test_a_batch_kind_with_a_key_is_refused() -> None:
    with pytest.raises(BadRecord, match="malformed batch record"):
        decode(raw_record(kind=3))


@pytest.mark.parametrize("expiry", [math.nan, -math.nan, -1.0, -1e-300, -math.inf])
def test_nan_and_negative_expiry_are_refused(expiry: float) -> None:
    data = encode_put(1, b"key", b"{}", expiry)
    assert zlib.crc32(data[4:]) == _CRC.unpack_from(data)[0]  # only the value is wrong
    with pytest.raises(BadRecord, match="negative expiry"):
        decode(data)


def test_bad_record_carries_its_reason() -> None:
    with pytest.raises(BadRecord) as caught:
        decode(PUT[:-1] + bytes([PUT[-1] ^ 1]))
    assert caught.value.reason == "checksum mismatch"
    assert caught.value.offset == 0


keys = st.text(min_size=1, max_size=32).map(lambda text: text.encode("utf-8"))
expiries = st.one_of(
    st.just(0.0), st.floats(min_value=0.0, max_value=1e12, allow_nan=False, allow_infinity=False)
)


@settings(max_examples=300, deadline=None)
@given(
    key=keys,
    value=st.binary(min_size=0, max_size=16384),
    seq=st.integers(min_value=0, max_value=2**64 - 1),
    expiry=expiries,
)
def test_put_round_trips_for_any_input(key: bytes, value: bytes, seq: int, expiry: float) -> None:
    assert 1 <= len(key) <= MAX_KEY_BYTES
    data = encode_put(seq, key, value, expiry)
    record = decode(data)
    assert record.kind == KIND_PUT
    assert record.seq == seq
    assert record.expiry == expiry
    assert record.key == key
    assert record.size == len(data) == HEADER_SIZE + len(key) + len(value)
    assert data[record.value_start : record.size] == value


@settings(max_examples=100, deadline=None)
@given(
    key=st.binary(min_size=1, max_size=MAX_KEY_BYTES),
    seq=st.integers(min_value=0, max_value=2**64 - 1),
    target=st.integers(min_value=0, max_value=2**32 - 1),
    prefix=st.binary(max_size=64),
)
def test_delete_round_trips_at_any_offset(key: bytes, seq: int, target: int, prefix: bytes) -> None:
    data = prefix + encode_delete(seq, key, target)
    record = decode(data, len(prefix))
    assert (record.kind, record.seq, record.expiry, record.key) == (KIND_DELETE, seq, 0.0, key)
    assert record.size == HEADER_SIZE + len(key) + 4
    assert tombstone_target(data, record) == target
    assert record.value_start + 4 == len(data)


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(
    key=st.binary(min_size=1, max_size=8),
    value=st.binary(max_size=40),
    expiry=st.sampled_from([0.0, 1.5, 1e9]),
    encoding=st.sampled_from([VALUE_JSON, VALUE_JSON64]),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 7)), max_size=2),
    cut=st.integers(-3, 3),
    other_key=st.booleans(),
)
def test_check_put_agrees_with_decode(
    key: bytes,
    value: bytes,
    expiry: float,
    encoding: int,
    flips: list[tuple[int, int]],
    cut: int,
    other_key: bool,
) -> None:
    """The read path's quick check accepts exactly the buffers that decode as one whole put
    record of the key asked for, damaged or cut or not."""
    data = bytearray(encode_put(9, key, value, expiry, encoding))
    for position, bit in flips:
        data[position % len(data)] ^= 1 << bit
    if cut < 0:
        del data[cut:]
    else:
        data += bytes(cut)
    wanted = key + b"!" if other_key else key
    buf = bytes(data)
    try:
        record = decode(buf)
        expected = record.kind == KIND_PUT and record.key == wanted and record.size == len(buf)
    except BadRecord:
        expected = False
    checked = check_put(buf, wanted)
    assert (checked is not None) == expected
    if checked is not None:
        assert checked == (record.value_start, record.expiry, record.encoding)

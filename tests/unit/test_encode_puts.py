"""A batch's put records built at once: ``encode_puts`` gives what ``encode_put`` gives.

``format.record.encode_puts_py`` is the specification (``encode_put`` of each item, joined, and
each record's size). ``format._crecord.encode_puts`` builds the same bytes in one buffer for
the arguments it takes and answers None for any other, which ``format.record.encode_puts``
then hands to the Python function: so for every argument the store's function gives the
specification's records, or raises its error.
"""

from __future__ import annotations

import math
import os
import struct
from typing import Any

import pytest
from _internals import (
    BATCH_SIZE,
    HEADER_SIZE,
    KIND_PUT,
    MAX_KEY_BYTES,
    MAX_VALUE_BYTES,
    VALUE_JSON,
    VALUE_JSON64,
    crecord,
    decode,
    encode_batch,
    encode_batch_puts,
    encode_put,
)
from _internals import record as record_module
from hypothesis import given, settings
from hypothesis import strategies as st

c_encode_puts = crecord.encode_puts if crecord is not None else None
needs_c = pytest.mark.skipif(c_encode_puts is None, reason="the C record module is not built")

Batch = tuple[int, list[Any], list[Any], list[Any], list[Any]]


def spec(batch: Batch) -> tuple[bytes, list[int]]:
    first, keys, values, expiries, encodings = batch
    parts = [
        encode_put(first + i, k, v, e, c)
        for i, (k, v, e, c) in enumerate(zip(keys, values, expiries, encodings, strict=True))
    ]
    return b"".join(parts), [len(p) for p in parts]


def assert_builds(batch: Batch) -> tuple[bytes, list[int]]:
    want = spec(batch)
    assert record_module.encode_puts_py(*batch) == want
    assert record_module.encode_puts(*batch) == want
    if c_encode_puts is not None:
        assert c_encode_puts(*batch) == want
    return want


def test_the_store_uses_the_c_function_where_built() -> None:
    if os.environ.get("AIOKV_PURE_PYTHON"):
        assert record_module._encode_puts_c is None
    elif c_encode_puts is not None:
        assert record_module._encode_puts_c is c_encode_puts


def test_a_batch_is_its_records_back_to_back() -> None:
    keys = [b"a", b"user:42", b"k" * MAX_KEY_BYTES]
    values = [b"{}", b'{"name":"ada"}', b"[" + b"1," * 10 + b"1]"]
    data, sizes = assert_builds((7, keys, values, [0.0, 1.5, -0.0], [VALUE_JSON64, VALUE_JSON, 1]))
    assert sizes == [HEADER_SIZE + len(k) + len(v) for k, v in zip(keys, values, strict=True)]
    at = 0
    for i, size in enumerate(sizes):
        record = decode(data[at : at + size])
        assert (record.kind, record.seq, record.key) == (KIND_PUT, 7 + i, keys[i])
        at += size
    assert at == len(data)


@pytest.mark.parametrize("headroom", [0, 1, BATCH_SIZE, 4096])
def test_a_headroom_puts_zero_bytes_before_the_records_of_a_bytearray(headroom: int) -> None:
    if c_encode_puts is None:
        pytest.skip("the C record module is not built")
    batch: Batch = (3, [b"a", b"bb"], [b"{}", b'{"x":1}'], [0.0, 2.5], [VALUE_JSON64] * 2)
    records, sizes = spec(batch)
    built = c_encode_puts(*batch, headroom)
    assert built is not None
    data, got_sizes = built
    assert type(data) is bytearray
    assert (data, got_sizes) == (bytes(headroom) + records, sizes)


@pytest.mark.parametrize("headroom", [-1, 4097, 2**70, 1.0, "40"])
def test_a_headroom_out_of_range_is_declined(headroom: Any) -> None:
    if c_encode_puts is None:
        pytest.skip("the C record module is not built")
    assert c_encode_puts(1, [b"a"], [b"{}"], [0.0], [1], headroom) is None


@pytest.mark.parametrize("count", [0, 1, 50])
def test_a_batch_record_and_its_puts_come_in_one_buffer(count: int) -> None:
    keys = [f"key:{i}".encode() for i in range(count)]
    values = [b'{"i":%d}' % i for i in range(count)]
    batch: Batch = (9, keys, values, [0.0] * count, [VALUE_JSON64] * count)
    records, sizes = spec(batch)
    data, got_sizes = encode_batch_puts(*batch)
    assert type(data) is bytearray
    assert (data, got_sizes) == (encode_batch(9, records, count) + records, sizes)


def test_an_empty_batch_is_empty() -> None:
    assert assert_builds((0, [], [], [], [])) == (b"", [])


@pytest.mark.parametrize(
    "expiry", [0.0, -0.0, 5e-324, 1_700_000_000.25, math.inf, -math.inf, math.nan, -1.0]
)
def test_every_float_is_stored_as_struct_stores_it(expiry: float) -> None:
    data, _ = assert_builds((1, [b"k"], [b"{}"], [expiry], [VALUE_JSON64]))
    assert data[20:28] == struct.pack("<d", expiry)


@pytest.mark.parametrize("first", [0, 1, 2**63, 2**64 - 3])
def test_sequence_numbers_up_to_the_last(first: int) -> None:
    data, sizes = assert_builds((first, [b"a", b"b", b"c"], [b"1"] * 3, [0.0] * 3, [1] * 3))
    assert struct.unpack_from("<Q", data, 2 * sizes[0] + 12)[0] == first + 2


def test_the_largest_value_and_key_the_header_can_say() -> None:
    assert_builds((1, [b"k" * 255], [b"v" * MAX_VALUE_BYTES], [0.0], [255]))


@pytest.mark.parametrize(
    "batch",
    [
        (2**64 - 2, [b"a", b"b", b"c"], [b"1"] * 3, [0.0] * 3, [1] * 3),  # past the last seq
        (-1, [b"a"], [b"1"], [0.0], [1]),
        (2**64, [b"a"], [b"1"], [0.0], [1]),
        (1, [b"k" * 256], [b"1"], [0.0], [1]),  # the key length's byte overflows
        (1, [b"a"], [b"1"], [0.0], [256]),
        (1, [b"a"], [b"1"], [0.0], [-1]),
        (1, [b"a"], [b"1"], [0.0], [2**70]),
    ],
)
def test_a_field_out_of_range_is_struct_error(batch: Batch) -> None:
    if c_encode_puts is not None:
        assert c_encode_puts(*batch) is None
    for build in (record_module.encode_puts, record_module.encode_puts_py):
        with pytest.raises(struct.error):
            build(*batch)


@pytest.mark.parametrize(
    "batch",
    [
        (1, [b"a", b"b"], [b"1"], [0.0], [1]),
        (1, [b"a"], [b"1", b"2"], [0.0], [1]),
        (1, [b"a"], [b"1"], [], [1]),
        (1, [b"a"], [b"1"], [0.0], [1, 1]),
    ],
)
def test_lists_of_different_lengths_are_refused(batch: Batch) -> None:
    if c_encode_puts is not None:
        assert c_encode_puts(*batch) is None
    with pytest.raises(ValueError, match="length"):
        record_module.encode_puts(*batch)


class Blob(bytes):
    pass


@pytest.mark.parametrize(
    "batch",
    [
        (1, (b"a",), [b"1"], [0.0], [1]),  # a tuple, not a list
        (1, [Blob(b"a")], [b"1"], [0.0], [1]),  # subclasses are left to encode_put
        (1, [b"a"], [bytearray(b"1")], [0.0], [1]),
        (1, [b"a"], [b"1"], [0], [1]),  # an int deadline
        (1, [b"a"], [b"1"], [0.0], [True]),  # a bool encoding
        (True, [b"a"], [b"1"], [0.0], [1]),
    ],
)
def test_what_c_declines_python_encodes(batch: Batch) -> None:
    if c_encode_puts is not None:
        assert c_encode_puts(*batch) is None
    assert record_module.encode_puts(*batch) == record_module.encode_puts_py(*batch)


@pytest.mark.parametrize(
    "batch", [(1, [b"a"], [b"1"], [0.0], [None]), (1, [None], [b"1"], [0.0], [1])]
)
def test_what_cannot_be_packed_raises_as_encode_put_does(batch: Batch) -> None:
    with pytest.raises((struct.error, TypeError)):
        encode_put(batch[0], batch[1][0], batch[2][0], batch[3][0], batch[4][0])
    with pytest.raises((struct.error, TypeError)):
        record_module.encode_puts(*batch)


@needs_c
def test_the_c_function_takes_five_positional_arguments() -> None:
    call: Any = c_encode_puts
    with pytest.raises(TypeError):
        call(1, [], [], [])
    with pytest.raises(TypeError):
        call(first_seq=1, keys=[], values=[], expiries=[], encodings=[])


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 2**64 - 1),
    st.lists(
        st.tuples(
            st.binary(min_size=1, max_size=MAX_KEY_BYTES),
            st.binary(max_size=300),
            st.one_of(st.just(0.0), st.floats()),
            st.sampled_from([VALUE_JSON, VALUE_JSON64]),
        ),
        max_size=20,
    ),
)
def test_any_batch_gives_the_specifications_records(first: int, items: list[Any]) -> None:
    if items and first > 2**64 - len(items):
        first = 2**64 - len(items)
    keys = [item[0] for item in items]
    values = [item[1] for item in items]
    expiries = [item[2] for item in items]
    encodings = [item[3] for item in items]
    assert_builds((first, keys, values, expiries, encodings))

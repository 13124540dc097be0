"""The read path's record check: ``value_start`` and ``put_value`` in C and in Python
against decode.

``format.record.value_start_py`` is the specification (check_put's tuple, narrowed to a put
with no deadline in the VALUE_JSON64 encoding); the C ``format._crecord.value_start`` must
give the same answer for every buffer, sound or damaged. Every behavioural test runs on both,
and each compares with the answer worked out independently with :func:`decode`, the full
record decoder that scans and recovery use, or with the answer the test built the buffer to
give. ``put_value`` (the check made on a record inside a larger buffer, the value copied out)
is held to the same answers wherever ``value_start`` is, by :func:`assert_agrees`.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _internals import (
    HEADER_SIZE,
    KIND_PUT,
    MAX_KEY_BYTES,
    MAX_VALUE_BYTES,
    VALUE_JSON,
    VALUE_JSON64,
    BadRecord,
    check_put,
    crecord,
    decode,
    encode_delete,
    encode_put,
    put_value_py,
    value_start_py,
)
from _internals import record as record_module
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

c_value_start = crecord.value_start if crecord is not None else None

NOT_BUILT = "the C record check is not built (installed where no C compiler was found)"
IMPLS = [
    pytest.param(value_start_py, id="py"),
    pytest.param(
        c_value_start, id="c", marks=pytest.mark.skipif(c_value_start is None, reason=NOT_BUILT)
    ),
]

ValueStart = Callable[[object, object], int]
PutValue = Callable[[object, int, int, object], "bytes | None"]

c_put_value = crecord.put_value if crecord is not None else None
PUT_VALUE_IMPLS = [
    pytest.param(put_value_py, id="py"),
    pytest.param(
        c_put_value, id="c", marks=pytest.mark.skipif(c_put_value is None, reason=NOT_BUILT)
    ),
]

KEY = b"user:42"
VALUE = b'{"name":"ada","n":1}'
GOOD = encode_put(7, KEY, VALUE, 0.0, VALUE_JSON64)
GOOD_START = HEADER_SIZE + len(KEY)

# Hypothesis: enough examples to reach every check through mutations, few enough for a file
# that runs in seconds.
FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BUFFER_FORMS: list[Callable[[bytes], object]] = [bytes, bytearray, memoryview]


def expected(buf: bytes, key: bytes) -> int | None:
    """The answer worked out with :func:`decode`, not with check_put: where the value starts
    if ``buf`` is exactly one sound put record of ``key`` with no deadline in the VALUE_JSON64
    encoding, else -1.

    None where decode cannot say: a key-length field (byte 6) of 0 or over MAX_KEY_BYTES,
    which decode refuses and check_put takes (no stored key has such a length).
    The tests of those lengths give the answer the buffer was built to give.
    """
    if len(buf) >= HEADER_SIZE and not 0 < buf[6] <= MAX_KEY_BYTES:
        return None
    try:
        record = decode(buf)
    except BadRecord:
        return -1
    if (
        record.kind == KIND_PUT
        and record.size == len(buf)
        and record.key == bytes(key)
        and record.expiry == 0.0
        and record.encoding == VALUE_JSON64
    ):
        return record.value_start
    return -1


def with_crc(body_after_crc: bytes | bytearray) -> bytes:
    return struct.pack("<I", zlib.crc32(body_after_crc)) + bytes(body_after_crc)


def rewrite(record: bytes, at: int, data: bytes) -> bytes:
    """``record`` with ``data`` written over it at ``at`` and its CRC made right again."""
    changed = bytearray(record)
    changed[at : at + len(data)] = data
    return with_crc(changed[4:])


def assert_agrees(value_start: ValueStart, buf: bytes, key: bytes, built: int | None = None) -> int:
    """``value_start`` answers for ``buf`` and ``key``, in every buffer form, as decode says
    it should, and as ``built`` (the answer the buffer was built to give) where one is given.
    """
    want = expected(buf, key)
    if built is not None:
        assert want in (None, built), f"decode says {want}, the buffer was built for {built}"
        want = built
    assert want is not None, "decode cannot judge this key length: say what the buffer gives"
    for buf_form in BUFFER_FORMS:
        for key_form in BUFFER_FORMS:
            b, k = buf_form(buf), key_form(key)
            assert value_start(b, k) == want, (buf_form.__name__, key_form.__name__)
            assert value_start_py(b, k) == want
    assert_put_value_agrees(buf, key, want)
    return want


def assert_put_value_agrees(buf: bytes, key: bytes, start: int) -> None:
    """``put_value`` finds the record ``buf`` inside a larger buffer, and gives its value's
    bytes exactly where ``value_start`` gives ``start > 0``, and None where it gives -1."""
    want = buf[start:] if start > 0 else None
    framed = b"\xff" * 5 + buf + b"\x00" * 3
    for put_value in (put_value_py, c_put_value):
        if put_value is None:
            continue
        for buf_form in BUFFER_FORMS:
            got = put_value(buf_form(framed), 5, len(buf), key)
            assert got == want, (put_value, buf_form.__name__)
            assert got is None or type(got) is bytes


OTHER = encode_put(8, b"k", b"{}", 1.5, VALUE_JSON64)  # a put with a deadline, before GOOD


@contextlib.contextmanager
def mapped_segment(tmp_path: Path) -> Iterator[mmap.mmap]:
    """A file of OTHER then GOOD, memory-mapped as a store maps a segment; closed on exit,
    which raises BufferError if a buffer of it is still held."""
    path = tmp_path / "seg"
    path.write_bytes(OTHER + GOOD)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        yield mapped


# ---------------------------------------------------------------- the C module is there


def test_the_c_module_is_built_where_it_can_be() -> None:
    if os.environ.get("AIOKV_PURE_PYTHON"):
        pytest.skip("AIOKV_PURE_PYTHON is set")
    if shutil.which("cc") is None:
        pytest.skip("no C compiler here, so the package installs without its C part")
    assert c_value_start is not None, (
        "the C record check did not build: reinstall (pip install -e .)"
    )
    assert record_module.value_start is c_value_start


def test_aiokv_pure_python_picks_the_pure_function() -> None:
    code = (
        "import aiokv._bitcask.format.record as r; "
        "print(r.value_start is r.value_start_py, r.value_start(r.encode_put(1, b'k', b'{}', "
        "0.0, 1), b'k'))"
    )
    env = {**os.environ, "AIOKV_PURE_PYTHON": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", str(HEADER_SIZE + 1)]


# ---------------------------------------------------------------- sound records


@pytest.mark.parametrize("value_start", IMPLS)
def test_a_sound_put_gives_where_its_value_starts(value_start: ValueStart) -> None:
    assert assert_agrees(value_start, GOOD, KEY) == GOOD_START
    assert GOOD[value_start(GOOD, KEY) :] == VALUE


@pytest.mark.parametrize("value_start", IMPLS)
def test_negative_zero_is_no_deadline(value_start: ValueStart) -> None:
    # The store's read path tests ``expiry == 0.0``, which -0.0 passes.
    record = encode_put(7, KEY, VALUE, -0.0, VALUE_JSON64)
    assert assert_agrees(value_start, record, KEY) == GOOD_START


@pytest.mark.parametrize("value_start", IMPLS)
@pytest.mark.parametrize(
    "expiry", [5e-324, -5e-324, 1.0, 1_700_000_000.5, -1.0, math.inf, -math.inf, math.nan]
)
def test_any_deadline_but_zero_is_refused(value_start: ValueStart, expiry: float) -> None:
    assert assert_agrees(value_start, encode_put(7, KEY, VALUE, expiry, VALUE_JSON64), KEY) == -1


@pytest.mark.parametrize("value_start", IMPLS)
@pytest.mark.parametrize(
    "bits", [0x7FF8_0000_0000_0001, 0xFFF8_0000_0000_0000, 0x7FF0_0000_0000_0001, 1 << 63 | 1]
)
def test_nans_of_any_sign_and_payload_are_refused(value_start: ValueStart, bits: int) -> None:
    record = rewrite(GOOD, 20, struct.pack("<Q", bits))
    assert assert_agrees(value_start, record, KEY) == -1


@pytest.mark.parametrize("value_start", IMPLS)
def test_the_json_encoding_is_left_to_check_put(value_start: ValueStart) -> None:
    record = encode_put(7, KEY, VALUE, 0.0, VALUE_JSON)
    assert check_put(record, KEY) == (GOOD_START, 0.0, VALUE_JSON)
    assert assert_agrees(value_start, record, KEY) == -1


@pytest.mark.parametrize("value_start", IMPLS)
@pytest.mark.parametrize("encoding", [2, 0x80, 0xFF])
def test_an_unknown_encoding_is_refused(value_start: ValueStart, encoding: int) -> None:
    assert assert_agrees(value_start, encode_put(7, KEY, VALUE, 0.0, encoding), KEY) == -1


@pytest.mark.parametrize("value_start", IMPLS)
def test_a_tombstone_is_refused(value_start: ValueStart) -> None:
    assert assert_agrees(value_start, encode_delete(7, KEY, 3), KEY) == -1


@pytest.mark.parametrize("value_start", IMPLS)
@pytest.mark.parametrize(
    ("at", "data"),
    [
        (4, b"\x00"),  # version
        (4, b"\x02"),
        (5, b"\x00"),  # kind
        (5, b"\x03"),
        (6, bytes([len(KEY) - 1])),  # key length
        (6, bytes([len(KEY) + 1])),
        (8, struct.pack("<I", len(VALUE) - 1)),  # value length
        (8, struct.pack("<I", len(VALUE) + 1)),
        (8, struct.pack("<I", 2**32 - 1)),
        (HEADER_SIZE, b"U"),  # the key's first byte
        (HEADER_SIZE + len(KEY) - 1, b"3"),  # and its last
    ],
)
def test_each_header_check_refuses_alone(value_start: ValueStart, at: int, data: bytes) -> None:
    # The CRC is made right again, so only the one check can refuse the record.
    assert assert_agrees(value_start, rewrite(GOOD, at, data), KEY) == -1


@pytest.mark.parametrize("value_start", IMPLS)
@pytest.mark.parametrize("seq", [0, 1, 2**63, 2**64 - 1])
def test_the_sequence_number_is_not_checked(value_start: ValueStart, seq: int) -> None:
    record = encode_put(seq, KEY, VALUE, 0.0, VALUE_JSON64)
    assert assert_agrees(value_start, record, KEY) == GOOD_START


@pytest.mark.parametrize("value_start", IMPLS)
def test_a_wrong_crc_is_refused(value_start: ValueStart) -> None:
    for at in (0, 3):  # the CRC itself
        damaged = bytearray(GOOD)
        damaged[at] ^= 0x01
        assert assert_agrees(value_start, bytes(damaged), KEY) == -1
    for at in range(4, len(GOOD)):  # every byte it covers
        damaged = bytearray(GOOD)
        damaged[at] ^= 0x80
        assert assert_agrees(value_start, bytes(damaged), KEY, built=-1) == -1


@pytest.mark.parametrize("value_start", IMPLS)
@pytest.mark.parametrize(
    "key", [b"", b"user:4", b"user:421", b"User:42", b"user:43", b"\x00" * len(KEY)]
)
def test_another_key_is_refused(value_start: ValueStart, key: bytes) -> None:
    assert assert_agrees(value_start, GOOD, key) == -1


# ---------------------------------------------------------------- boundaries


@pytest.mark.parametrize("value_start", IMPLS)
def test_a_value_of_the_largest_size_is_accepted(value_start: ValueStart) -> None:
    record = encode_put(7, KEY, b"7" * MAX_VALUE_BYTES, 0.0, VALUE_JSON64)
    assert assert_agrees(value_start, record, KEY) == GOOD_START


@pytest.mark.parametrize("value_start", IMPLS)
def test_a_value_one_byte_over_is_refused(value_start: ValueStart) -> None:
    # encode_put does not check the size, so this record's CRC is right.
    record = encode_put(7, KEY, b"7" * (MAX_VALUE_BYTES + 1), 0.0, VALUE_JSON64)
    assert zlib.crc32(record[4:]) == struct.unpack_from("<I", record)[0]
    assert assert_agrees(value_start, record, KEY) == -1


@pytest.mark.parametrize("value_start", IMPLS)
@pytest.mark.parametrize("size", [0, 1, 4, HEADER_SIZE - 1])
def test_a_buffer_shorter_than_a_header_is_refused(value_start: ValueStart, size: int) -> None:
    assert assert_agrees(value_start, GOOD[:size], KEY) == -1
    assert assert_agrees(value_start, GOOD[:size], b"") == -1
    assert assert_agrees(value_start, bytes(size), b"") == -1


@pytest.mark.parametrize("value_start", IMPLS)
def test_a_header_alone_is_a_record_of_the_empty_key(value_start: ValueStart) -> None:
    # check_put does not refuse a key length of 0 (decode does; no stored key is empty).
    header_only = encode_put(7, b"", b"", 0.0, VALUE_JSON64)
    assert len(header_only) == HEADER_SIZE
    assert expected(header_only, b"") is None  # beyond decode: the answers are as built
    assert_agrees(value_start, header_only, b"", built=HEADER_SIZE)
    assert_agrees(value_start, header_only, b"k", built=-1)
    assert_agrees(value_start, bytes(HEADER_SIZE), b"", built=-1)
    with_a_value = encode_put(7, b"", VALUE, 0.0, VALUE_JSON64)
    assert_agrees(value_start, with_a_value, b"", built=HEADER_SIZE)


@pytest.mark.parametrize("value_start", IMPLS)
@pytest.mark.parametrize("key_len", [MAX_KEY_BYTES, MAX_KEY_BYTES + 1, 255])
def test_key_lengths_up_to_the_header_field_are_taken(
    value_start: ValueStart, key_len: int
) -> None:
    # check_put does not bound the key length by MAX_KEY_BYTES (decode does), only the
    # header's byte does.
    key = bytes(range(256))[-key_len:]
    record = encode_put(7, key, VALUE, 0.0, VALUE_JSON64)
    assert_agrees(value_start, record, key, built=HEADER_SIZE + key_len)
    assert_agrees(value_start, record, key[:-1], built=-1)


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize("value_start", IMPLS)
@pytest.mark.parametrize(
    ("buf", "key"),
    [
        (None, KEY),
        ("text", KEY),
        (12, KEY),
        ([1, 2], KEY),
        (GOOD, None),
        (GOOD, "user:42"),
        (GOOD, 42),
        (b"", "k"),  # short buffer: the key is still checked
        (None, None),
    ],
)
def test_a_non_buffer_is_a_type_error(value_start: ValueStart, buf: object, key: object) -> None:
    with pytest.raises(TypeError):
        value_start(buf, key)


@pytest.mark.parametrize("value_start", IMPLS)
def test_arguments_are_two_and_positional(value_start: ValueStart) -> None:
    call: Callable[..., int] = value_start
    with pytest.raises(TypeError):
        call(GOOD)
    with pytest.raises(TypeError):
        call(GOOD, KEY, KEY)
    with pytest.raises(TypeError):
        call(buf=GOOD, key=KEY)


@pytest.mark.parametrize("value_start", IMPLS)
def test_a_non_contiguous_buffer_is_refused_as_by_check_put(value_start: ValueStart) -> None:
    strided = memoryview(GOOD * 2)[::2]
    with pytest.raises(BufferError):
        check_put(strided, KEY)  # type: ignore[arg-type]
    with pytest.raises(BufferError):
        value_start(strided, KEY)


@pytest.mark.parametrize("value_start", IMPLS)
def test_an_mmap_and_its_slices_are_read_and_let_go(
    value_start: ValueStart, tmp_path: Path
) -> None:
    with mapped_segment(tmp_path) as mapped:
        assert value_start(mapped[len(OTHER) :], KEY) == GOOD_START
        assert value_start(mapped, KEY) == -1
        with memoryview(mapped) as view:
            assert value_start(view[len(OTHER) :], KEY) == GOOD_START
            assert value_start(view[: len(OTHER)], b"k") == -1
    # Leaving the with block closed the map: it would raise BufferError had a buffer of it
    # been kept.


@pytest.mark.parametrize("value_start", IMPLS)
def test_buffers_are_released_on_every_path(value_start: ValueStart) -> None:
    buf = bytearray(GOOD)
    key = bytearray(KEY)
    cases: list[tuple[object, object]] = [
        (buf, key),  # accepted
        (buf, bytearray(b"x")),  # refused: another key
        (bytearray(GOOD[:10]), key),  # refused: short
        (bytearray(encode_put(7, KEY, VALUE, 0.0, VALUE_JSON)), key),  # refused: encoding
        (buf, "text"),  # TypeError after the buffer was taken
    ]
    for b, k in cases:
        for _ in range(3):
            with contextlib.suppress(TypeError):
                value_start(b, k)
        # A bytearray with a buffer still exported cannot change size.
        for arg in (b, k):
            if isinstance(arg, bytearray):
                arg.append(0)
                del arg[-1]
    assert value_start(buf, key) == GOOD_START


# ---------------------------------------------------------------- put_value's span


@pytest.mark.parametrize("put_value", PUT_VALUE_IMPLS)
def test_put_value_reads_the_span_it_is_given(put_value: PutValue) -> None:
    other = encode_put(8, b"k", b"{}", 0.0, VALUE_JSON64)
    buf = other + GOOD + other
    assert put_value(buf, len(other), len(GOOD), KEY) == VALUE
    assert put_value(buf, 0, len(other), b"k") == b"{}"
    assert put_value(buf, 2 * len(other) + len(GOOD) - len(other), len(other), b"k") == b"{}"
    # A span one byte off either way is not one sound record.
    assert put_value(buf, len(other), len(GOOD) + 1, KEY) is None
    assert put_value(buf, len(other), len(GOOD) - 1, KEY) is None
    assert put_value(buf, len(other) - 1, len(GOOD), KEY) is None


@pytest.mark.parametrize("put_value", PUT_VALUE_IMPLS)
@pytest.mark.parametrize(
    ("offset", "size"),
    [
        (0, len(GOOD) + 1),  # runs one byte past the end
        (1, len(GOOD)),
        (len(GOOD), 1),
        (len(GOOD) + 1, 0),
        (-1, len(GOOD)),
        (0, -1),
        (-len(GOOD), len(GOOD)),  # not a slice from the end, as Python's would be
        (2**63, 1),
        (0, 2**63),
        (2**64, 2**64),
        (-(2**64), 0),
        (2**63 - 1, 2**63 - 1),  # their sum overflows a 64-bit size
    ],
)
def test_put_value_outside_the_buffer_is_none(put_value: PutValue, offset: int, size: int) -> None:
    assert put_value(GOOD, offset, size, KEY) is None


@pytest.mark.parametrize("put_value", PUT_VALUE_IMPLS)
@pytest.mark.parametrize(
    "args",
    [
        (GOOD, 0.0, len(GOOD), KEY),
        (GOOD, 0, "28", KEY),
        (GOOD, None, len(GOOD), KEY),
        (None, 0, len(GOOD), KEY),
        (GOOD, 0, len(GOOD), "user:42"),
    ],
)
def test_put_value_refuses_what_is_not_a_span_of_a_buffer(
    put_value: PutValue, args: tuple[object, object, object, object]
) -> None:
    call: Callable[..., object] = put_value
    with pytest.raises(TypeError):
        call(*args)


@pytest.mark.parametrize("put_value", PUT_VALUE_IMPLS)
def test_put_value_takes_four_positional_arguments(put_value: PutValue) -> None:
    call: Callable[..., object] = put_value
    with pytest.raises(TypeError):
        call(GOOD, 0, len(GOOD))
    with pytest.raises(TypeError):
        call(GOOD, 0, len(GOOD), KEY, KEY)
    with pytest.raises(TypeError):
        call(buf=GOOD, offset=0, size=len(GOOD), key=KEY)


@pytest.mark.parametrize("put_value", PUT_VALUE_IMPLS)
def test_put_value_copies_out_of_an_mmap_and_lets_it_go(
    put_value: PutValue, tmp_path: Path
) -> None:
    with mapped_segment(tmp_path) as mapped:
        got = put_value(mapped, len(OTHER), len(GOOD), KEY)
        assert got == VALUE
        assert type(got) is bytes
        assert put_value(mapped, 0, len(OTHER), b"k") is None  # a deadline: not its case
        assert put_value(mapped, len(OTHER), len(GOOD) + 1, KEY) is None
    # The map closed on leaving the block, with no buffer of it kept; the value outlives it.
    assert got == VALUE


@pytest.mark.parametrize("put_value", PUT_VALUE_IMPLS)
def test_put_value_releases_its_buffers_on_every_path(put_value: PutValue) -> None:
    buf = bytearray(GOOD)
    key = bytearray(KEY)
    calls: list[tuple[object, int, int, object]] = [
        (buf, 0, len(GOOD), key),  # accepted
        (buf, 0, len(GOOD), bytearray(b"x")),  # refused: another key
        (buf, 1, len(GOOD), key),  # outside the buffer
        (buf, 0, len(GOOD), "text"),  # TypeError after the buffer was taken
    ]
    for b, offset, size, k in calls:
        with contextlib.suppress(TypeError):
            put_value(b, offset, size, k)
        for arg in (b, k):
            if isinstance(arg, bytearray):
                arg.append(0)  # refused while a buffer of it is still exported
                del arg[-1]
    assert put_value(buf, 0, len(GOOD), key) == VALUE


# ---------------------------------------------------------------- fuzzing against decode


keys = st.one_of(
    st.text(
        st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=MAX_KEY_BYTES // 4
    ).map(lambda s: s.encode()),
    st.binary(min_size=1, max_size=MAX_KEY_BYTES),
)
values = st.one_of(
    st.binary(max_size=64),
    st.integers(MAX_VALUE_BYTES - 1, MAX_VALUE_BYTES + 1).map(lambda n: b"v" * n),
)
expiries = st.one_of(
    st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -1.0]),
    st.floats(min_value=0.0, exclude_min=True),
    st.floats(),
)
encodings = st.one_of(st.sampled_from([VALUE_JSON, VALUE_JSON64]), st.integers(0, 255))


@st.composite
def records(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A put record and its key. Most have no deadline and the VALUE_JSON64 encoding, which
    value_start accepts, so that each damage is seen to turn an acceptance into a refusal."""
    key = draw(keys)
    if draw(st.integers(0, 3)):
        expiry, encoding = draw(st.sampled_from([0.0, -0.0])), VALUE_JSON64
    else:
        expiry, encoding = draw(expiries), draw(encodings)
    return encode_put(draw(st.integers(0, 2**64 - 1)), key, draw(values), expiry, encoding), key


# One damage to the record or to the key it is read for: (what, where, a byte, bytes, whether
# to make the record's CRC right again afterwards). A damaged record whose CRC is right is
# one that only the checks before the CRC can refuse.
Mutation = tuple[str, int, int, bytes, bool]
some_byte = st.one_of(st.sampled_from([0, 1, 2, 0x7F, 0x80, 0xFF]), st.integers(0, 255))
mutations = st.one_of(
    # A byte of the header after the CRC set to another value: half the damage, so that each
    # field is met often, always with the CRC made right.
    st.tuples(
        st.just("header"),
        st.one_of(
            # The first byte of each field, and the expiry's sign and exponent.
            st.sampled_from([4, 5, 6, 7, 8, 9, 11, 12, 20, 26, 27]),
            st.integers(4, HEADER_SIZE - 1),
        ),
        some_byte,
        st.just(b""),
        st.just(True),
    ),
    st.tuples(
        st.sampled_from(
            [
                "flip",  # a byte anywhere xored with a non-zero mask
                "truncate",
                "extend",
                "key",  # another key entirely
                "key_flip",
                "key_cut",
                "key_extend",
            ]
        ),
        st.integers(0, 2**16),
        some_byte,
        st.binary(max_size=MAX_KEY_BYTES),
        st.booleans(),
    ),
)


def mutate(record: bytes, key: bytes, mutation: Mutation) -> tuple[bytes, bytes]:
    op, at, byte, data, fix_crc = mutation
    buf = bytearray(record)
    if op == "flip" and buf:
        buf[at % len(buf)] ^= byte or 0x80
    elif op == "header" and len(buf) >= HEADER_SIZE:
        buf[at] = byte
    elif op == "truncate":
        del buf[at % (len(buf) + 1) :]
    elif op == "extend":
        buf += data or b"\x00"
    elif op == "key":
        key = data
    elif op == "key_flip" and key:
        changed = bytearray(key)
        changed[at % len(key)] ^= byte or 0x80
        key = bytes(changed)
    elif op == "key_cut":
        key = key[:-1]
    elif op == "key_extend":
        key += data or b"\x00"
    if fix_crc and len(buf) >= 4:
        buf = bytearray(with_crc(buf[4:]))
    return bytes(buf), key


@pytest.mark.slow
@FAST
@given(record=records(), damage=st.lists(mutations, max_size=2))
@pytest.mark.parametrize("value_start", IMPLS)
def test_any_record_any_damage_agrees_with_decode(
    value_start: ValueStart, record: tuple[bytes, bytes], damage: list[Mutation]
) -> None:
    buf, key = record
    for mutation in damage:
        buf, key = mutate(buf, key, mutation)
    if expected(buf, key) is not None:
        event("judged by decode")
        assert_agrees(value_start, buf, key)
        return
    # A key-length field damaged to 0 or past MAX_KEY_BYTES, which decode cannot judge (the
    # tests of those lengths above give the answers): C and Python must still agree.
    event("key length beyond decode")
    want = value_start_py(buf, key)
    for buf_form in BUFFER_FORMS:
        for key_form in BUFFER_FORMS:
            assert value_start(buf_form(buf), key_form(key)) == want


needs_c = pytest.mark.skipif(c_value_start is None, reason=NOT_BUILT)


@needs_c
def test_the_c_check_uses_the_packages_crc_or_zlibs() -> None:
    from _internals import crc32

    _crecord = crecord
    assert _crecord is not None

    record = encode_put(1, b"k", b"{}", 0.0, VALUE_JSON64)
    calls: list[int] = []

    def counting(data: memoryview) -> int:
        calls.append(len(data))
        return zlib.crc32(data)

    def kept(data: memoryview) -> int:
        views.append(data)
        return zlib.crc32(data)

    def failing(data: memoryview) -> int:
        raise OSError("no CRC today")

    views: list[memoryview] = []
    try:
        _crecord.use_crc32(counting)
        assert _crecord.value_start(record, b"k") == HEADER_SIZE + 1
        assert calls == [len(record) - 4]
        _crecord.use_crc32(kept)  # a function that keeps the view finds it released
        assert _crecord.value_start(bytearray(record), b"k") == HEADER_SIZE + 1
        with pytest.raises(ValueError, match="released"):
            bytes(views[0])
        _crecord.use_crc32(failing)
        with pytest.raises(OSError, match="no CRC today"):
            _crecord.value_start(record, b"k")
        _crecord.use_crc32(None)  # zlib's, from C
        assert _crecord.value_start(record, b"k") == HEADER_SIZE + 1
        with pytest.raises(TypeError):
            _crecord.use_crc32(42)  # type: ignore[arg-type]
    finally:
        _crecord.use_crc32(None if crc32 is zlib.crc32 else crc32)

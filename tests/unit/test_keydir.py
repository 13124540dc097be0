"""The key directory: both implementations against models of the same rules.

``PyKeyDir`` (aiokv/_keydir.py) defines the behaviour; the C ``KeyDir`` (aiokv/_ckeydir.c)
must match it. Every behavioural test runs on both. The two hash differently (PyKeyDir uses
Python's own hash), so the models key their tables by ``kd.hash(key)`` wherever collisions
can occur, and tests that need collisions force them with a small ``hash_bits``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import tracemalloc
from array import array
from typing import Any

import pytest
from _internals import CKeyDir, PyKeyDir, keydir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.purepy

NOT_BUILT = "the C key directory is not built (installed where no C compiler was found)"
IMPLS = [
    pytest.param(PyKeyDir, id="py"),
    pytest.param(CKeyDir, id="c", marks=pytest.mark.skipif(CKeyDir is None, reason=NOT_BUILT)),
]
only_c = pytest.mark.skipif(CKeyDir is None, reason=NOT_BUILT)

SEED = bytes(range(16))
MAX_LOC = (1 << 80) - 1
PUT, DELETE = 1, 2

# Hypothesis: enough examples to cover the shapes, few enough for a file that runs in seconds.
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def loc(segment: int, offset: int, size: int) -> int:
    return segment << 48 | offset << 16 | size


locations = st.one_of(
    st.sampled_from(
        [0, 1, MAX_LOC, 2**64 - 1, 2**64, loc(65535, 2**32 - 1, 65535), loc(65536, 0, 0)]
    ),
    st.builds(
        loc,
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**16 - 1),
    ),
    st.integers(0, MAX_LOC),
)


# ---------------------------------------------------------------- the C module is there


def test_the_c_module_is_built_where_it_can_be() -> None:
    if os.environ.get("AIOKV_PURE_PYTHON"):
        pytest.skip("AIOKV_PURE_PYTHON is set")
    if shutil.which("cc") is None:
        pytest.skip("no C compiler here, so the package installs without its C part")
    assert CKeyDir is not None, "the C key directory did not build: reinstall (pip install -e .)"
    assert keydir.KeyDir is CKeyDir


# ---------------------------------------------------------------- get, put, pop against a dict


@st.composite
def operations(draw: st.DrawFn) -> list[tuple[str, bytes, int]]:
    # A small pool of keys so that operations meet the same keys again.
    pool = draw(st.lists(st.binary(max_size=128), min_size=1, max_size=12, unique=True))
    ops = st.tuples(st.sampled_from(["put", "get", "pop"]), st.sampled_from(pool), locations)
    return draw(st.lists(ops, max_size=80))


def run_against_model(kd: Any, ops: list[tuple[str, bytes, int]], by_key: bool) -> None:
    # by_key: the model is keyed by the key itself (no collisions expected: 48-bit hashes);
    # otherwise by the key's hash, which is what the directory holds.
    model: dict[Any, int] = {}
    hashes: dict[bytes, int] = {}
    for op, key, location in ops:
        h = kd.hash(key)
        assert hashes.setdefault(key, h) == h  # stable
        slot = key if by_key else h
        if op == "put":
            assert kd.put(key, location) == model.get(slot)
            model[slot] = location
        elif op == "get":
            assert kd.get(key) == model.get(slot)
        else:
            assert kd.pop(key) == model.pop(slot, None)
        assert len(kd) == len(model)
    if by_key:
        assert len(set(hashes.values())) == len(hashes)
    for key in hashes:
        assert kd.get(key) == model.get(key if by_key else hashes[key])
    assert sorted(kd.locations()) == sorted(model.values())


@pytest.mark.parametrize("impl", IMPLS)
@FAST
@given(ops=operations())
def test_get_put_pop_match_a_dict(impl: Any, ops: list[tuple[str, bytes, int]]) -> None:
    run_against_model(impl(SEED), ops, by_key=True)


@pytest.mark.slow
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("hash_bits", [2, 3, 4])
@FAST
@given(ops=operations())
def test_get_put_pop_under_heavy_collisions(
    impl: Any, hash_bits: int, ops: list[tuple[str, bytes, int]]
) -> None:
    kd = impl(SEED, hash_bits)
    run_against_model(kd, ops, by_key=False)
    for _op, key, _loc in ops:
        assert 0 <= kd.hash(key) < 1 << hash_bits


@pytest.mark.parametrize("impl", IMPLS)
def test_hashes_spread(impl: Any) -> None:
    keys = [f"key{i:07d}".encode() for i in range(2000)]
    wide = impl(SEED)
    assert len({wide.hash(k) for k in keys}) == len(keys)
    assert all(0 <= wide.hash(k) < 1 << 48 for k in keys)
    narrow = impl(SEED, 4)
    assert {narrow.hash(k) for k in keys} == set(range(16))


@only_c
def test_c_hashes_depend_on_the_seed() -> None:
    # PyKeyDir leaves the keying to Python's own hash (per process); the C type is keyed by
    # its seed, so that a client cannot aim keys at one chain of the table.
    assert CKeyDir is not None
    keys = [f"key{i:07d}".encode() for i in range(2000)]
    one, other = CKeyDir(SEED), CKeyDir(bytes(16))
    assert sum(one.hash(k) == other.hash(k) for k in keys) == 0
    assert [one.hash(k) for k in keys] == [CKeyDir(SEED).hash(k) for k in keys]


@pytest.mark.parametrize("impl", IMPLS)
def test_keyword_arguments(impl: Any) -> None:
    kd = impl(seed=SEED, hash_bits=48)
    assert kd.put(key=b"a", loc=5) is None
    assert kd.get(key=b"a") == 5
    assert kd.hash(key=b"a") == kd.hash(b"a")
    assert kd.pop(key=b"a") == 5


# ---------------------------------------------------------------- SipHash-1-3


def _rotl(x: int, b: int) -> int:
    return (x << b | x >> (64 - b)) & 0xFFFFFFFFFFFFFFFF


def siphash13(seed: bytes, data: bytes) -> int:
    """SipHash-1-3, written from the algorithm's description: the test's own reference."""
    mask = 0xFFFFFFFFFFFFFFFF
    k0 = int.from_bytes(seed[:8], "little")
    k1 = int.from_bytes(seed[8:], "little")
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261]
    v.append(k1 ^ 0x7465646279746573)

    def rounds(n: int) -> None:
        for _ in range(n):
            v[0] = (v[0] + v[1]) & mask
            v[1] = _rotl(v[1], 13) ^ v[0]
            v[0] = _rotl(v[0], 32)
            v[2] = (v[2] + v[3]) & mask
            v[3] = _rotl(v[3], 16) ^ v[2]
            v[0] = (v[0] + v[3]) & mask
            v[3] = _rotl(v[3], 21) ^ v[0]
            v[2] = (v[2] + v[1]) & mask
            v[1] = _rotl(v[1], 17) ^ v[2]
            v[2] = _rotl(v[2], 32)

    whole = len(data) - len(data) % 8
    words = [int.from_bytes(data[i : i + 8], "little") for i in range(0, whole, 8)]
    words.append(int.from_bytes(data[whole:], "little") | (len(data) & 0xFF) << 56)
    for m in words:
        v[3] ^= m
        rounds(1)
        v[0] ^= m
    v[2] ^= 0xFF
    rounds(3)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


@only_c
@FAST
@given(seed=st.binary(min_size=16, max_size=16), key=st.binary(max_size=70))
def test_c_hash_is_siphash13_of_the_key(seed: bytes, key: bytes) -> None:
    assert CKeyDir is not None
    assert CKeyDir(seed).hash(key) == siphash13(seed, key) & (2**48 - 1)
    assert CKeyDir(seed, 5).hash(key) == siphash13(seed, key) & 31


@pytest.mark.skipif(
    sys.hash_info.algorithm != "siphash13", reason="this Python does not hash with SipHash-1-3"
)
def test_the_reference_siphash_agrees_with_pythons() -> None:
    # With PYTHONHASHSEED=0 CPython hashes bytes with SipHash-1-3 under an all-zero key.
    keys = [bytes(range(n)) for n in range(1, 40)] + [b"x" * 1000]
    code = f"print([hash(k) % 2**64 for k in {keys!r}])"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert eval(out) == [siphash13(bytes(16), k) for k in keys]


# ---------------------------------------------------------------- load


def hint(entries: list[tuple[bytes, int, int, int]]) -> tuple[bytes, array[int], ...]:
    keys = b"".join(key + b"\xff" for key, *_ in entries)
    return (
        keys,
        array("B", [len(key) for key, *_ in entries]),
        array("B", [kind for _key, kind, _o, _s in entries]),
        array("I", [offset for _key, _kind, offset, _s in entries]),
        array("I", [size for *_, size in entries]),
    )


def model_load(
    model: dict[int, int],
    hash_of: Any,
    entries: list[tuple[bytes, int, int, int]],
    segment: int,
    start: int,
) -> tuple[int, int, int, int, int]:
    """The rule of KeyDir.load on a dict keyed by hash."""
    pos = sum(len(key) + 1 for key, *_ in entries[:start])
    added = key_bytes = total = 0
    i = start
    while i < len(entries):
        key, kind, offset, size = entries[i]
        h = hash_of(key)
        if h in model:
            break
        if kind == PUT:
            model[h] = segment << 48 | offset << 16 | size
            added += 1
            key_bytes += len(key)
            total += size
        pos += len(key) + 1
        i += 1
    return i, pos, added, key_bytes, total


@st.composite
def hints(draw: st.DrawFn) -> dict[str, Any]:
    pool = draw(st.lists(st.binary(max_size=40), min_size=1, max_size=10, unique=True))
    entry = st.tuples(
        st.sampled_from(pool),
        st.sampled_from([PUT, PUT, DELETE]),
        st.integers(0, 2**32 - 1),
        # Sizes from 2**16 up spill into the offset's bits, as PyKeyDir's arithmetic does.
        st.one_of(st.integers(0, 2**16 - 1), st.integers(0, 2**32 - 1)),
    )
    return {
        "pool": pool,
        "entries": draw(st.lists(entry, max_size=30)),
        "before": draw(st.lists(st.tuples(st.sampled_from(pool), locations), max_size=4)),
        "segment": draw(st.sampled_from([0, 1, 65535, 65536, 2**32 - 1])),
        "choices": draw(st.lists(st.sampled_from(["skip", "pop", "put"]), max_size=40)),
    }


@pytest.mark.slow
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("hash_bits", [48, 3])
@FAST
@given(case=hints())
def test_load_matches_its_model_through_every_stop(
    impl: Any, hash_bits: int, case: dict[str, Any]
) -> None:
    kd = impl(SEED, hash_bits)
    model: dict[int, int] = {}
    for key, location in case["before"]:
        kd.put(key, location)
        model[kd.hash(key)] = location
    entries = case["entries"]
    columns = hint(entries)
    segment = case["segment"]
    choices = iter(case["choices"])
    start = pos = 0
    while True:
        got = kd.load(*columns, segment, start, pos)
        assert got == model_load(model, kd.hash, entries, segment, start)
        assert len(kd) == len(model)
        stop, pos = got[0], got[1]
        if stop == len(entries):
            break
        # The caller decides the entry it stopped at: here by hand, then goes on.
        key, _kind, offset, size = entries[stop]
        choice = next(choices, "skip")
        if choice == "pop":
            # The hash is gone: loading again from this entry applies it.
            kd.pop(key)
            del model[kd.hash(key)]
            start = stop
        else:
            if choice == "put":
                new = loc(segment, offset, size)
                kd.put(key, new)
                model[kd.hash(key)] = new
            start, pos = stop + 1, pos + len(key) + 1
    for key in case["pool"]:
        assert kd.get(key) == model.get(kd.hash(key))
    assert sorted(kd.locations()) == sorted(model.values())


@pytest.mark.parametrize("impl", IMPLS)
def test_load_returns_its_totals_and_resumes(impl: Any) -> None:
    kd = impl(SEED)
    entries = [
        (b"a", PUT, 32, 100),
        (b"gone", DELETE, 132, 30),
        (b"bb", PUT, 162, 70),
        (b"a", PUT, 232, 90),  # present: the load stops here
        (b"", PUT, 322, 29),
    ]
    columns = hint(entries)
    assert kd.load(*columns, 7, 0, 0) == (3, 10, 2, 3, 170)
    assert kd.get(b"a") == loc(7, 32, 100)
    assert kd.get(b"gone") is None
    assert kd.load(*columns, 7, 4, 12) == (5, 13, 1, 0, 29)
    assert kd.get(b"") == loc(7, 322, 29)
    assert kd.load(*columns, 7, 5, 13) == (5, 13, 0, 0, 0)  # nothing left
    by_name = dict(zip(("keys", "lengths", "kinds", "offsets", "sizes"), columns, strict=True))
    assert kd.load(**by_name, segment=7, start=5, pos=13) == (5, 13, 0, 0, 0)
    assert len(kd) == 3


@pytest.mark.parametrize("impl", IMPLS)
def test_load_of_many_entries_in_one_call(impl: Any) -> None:
    n = 50_000
    entries = [(f"key{i:07d}".encode(), PUT, 32 + 100 * i, 100) for i in range(n)]
    kd = impl(SEED)
    assert kd.load(*hint(entries), 3, 0, 0) == (n, 11 * n, n, 10 * n, 100 * n)
    assert len(kd) == n
    for key, _kind, offset, size in entries[:: n // 100]:
        assert kd.get(key) == loc(3, offset, size)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview], ids=lambda t: t.__name__)
def test_load_takes_keys_as_bytes_or_a_view_of_them(impl: Any, wrap: Any) -> None:
    entries = [(b"a", PUT, 32, 10), (b"bcd", PUT, 42, 20), (b"a", PUT, 62, 5)]
    keys, *columns = hint(entries)
    # As the store passes them: a slice of a view of the whole hint file.
    data = memoryview(b"header" + keys + b"trailer")
    view = wrap(data[6 : 6 + len(keys)])
    kd = impl(SEED)
    assert kd.load(view, *columns, 2, 0, 0) == (2, 6, 2, 4, 30)
    assert kd.get(b"bcd") == loc(2, 42, 20)
    kd.pop(b"a")
    assert kd.load(view, *columns, 2, 2, 6) == (3, 8, 1, 1, 5)
    assert kd.get(b"a") == loc(2, 62, 5)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("keys", "lengths", "kinds"),
    [
        pytest.param(b"ab\xffcd\xfe", [2, 2], [PUT, PUT], id="no 0xFF after the key"),
        pytest.param(b"ab\xffcd", [2, 2], [PUT, PUT], id="no byte after the key"),
        pytest.param(b"ab\xffcd\xff", [2, 9], [PUT, PUT], id="length past the end"),
        pytest.param(b"ab\xffcd\xff", [2, 1], [PUT, PUT], id="length short of the 0xFF"),
        pytest.param(b"ab\xffcd\xff", [2, 2], [PUT, 3], id="unknown kind 3"),
        pytest.param(b"ab\xffcd\xff", [2, 2], [PUT, 0], id="unknown kind 0"),
    ],
)
def test_a_malformed_entry_is_refused_after_the_ones_before(
    impl: Any, keys: bytes, lengths: list[int], kinds: list[int]
) -> None:
    kd = impl(SEED)
    n = len(kinds)
    columns = (array("B", lengths), array("B", kinds), array("I", [32] * n), array("I", [9] * n))
    with pytest.raises(ValueError, match="entry 1"):
        kd.load(keys, *columns, 1, 0, 0)
    # The first entry was applied, whole; the bad one was not.
    assert len(kd) == 1
    assert kd.get(b"ab") == loc(1, 32, 9)
    assert kd.get(b"cd") is None


@pytest.mark.parametrize("impl", IMPLS)
def test_a_present_entry_stops_the_load_before_a_malformed_one_is_read(impl: Any) -> None:
    kd = impl(SEED)
    kd.put(b"ab", 5)
    keys, lengths, kinds, offsets, sizes = hint([(b"ab", PUT, 1, 1), (b"cd", 9, 1, 1)])
    assert kd.load(keys, lengths, kinds, offsets, sizes, 1, 0, 0) == (0, 0, 0, 0, 0)


@pytest.mark.parametrize("impl", IMPLS)
def test_load_refuses_bad_columns_and_positions(impl: Any) -> None:
    kd = impl(SEED)
    keys, lengths, kinds, offsets, sizes = hint([(b"a", PUT, 1, 1), (b"b", PUT, 2, 2)])
    short = array("I", [1])
    for columns in [
        (lengths[:1], kinds, offsets, sizes),
        (lengths, kinds[:1], offsets, sizes),
        (lengths, kinds, short, sizes),
        (lengths, kinds, offsets, short),
    ]:
        with pytest.raises(ValueError, match="different lengths"):
            kd.load(keys, *columns, 1, 0, 0)
    for start, pos in [(-1, 0), (3, 0), (0, -1), (0, len(keys) + 1), (10**30, 0), (0, -(10**30))]:
        with pytest.raises(ValueError, match="out of range"):
            kd.load(keys, lengths, kinds, offsets, sizes, 1, start, pos)
    assert len(kd) == 0
    # The ends themselves are in range.
    assert kd.load(keys, lengths, kinds, offsets, sizes, 1, 2, len(keys)) == (2, 4, 0, 0, 0)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("segment", [-1, 2**32, 2**100])
def test_load_refuses_a_segment_out_of_range_at_its_first_put(impl: Any, segment: int) -> None:
    kd = impl(SEED)
    # Deletes build no location, so they pass; the put is refused.
    columns = hint([(b"x", DELETE, 1, 1), (b"a", PUT, 1, 1)])
    with pytest.raises(ValueError, match="not a location"):
        kd.load(*columns, segment, 0, 0)
    assert len(kd) == 0
    assert kd.load(*hint([(b"x", DELETE, 1, 1)]), segment, 0, 0) == (1, 2, 0, 0, 0)


@only_c
@pytest.mark.parametrize(
    "column",
    [
        pytest.param((1, array("H", [1])), id="lengths H"),
        pytest.param((1, array("b", [1])), id="lengths b"),
        pytest.param((2, array("I", [1])), id="kinds I"),
        pytest.param((3, array("B", [1])), id="offsets B"),
        pytest.param((3, array("Q", [1])), id="offsets Q"),
        pytest.param((4, array("i", [1])), id="sizes i"),
        pytest.param((4, array("f", [1])), id="sizes f"),
        pytest.param((4, [1]), id="sizes list"),
        pytest.param((0, "a\xff"), id="keys str"),
        pytest.param((0, memoryview(b"a\xffa\xff")[::2]), id="keys not contiguous"),
        pytest.param((0, memoryview(b"a\xff").cast("b")), id="keys signed"),
    ],
)
def test_c_load_refuses_columns_of_the_wrong_type(column: tuple[int, Any]) -> None:
    # PyKeyDir takes any indexable columns; the C type reads their memory, so it insists on
    # the hint's own typecodes, and on keys in one piece.
    assert CKeyDir is not None
    kd = CKeyDir(SEED)
    args: list[Any] = list(hint([(b"a", PUT, 1, 1)]))
    index, value = column
    args[index] = value
    with pytest.raises(TypeError):
        kd.load(*args, 1, 0, 0)
    assert len(kd) == 0


# ---------------------------------------------------------------- boundaries


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "location",
    [
        0,
        1,
        2**64 - 1,
        2**64,
        MAX_LOC,
        loc(65535, 2**32 - 1, 65535),
        loc(65536, 0, 0),
        loc(65536, 1, 65535),
        loc(2**32 - 1, 0, 65535),
        loc(0, 0, 65535),
        True,
    ],
)
def test_locations_at_the_edges_round_trip(impl: Any, location: int) -> None:
    kd = impl(SEED)
    assert kd.put(b"k", location) is None
    assert kd.get(b"k") == location
    assert kd.put(b"k", 5) == location
    assert kd.put(b"k", location) == 5
    assert kd.locations() == [location]
    assert kd.pop(b"k") == location
    assert kd.get(b"k") is None


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("location", [-1, -(2**70), 2**80, 2**80 + 1, 2**200])
def test_locations_out_of_range_are_refused(impl: Any, location: int) -> None:
    kd = impl(SEED)
    kd.put(b"k", 5)
    with pytest.raises(ValueError, match="not a location"):
        kd.put(b"k", location)
    with pytest.raises(ValueError, match="not a location"):
        kd.put(b"new", location)
    assert kd.get(b"k") == 5
    assert len(kd) == 1


@pytest.mark.parametrize("impl", IMPLS)
def test_a_location_must_be_an_int(impl: Any) -> None:
    with pytest.raises(TypeError):
        impl(SEED).put(b"k", "1")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("seed", [b"", bytes(15), bytes(17)])
def test_a_seed_must_be_16_bytes(impl: Any, seed: bytes) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        impl(seed)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("hash_bits", [0, -1, 49, 64, 2**70])
def test_hash_bits_must_be_from_1_to_48(impl: Any, hash_bits: int) -> None:
    with pytest.raises(ValueError, match="hash_bits"):
        impl(SEED, hash_bits)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("hash_bits", [1, 48])
def test_hash_bits_at_the_ends(impl: Any, hash_bits: int) -> None:
    kd = impl(SEED, hash_bits)
    kd.put(b"a", 1)
    kd.put(b"b", 2)
    assert len(kd) == (1 if kd.hash(b"a") == kd.hash(b"b") else 2)
    assert kd.get(b"b") == 2


class BytesSubclass(bytes):
    pass


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "key", ["text", 5, None, 1.5, bytearray(b"k"), memoryview(b"k"), BytesSubclass(b"k")]
)
def test_keys_must_be_exactly_bytes(impl: Any, key: Any) -> None:
    kd = impl(SEED)
    kd.put(b"k", 1)
    for call in (kd.get, kd.pop, kd.hash, lambda k: kd.put(k, 2)):
        with pytest.raises(TypeError, match="bytes"):
            call(key)
    assert kd.get(b"k") == 1
    assert len(kd) == 1


@only_c
def test_c_type_cannot_be_subclassed() -> None:
    assert CKeyDir is not None
    with pytest.raises(TypeError):
        type("Sub", (CKeyDir,), {})


# ---------------------------------------------------------------- growth and shrinking


@pytest.mark.parametrize("impl", IMPLS)
def test_growth_then_removal_of_everything_then_growth_again(impl: Any) -> None:
    n = 200_000
    kd = impl(SEED)
    keys = [b"%d" % i for i in range(n)]
    empty_size = sys.getsizeof(kd)
    for i, key in enumerate(keys):
        assert kd.put(key, i) is None
    assert len(kd) == n
    full_size = sys.getsizeof(kd)
    assert full_size > 10 * empty_size
    assert all(kd.get(key) == i for i, key in enumerate(keys))
    for i, key in enumerate(keys):
        assert kd.pop(key) == i
    assert len(kd) == 0
    assert kd.get(keys[0]) is None
    if impl is CKeyDir:
        # The C type gives its tables back as it empties.
        assert sys.getsizeof(kd) < full_size // 100
        assert full_size < 30 * n
    for i, key in enumerate(keys):
        assert kd.put(key, i + 1) is None
    assert len(kd) == n
    assert all(kd.get(key) == i + 1 for i, key in enumerate(keys))


@pytest.mark.parametrize("impl", IMPLS)
def test_churn_of_deletes_among_inserts(impl: Any) -> None:
    # Deleted slots pile up and are dropped by rebuilds; entries move as others leave.
    rng = random.Random(5)
    kd = impl(SEED)
    model: dict[bytes, int] = {}
    next_key = 0
    for step in range(60_000):
        if model and rng.random() < 0.45:
            key = rng.choice(list(model)) if step % 500 == 0 else next(iter(model))
            assert kd.pop(key) == model.pop(key)
        else:
            key = b"k%d" % next_key
            next_key += 1
            model[key] = step
            assert kd.put(key, step) is None
        if step % 5000 == 0:
            assert len(kd) == len(model)
    assert len(kd) == len(model)
    assert all(kd.get(key) == value for key, value in model.items())
    assert all(kd.get(b"k%d" % i) is None for i in range(next_key) if b"k%d" % i not in model)
    assert sorted(kd.locations()) == sorted(model.values())


# ---------------------------------------------------------------- threads, references, leaks


@pytest.mark.slow
@pytest.mark.parametrize("impl", IMPLS)
def test_readers_see_only_values_that_were_put(impl: Any) -> None:
    kd = impl(SEED)
    keys = [b"t%d" % i for i in range(2000)]
    # Key i only ever holds locations from its own set: i * 1000 + j, large ones included.
    allowed = {
        key: {i * 1000 + j for j in range(1000)} | {MAX_LOC - i} for i, key in enumerate(keys)
    }
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        rng = random.Random(1)
        try:
            while not stop.is_set():
                i = rng.randrange(len(keys))
                r = rng.random()
                if r < 0.5:
                    kd.put(keys[i], i * 1000 + rng.randrange(1000))
                elif r < 0.6:
                    kd.put(keys[i], MAX_LOC - i)
                elif r < 0.9:
                    kd.pop(keys[i])
                else:
                    # Offset 0 and a size of i * 1000 + j: location i * 1000 + j, if absent.
                    entry = (keys[i], PUT, 0, i * 1000 + rng.randrange(1000))
                    kd.load(*hint([entry]), 0, 0, 0)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    seen = 0
    deadline = time.monotonic() + 0.3
    try:
        while time.monotonic() < deadline:
            for key in keys[::7]:
                value = kd.get(key)
                if value is not None:
                    seen += 1
                    assert value in allowed[key]
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert seen > 0


@only_c
def test_c_results_hold_no_extra_references() -> None:
    assert CKeyDir is not None
    kd = CKeyDir(SEED)
    kd.put(b"big", loc(70000, 12345, 678))  # wider than 64 bits
    kd.put(b"mid", 2**63 + 5)
    # What a fresh int held by one local counts here, whatever this Python's conventions.
    fresh = int("9" * 30)
    expected = sys.getrefcount(fresh)
    for key in (b"big", b"mid"):
        value = kd.get(key)
        assert sys.getrefcount(value) == expected
        del value
        value = kd.pop(key)
        assert sys.getrefcount(value) == expected
        del value
        kd.put(key, 2**79 + 1)
        value = kd.put(key, 1)
        assert sys.getrefcount(value) == expected
    result = kd.load(*hint([(b"a", PUT, 1, 1)]), 1, 0, 0)
    assert sys.getrefcount(result) == expected
    values = kd.locations()
    assert sys.getrefcount(values) == expected
    # Each held by the list and by the loop's variable.
    assert all(sys.getrefcount(x) == expected + 1 for x in values if x > 256)


@pytest.mark.slow
@pytest.mark.parametrize("impl", IMPLS)
def test_repeated_calls_do_not_grow_memory(impl: Any) -> None:
    kd = impl(SEED)
    keys = [b"m%d" % i for i in range(1000)]
    for i, key in enumerate(keys):
        kd.put(key, loc(65536 + i, i, i) if i % 2 else i)
    columns = hint([(key, PUT, 1, 1) for key in keys[:10]])

    def work() -> None:
        for _ in range(100):
            for key in keys:
                kd.get(key)
            kd.get(b"absent")
            kd.put(keys[3], loc(70000, 1, 1))  # replaces: no new entry
            kd.pop(b"absent")
            kd.hash(keys[5])
            kd.load(*columns, 1, 0, 0)  # stops at once: every key is present
            kd.locations()
            # Not pytest.raises: its tracebacks are cycles, freed only by a collection.
            with contextlib.suppress(ValueError):
                kd.put(keys[0], -1)
            with contextlib.suppress(TypeError):
                kd.get("text")

    work()
    tracemalloc.start()
    try:
        work()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        work()
        work()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 4096  # 600,000 calls: a leak of one object a call is megabytes

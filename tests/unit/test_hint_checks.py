"""A hint as an open reads it: its entries checked before they are loaded, by the one-pass
check the open uses (``index.keydir.check_hint_entries``: C where the key directory is built)
against the format's own Python checks, which define what a sound hint is; its expiries looked
for; the file mapped rather than read."""

from __future__ import annotations

import os
import zlib
from array import array
from pathlib import Path
from typing import Any

import pytest
from _internals import (
    FILE_HEADER_SIZE,
    HEADER_SIZE,
    KIND_DELETE,
    KIND_PUT,
    MAX_KEY_BYTES,
    MAX_RECORD_SIZE,
    BadHint,
    Hint,
    HintBuilder,
    ccheck_entries,
    check_entries,
    check_entries_py,
    check_hint_entries,
    decode_hint,
    files,
    has_expiries,
    split_keys,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.purepy

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CHECKS = [
    pytest.param(check_hint_entries, id="in-use"),
    pytest.param(check_entries_py, id="py"),
]
only_c = pytest.mark.skipif(ccheck_entries is None, reason="the C key directory is not built")
c_in_use = pytest.mark.skipif(
    check_hint_entries is check_entries_py, reason="the open checks hints in Python here"
)

Entry = tuple[int, bytes, int, int, int, float, int]


def make_hint(entries: list[Entry], covered: int | None = None) -> Hint:
    builder = HintBuilder()
    for entry in entries:
        builder.add(*entry)
    if covered is None:
        covered = FILE_HEADER_SIZE + sum(entry[3] for entry in entries)
    return decode_hint(builder.encode(1, 1, covered))


def back_to_back(rows: list[tuple[int, bytes, int]]) -> list[Entry]:
    """(kind, key, size) rows as entries whose records lie back to back."""
    entries = []
    offset = FILE_HEADER_SIZE
    for seq, (kind, key, size) in enumerate(rows, 1):
        entries.append((kind, key, offset, size, seq, 0.0, 0))
        offset += size
    return entries


def sound_by_the_format(hint: Hint) -> bool:
    """What ``format.hint`` says: its column checks, and its keys cut and checked."""
    try:
        check_entries(hint)
        split_keys(hint)
    except BadHint:
        return False
    return True


def passes(check: Any, hint: Hint) -> bool:
    try:
        check(hint)
    except BadHint as bad:
        reason = str(bad)
    else:
        return True
    assert reason, "a BadHint says why"
    return False


keys = st.one_of(
    st.text(min_size=1, max_size=40).map(lambda text: text.encode("utf-8")),
    st.binary(min_size=0, max_size=MAX_KEY_BYTES + 3),
    st.sampled_from([b"\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90\x80\x80", b"a\xffb", b"\xff"]),
)
sizes = st.one_of(
    st.integers(HEADER_SIZE + 1, MAX_RECORD_SIZE),
    st.sampled_from([0, HEADER_SIZE, HEADER_SIZE + 1, MAX_RECORD_SIZE, MAX_RECORD_SIZE + 1]),
)


@st.composite
def hints(draw: st.DrawFn) -> Hint:
    rows = draw(
        st.lists(
            st.tuples(st.sampled_from([KIND_PUT, KIND_PUT, KIND_DELETE, 0, 3]), keys, sizes),
            max_size=12,
        )
    )
    entries = back_to_back(rows)
    if entries and draw(st.booleans()):  # an offset out of line
        i = draw(st.integers(0, len(entries) - 1))
        kind, key, offset, size, seq, expiry, target = entries[i]
        offset = draw(st.sampled_from([offset - 1, offset + 1, 0]))
        entries[i] = (kind, key, offset % 2**32, size, seq, expiry, target)
    covered = FILE_HEADER_SIZE + sum(entry[3] for entry in entries)
    covered += draw(st.sampled_from([0, 0, 0, 1, -1]))
    return make_hint(entries, max(covered, 0))


@pytest.mark.parametrize("check", CHECKS)
@FAST
@given(hint=hints())
def test_the_open_refuses_exactly_the_hints_the_format_refuses(check: Any, hint: Hint) -> None:
    assert passes(check, hint) == sound_by_the_format(hint)


@c_in_use
@FAST
@given(key=st.binary(min_size=1, max_size=MAX_KEY_BYTES))
def test_the_c_utf8_check_is_python_s_strict_decoder(key: bytes) -> None:
    try:
        key.decode("utf-8")
    except UnicodeDecodeError:
        utf8 = False
    else:
        utf8 = True
    hint = make_hint(back_to_back([(KIND_PUT, key, 100)]))
    assert passes(check_hint_entries, hint) == utf8


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize(
    ("length", "size", "sound"),
    [
        (1, HEADER_SIZE + 1, True),
        (MAX_KEY_BYTES, MAX_RECORD_SIZE, True),
        (MAX_KEY_BYTES + 1, 200, False),
        (5, HEADER_SIZE, False),
        (5, MAX_RECORD_SIZE + 1, False),
    ],
)
def test_the_limits_are_the_format_s(check: Any, length: int, size: int, sound: bool) -> None:
    hint = make_hint(back_to_back([(KIND_PUT, b"k" * length, size)]))
    assert passes(check, hint) == sound


@c_in_use
def test_keys_not_where_their_lengths_say_are_refused_before_the_load() -> None:
    # Lengths swapped: each sum still adds up; only cutting the keys finds it out.
    builder = HintBuilder()
    for entry in back_to_back([(KIND_PUT, b"a", 60), (KIND_PUT, b"bcd", 60)]):
        builder.add(*entry)
    data = bytearray(builder.encode(1, 1, FILE_HEADER_SIZE + 120))
    lengths = 32 + 2
    data[lengths : lengths + 2] = bytes([3, 1])
    body = bytes(data[:-4])
    hint = decode_hint(body + zlib.crc32(body).to_bytes(4, "little"))
    with pytest.raises(BadHint, match="does not end where its length says"):
        check_hint_entries(hint)


@only_c
def test_the_c_check_refuses_columns_of_different_lengths() -> None:
    assert ccheck_entries is not None
    one, two = array("I", [0]), array("I", [0, 0])
    with pytest.raises(ValueError, match="different lengths"):
        ccheck_entries(b"a\xff", b"\x01", b"\x01\x01", one, one, 0, 0, 1, 0, 9)
    with pytest.raises(ValueError, match="different lengths"):
        ccheck_entries(b"a\xff", b"\x01", b"\x01", two, one, 0, 0, 1, 0, 9)
    with pytest.raises(TypeError, match="offsets"):
        ccheck_entries(b"a\xff", b"\x01", b"\x01", b"\x00", one, 0, 0, 1, 0, 9)
    with pytest.raises(ValueError, match="covered out of range"):
        ccheck_entries(b"a\xff", b"\x01", b"\x01", one, one, 0, -1, 1, 0, 9)


@pytest.mark.parametrize(
    ("expiries", "expected"),
    [([], False), ([0.0] * 3, False), ([0.0, -0.0], False), ([0.0, 5.0], True)],
)
def test_has_expiries(expiries: list[float], expected: bool) -> None:
    entries = [
        (KIND_PUT, b"k%d" % i, FILE_HEADER_SIZE + 100 * i, 100, i + 1, expiry, 0)
        for i, expiry in enumerate(expiries)
    ]
    assert has_expiries(make_hint(entries)) is expected


def test_has_expiries_looks_past_the_first_pieces() -> None:
    n = 20_000  # 160 KB of expiries: three pieces
    entries = [
        (KIND_PUT, b"k", FILE_HEADER_SIZE + 100 * i, 100, i + 1, 0.0 if i < n - 1 else 9.5, 0)
        for i in range(n)
    ]
    assert has_expiries(make_hint(entries))


# -- the file mapped, not read ----------------------------------------------------------------


@pytest.fixture(params=[True, False], ids=["mapped", "read"])
def mapping(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(files, "MAP_WHOLE_FILES", request.param)
    return bool(request.param)


def test_map_file_gives_the_file_s_bytes(tmp_path: Path, mapping: bool) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"hint bytes")
    data = files.fs.map_file(path, 100)
    assert bytes(data) == b"hint bytes"
    assert isinstance(data, bytes) != mapping
    (tmp_path / "empty").write_bytes(b"")
    assert files.fs.map_file(tmp_path / "empty", 100) == b""


def test_map_file_refuses_what_no_hint_is(tmp_path: Path, mapping: bool) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 101)
    with pytest.raises(files.NotRegularFileError):
        files.fs.map_file(path, 100)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(files.NotRegularFileError):
        files.fs.map_file(tmp_path / "fifo", 100)
    (tmp_path / "link").symlink_to(path)
    with pytest.raises(files.NotRegularFileError):
        files.fs.map_file(tmp_path / "link", 1000)

"""The checksum the store uses is CRC-32 (zlib's) exactly, whichever library computes it.

The package takes ``isal``'s CRC-32 where isal is installed and zlib's otherwise. Where it has
zlib's, comparing it with zlib's would compare a function with itself, so every result here
is checked against something that does not come from the function under test: the published
check values of CRC-32, and a bytewise CRC-32 written out below from the definition. Where
isal computes it, it is compared with zlib's too.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
import sys
import zlib

import pytest
from _internals import crc, crc32
from hypothesis import given
from hypothesis import strategies as st

HAS_ISAL = importlib.util.find_spec("isal") is not None
USES_ZLIB = crc32 is zlib.crc32

# Published check values of CRC-32 (ISO-HDLC, as in zlib, PKZIP and PNG).
KNOWN = [
    (b"", 0x00000000),
    (b"a", 0xE8B7BE43),
    (b"abc", 0x352441C2),
    (b"message digest", 0x20159D7F),
    (b"123456789", 0xCBF43926),
    (b"The quick brown fox jumps over the lazy dog", 0x414FA339),
]


def _table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xEDB88320 if crc & 1 else crc >> 1
        table.append(crc)
    return table


TABLE = _table()


def reference_crc32(data: bytes, start: int = 0) -> int:
    """CRC-32 from its definition: the reflected polynomial 0xEDB88320, the register preset to
    all ones and inverted at the end (so that a running value is passed on as ``start``)."""
    crc = start ^ 0xFFFFFFFF
    for byte in data:
        crc = (crc >> 8) ^ TABLE[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFFFFFF


@pytest.mark.parametrize(("data", "value"), KNOWN, ids=[repr(data[:9]) for data, _ in KNOWN])
def test_crc32_gives_the_published_check_values(data: bytes, value: int) -> None:
    assert reference_crc32(data) == value  # the reference is right before it is used below
    assert crc32(data) == value
    assert crc32(bytearray(data)) == value
    assert crc32(memoryview(data)) == value
    for cut in range(len(data) + 1):  # a running CRC carried across a split
        assert crc32(data[cut:], crc32(data[:cut])) == value


@given(st.binary(max_size=2048), st.integers(0, 2**32 - 1))
def test_crc32_matches_the_definition(data: bytes, start: int) -> None:
    assert crc32(data) == reference_crc32(data)
    assert crc32(data, start) == reference_crc32(data, start)


@pytest.mark.skipif(USES_ZLIB, reason="the package's crc32 is zlib's own: nothing to compare")
@given(st.binary(max_size=70_000), st.integers(0, 2**32 - 1))
def test_the_fast_crc32_is_zlibs(data: bytes, start: int) -> None:
    assert crc32(data) == zlib.crc32(data)
    assert crc32(data, start) == zlib.crc32(data, start)


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 63, 64, 65, 1023, 1024, 16_411, 65_564])
def test_crc32_of_views_and_every_alignment(size: int) -> None:
    data = os.urandom(size + 8)
    for shift in range(8):
        view = memoryview(data)[shift : shift + size]
        assert crc32(view) == reference_crc32(data[shift : shift + size])
    assert crc32(bytearray(data)) == reference_crc32(data)


def test_isal_is_used_where_installed_and_zlib_where_not() -> None:
    if HAS_ISAL:
        assert crc32.__module__ == "isal.isal_zlib"
    else:
        assert crc32 is zlib.crc32


def test_without_isal_the_package_falls_back_to_zlibs_crc32() -> None:
    """Run where isal is installed too: a child process that cannot import it."""
    code = (
        "import sys, zlib; sys.modules['isal'] = sys.modules['isal.isal_zlib'] = None; "
        f"from {crc.__name__} import crc32; "
        "print(crc32 is zlib.crc32, crc32(b'123456789'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["True", str(0xCBF43926)]


def test_the_fast_crc_is_in_use_where_it_ships_wheels() -> None:
    if platform.machine() not in ("x86_64", "AMD64", "aarch64", "arm64"):
        pytest.skip("isal is not a dependency on this platform")
    assert crc32.__module__ == "isal.isal_zlib"

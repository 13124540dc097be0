"""The checksum the store uses is zlib's CRC-32 exactly, whichever library computes it."""

from __future__ import annotations

import os
import platform
import zlib

import pytest
from _internals import crc32
from hypothesis import given
from hypothesis import strategies as st


@given(st.binary(max_size=70_000), st.integers(0, 2**32 - 1))
def test_crc32_is_zlibs(data: bytes, start: int) -> None:
    assert crc32(data) == zlib.crc32(data)
    assert crc32(data, start) == zlib.crc32(data, start)


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 63, 64, 65, 1023, 1024, 16_411, 65_564])
def test_crc32_of_views_and_every_alignment(size: int) -> None:
    data = os.urandom(size + 8)
    for shift in range(8):
        view = memoryview(data)[shift : shift + size]
        assert crc32(view) == zlib.crc32(view)
    assert crc32(bytearray(data)) == zlib.crc32(data)


def test_the_fast_crc_is_in_use_where_it_ships_wheels() -> None:
    if platform.machine() not in ("x86_64", "AMD64", "aarch64", "arm64"):
        pytest.skip("isal is not a dependency on this platform")
    assert crc32.__module__ == "isal.isal_zlib"

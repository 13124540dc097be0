"""The read path's check of a record in C: see :func:`aiokv._bitcask.format.record.value_start`
and :func:`~aiokv._bitcask.format.record.put_value`."""

import mmap
from collections.abc import Callable
from typing import overload

def value_start(buf: bytes | bytearray | memoryview, key: bytes, /) -> int: ...
def use_crc32(function: Callable[[memoryview], int] | None, /) -> None: ...
def put_value(
    buf: bytes | bytearray | memoryview | mmap.mmap, offset: int, size: int, key: bytes, /
) -> bytes | None: ...
@overload
def encode_puts(
    first_seq: int,
    keys: list[bytes],
    values: list[bytes],
    expiries: list[float],
    encodings: list[int],
    /,
) -> tuple[bytes, list[int]] | None: ...
@overload
def encode_puts(
    first_seq: int,
    keys: list[bytes],
    values: list[bytes],
    expiries: list[float],
    encodings: list[int],
    headroom: int,
    /,
) -> tuple[bytearray, list[int]] | None: ...

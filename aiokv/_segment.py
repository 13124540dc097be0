"""One data file of the log: create, append, read at an offset, scan, cut off a torn tail.

Synchronous on purpose: the writer decides which thread calls these, and a read is a single
``pread`` that is cheap enough to run on the event loop.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from . import _files
from ._record import FILE_HEADER, FILE_HEADER_SIZE, BadRecord, Record, decode

_NAME = re.compile(r"^(\d{8})\.data$")
MAX_SEGMENT_ID: Final = 99_999_999


def segment_name(segment_id: int) -> str:
    """``00000042.data``: fixed width, so names sort in the order segments were made."""
    return f"{segment_id:08d}.data"


def parse_segment_name(name: str) -> int | None:
    match = _NAME.match(name)
    return int(match.group(1)) if match else None


class Segment:
    """An open segment file. ``size`` is its logical end: the offset the next append lands at."""

    __slots__ = ("fd", "id", "path", "read", "size")

    def __init__(self, segment_id: int, path: Path, fd: int, size: int) -> None:
        self.id = segment_id
        self.path = path
        self.fd = fd
        self.size = size
        self.read = _files.make_reader(fd)

    @classmethod
    def create(cls, directory: Path, segment_id: int) -> Segment:
        """Create a new, empty segment holding only its file header, synced to disk.

        The caller must fsync the directory before any record in it is acknowledged.
        """
        path = directory / segment_name(segment_id)
        fd = _files.create_file(path)
        try:
            _files.write_all(fd, FILE_HEADER)
            # The header is synced now so that after a crash a segment longer than its header
            # always has a valid one: a bad header then means corruption, not a torn create.
            os.fsync(fd)
        except BaseException:
            # The file is ours (O_EXCL made it); leave no half-made segment behind.
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        return cls(segment_id, path, fd, FILE_HEADER_SIZE)

    @classmethod
    def open(cls, directory: Path, segment_id: int) -> Segment:
        path = directory / segment_name(segment_id)
        fd = _files.open_file(path)
        try:
            size = os.fstat(fd).st_size
        except BaseException:
            os.close(fd)
            raise
        return cls(segment_id, path, fd, size)

    def append(self, data: bytes | bytearray | memoryview) -> None:
        _files.write_all(self.fd, data)
        self.size += len(data)

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)
        self.size = size

    def sync(self) -> None:
        os.fsync(self.fd)

    def read_all(self) -> bytes:
        return self.read(0, os.fstat(self.fd).st_size)

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


def has_valid_header(data: bytes) -> bool:
    return data[:FILE_HEADER_SIZE] == FILE_HEADER


def scan(data: bytes) -> Iterator[tuple[int, Record]]:
    """Yield ``(offset, record)`` for each good record after the file header.

    Stops at the end of ``data``; raises :class:`BadRecord` (with ``.offset`` set) at the first
    record that does not decode, so the caller can decide between a torn tail and corruption.
    """
    offset = FILE_HEADER_SIZE
    end = len(data)
    while offset < end:
        try:
            record = decode(data, offset)
        except BadRecord as exc:
            exc.offset = offset
            raise
        yield offset, record
        offset += record.size

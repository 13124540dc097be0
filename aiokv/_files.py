"""Operating-system file primitives, with the platform differences kept in one place."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

# Rule: a new file is created exclusively, never through a symlink, never inherited by a child
# process, and readable by its owner only.
_NEW_FILE_FLAGS = (
    os.O_RDWR
    | os.O_CREAT
    | os.O_EXCL
    | os.O_APPEND
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_OPEN_FLAGS = (
    os.O_RDWR
    | os.O_APPEND
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
FILE_MODE = 0o600
DIR_MODE = 0o700

HAVE_PREAD = hasattr(os, "pread")
"""Whether reads use ``os.pread``. Windows has none; tests force the fallback by clearing this."""

CAN_SYNC_DIRECTORY = sys.platform != "win32"
"""Windows cannot open a directory to fsync it; NTFS journals the metadata instead."""


def create_file(path: Path) -> int:
    """Create ``path`` (it must not exist) and return a descriptor open for appending."""
    return os.open(path, _NEW_FILE_FLAGS, FILE_MODE)


def open_file(path: Path) -> int:
    """Open an existing store file for reading and appending, refusing a symlink."""
    return os.open(path, _OPEN_FLAGS)


def sync_directory(path: Path) -> None:
    """fsync a directory, so that files created or removed in it survive a power loss.

    Without it a new segment's name may vanish after a crash even though its data was synced
    (the most common crash bug the OSDI'14 ALICE study found in LevelDB, SQLite and others).
    """
    if not CAN_SYNC_DIRECTORY:
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write every byte of ``data``; ``os.write`` may write less than asked."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def directory_bytes(path: Path) -> int:
    """The total size of every file below ``path``: what ``max_size`` bounds."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # removed while we walked
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def make_reader(fd: int) -> Callable[[int, int], bytes]:
    """Return ``read(offset, length)`` for ``fd``, safe to call from any thread.

    ``os.pread`` leaves the file position alone, so concurrent reads need no lock. Where it is
    missing, a lock makes the seek and the read one step.
    """
    if HAVE_PREAD:
        pread = os.pread

        def read(offset: int, length: int) -> bytes:
            return pread(fd, length, offset)

        return read

    lock = threading.Lock()

    def read_portable(offset: int, length: int) -> bytes:
        with lock:
            os.lseek(fd, offset, os.SEEK_SET)
            chunks = []
            while length:
                chunk = os.read(fd, length)
                if not chunk:
                    break
                chunks.append(chunk)
                length -= len(chunk)
            return b"".join(chunks)

    return read_portable

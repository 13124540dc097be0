"""Operating-system file primitives, with the platform differences kept in one place."""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import stat
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

from aiokv._bitcask.format.names import TMP_SUFFIX
from aiokv._core import osfiles

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
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
FILE_MODE = 0o600
DIR_MODE = 0o700

HAVE_PREAD = hasattr(os, "pread")
"""Whether reads use ``os.pread``. Windows has none; tests force the fallback by clearing this."""

MAP_WHOLE_FILES = sys.platform != "win32"
"""Whether :meth:`FileSystem.map_file` maps a file rather than reading it. Windows cannot
remove or replace a file while it is mapped, and the open removes a hint it refuses; tests
force the fallback by clearing this."""

# Where the platform has it, a whole-file map is filled in by one call instead of a page
# fault per few pages as it is first read.
_MAP_FLAGS = getattr(mmap, "MAP_SHARED", 0) | getattr(mmap, "MAP_POPULATE", 0)


class NotRegularFileError(OSError):
    """A store file's name holds something else: a FIFO, a device, a directory, or a file far
    larger than any the store writes there."""


def _check_regular(fd: int, path: Path) -> None:
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        raise NotRegularFileError(errno.EINVAL, "not a regular file", str(path))


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | _NONBLOCK | _CLOEXEC


def _open_regular(path: Path, flags: int = _READ_FLAGS) -> int:
    # Looked at before it is opened, so that a FIFO is never opened at all (even without
    # blocking, that would make a reader appear on it); checked again once open, since the
    # name could have changed in between.
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise NotRegularFileError(errno.EINVAL, "not a regular file", str(path))
    fd = os.open(path, flags)
    try:
        _check_regular(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


_KILL_SPEC = os.environ.get("AIOKV_KILL_POINT", "")
KILL_POINTS: Final = bool(_KILL_SPEC)
"""Whether a kill point is armed. Call sites test this first, so that an unarmed point costs one
global lookup; see :func:`kill_point`."""
KILL_EXIT_CODE: Final = 77
_kill_name, _, _kill_count = _KILL_SPEC.partition(":")
_kill_left = int(_kill_count or 1) if KILL_POINTS else 0
_kill_lock = threading.Lock()


def kill_point(name: str) -> None:
    """End the process on the spot, as a crash would, at the n-th pass through ``name``.

    Armed by the environment variable ``AIOKV_KILL_POINT=name`` or ``name:n`` (for crash tests
    run in a child process); ``os._exit`` skips every ``finally``, flush and ``atexit``
    handler, like a power cut or SIGKILL would, but at a chosen step. Points are named
    ``area.step``: ``write.*``, ``roll.*``, ``compact.*``, ``close.*``.
    """
    global _kill_left
    if name != _kill_name:
        return
    with _kill_lock:
        _kill_left -= 1
        if _kill_left:
            return
    os.write(2, f"aiokv: kill point {name}\n".encode())
    os._exit(KILL_EXIT_CODE)


class FileSystem:
    """Every operation the store makes on its files, and nothing else.

    One narrow layer, so that tests can wrap it (``system.files.fs``) to inject faults
    (EIO, ENOSPC, short writes) and to record the order of operations for crash simulation.
    Beyond this seam, the only test-only branches in the product are the kill points above
    (each one ``if KILL_POINTS`` test while unarmed). Everything calls through the module
    attribute ``fs`` at the time of the call, so a replacement takes effect at once.
    """

    def create(self, path: Path) -> int:
        """Create ``path`` (it must not exist) and return a descriptor open for appending."""
        return os.open(path, _NEW_FILE_FLAGS, FILE_MODE)

    def open(self, path: Path) -> int:
        """Open an existing store file for reading and appending, refusing a symlink and
        anything but a regular file."""
        return _open_regular(path, _OPEN_FLAGS)

    def write(self, fd: int, data: bytes | bytearray | memoryview) -> int:
        """One ``write`` call; it may write less than asked."""
        return os.write(fd, data)

    def pread(self, fd: int, length: int, offset: int) -> bytes:
        return os.pread(fd, length, offset)

    def read_head(self, path: Path, length: int) -> bytes:
        """Up to ``length`` bytes from the start of ``path``; see :meth:`read_file`."""
        fd = _open_regular(path)
        try:
            return os.read(fd, length)
        finally:
            os.close(fd)

    def read_file(self, path: Path, limit: int) -> bytes:
        """All of ``path``, which must be a regular file of at most ``limit`` bytes.

        Never through a symlink, and opened non-blocking: a FIFO planted at a store file's
        name would otherwise hang the open, and a link to ``/dev/zero`` never end.
        """
        fd = _open_regular(path)
        try:
            size = os.fstat(fd).st_size
            if size > limit:
                raise NotRegularFileError(errno.EFBIG, f"larger than {limit} bytes", str(path))
            # One read of the size fstat gave, and one more that finds the end: the result is
            # the only copy made (a hint can be tens of megabytes, read as a store opens).
            parts = [os.read(fd, size + 1)]
            read = len(parts[0])
            while read <= limit and (chunk := os.read(fd, 1 << 16)):
                parts.append(chunk)
                read += len(chunk)
            if read > limit:
                raise NotRegularFileError(errno.EFBIG, "grew while read", str(path))
            return parts[0] if len(parts) == 1 else b"".join(parts)
        finally:
            os.close(fd)

    def map_file(self, path: Path, limit: int) -> mmap.mmap | bytes:
        """All of ``path``, as :meth:`read_file` gives it, but mapped read-only (where
        :data:`MAP_WHOLE_FILES`): its pages are then the page cache's own, not a copy in the
        process's memory, and nothing is copied (a hint of a million keys is 60 MB, read
        as a store opens). The map lasts while anything refers to it; the store never
        rewrites a file in place (a new one is renamed over it), so its bytes cannot change.
        (A file cut short under the store by another program would fault the process, as a
        mapped segment would.)
        """
        if not MAP_WHOLE_FILES:
            return self.read_file(path, limit)
        fd = _open_regular(path)
        try:
            size = os.fstat(fd).st_size
            if size > limit:
                raise NotRegularFileError(errno.EFBIG, f"larger than {limit} bytes", str(path))
            if not size:
                return b""  # an empty file cannot be mapped
            if _MAP_FLAGS:
                return mmap.mmap(fd, size, flags=_MAP_FLAGS, prot=mmap.PROT_READ)
            return mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)

    def map(self, fd: int, length: int) -> mmap.mmap:
        """A read-only memory map of the first ``length`` bytes of ``fd``."""
        return mmap.mmap(fd, length, access=mmap.ACCESS_READ)

    def size(self, fd: int) -> int:
        return os.fstat(fd).st_size

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def truncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def close(self, fd: int) -> None:
        os.close(fd)

    def replace(self, source: Path, target: Path) -> None:
        os.replace(source, target)

    def unlink(self, path: Path) -> None:
        os.unlink(path)

    def link(self, source: Path, target: Path) -> None:
        """A hard link (a backup's copy of a sealed segment on the same file system)."""
        os.link(source, target, follow_symlinks=False)

    def listdir(self, path: Path) -> list[str]:
        return os.listdir(path)

    def sync_directory(self, path: Path) -> None:
        """fsync a directory (see :func:`aiokv._core.osfiles.sync_directory`): a new
        segment's name must survive a power loss as its data does."""
        osfiles.sync_directory(path)


fs = FileSystem()
"""The file system the store uses; tests replace it with a wrapper."""


def create_file(path: Path) -> int:
    """Create ``path`` (it must not exist) and return a descriptor open for appending."""
    return fs.create(path)


def open_file(path: Path) -> int:
    """Open an existing store file for reading and appending, refusing a symlink."""
    return fs.open(path)


def sync_directory(path: Path) -> None:
    """fsync the directory ``path`` (see :meth:`FileSystem.sync_directory`)."""
    fs.sync_directory(path)


def unlink(path: Path, *, missing_ok: bool = False) -> None:
    try:
        fs.unlink(path)
    except FileNotFoundError:
        if not missing_ok:
            raise


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write every byte of ``data``; ``os.write`` may write less than asked."""
    view = memoryview(data)
    while view:
        written = fs.write(fd, view)
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
        # Bound once, as the builtin itself unless a test has wrapped the seam: this is every
        # read's path, and a method call would add a Python frame to each.
        pread = os.pread if type(fs) is FileSystem else fs.pread

        def read(offset: int, length: int) -> bytes:
            return pread(fd, length, offset)

        return read

    lock = threading.Lock()

    def read_portable(offset: int, length: int) -> bytes:
        with lock:
            os.lseek(fd, offset, os.SEEK_SET)  # outside the seam: the fallback is tested as such
            chunks = []
            while length:
                chunk = os.read(fd, length)
                if not chunk:
                    break
                chunks.append(chunk)
                length -= len(chunk)
            return b"".join(chunks)

    return read_portable


def write_whole(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: under a temporary name, fsynced, then renamed over
    any older file of that name (a hint, say). The caller fsyncs the directory to make the new
    name durable."""
    temporary = path.with_name(path.name + TMP_SUFFIX)
    fd = create_file(temporary)
    try:
        write_all(fd, data)
        fs.fsync(fd)  # complete on disk before it has the name a reader trusts
    except BaseException:
        fs.close(fd)
        unlink(temporary, missing_ok=True)
        raise
    fs.close(fd)
    fs.replace(temporary, path)

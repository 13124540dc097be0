"""One data file of the store: create, append, read at an offset, map, cut off a torn tail.

Synchronous on purpose: the engine decides which thread calls these. Reads slice the file's
memory map where it covers them (no system call, so cheap enough for the event loop) and use
``pread`` past it.
"""

from __future__ import annotations

import mmap
import threading
from collections.abc import Iterable
from pathlib import Path

from aiokv._bitcask.format.names import TMP_SUFFIX, segment_name
from aiokv._bitcask.format.record import (
    FILE_HEADER_SIZE,
    FILE_LOG,
    FILE_VERSION,
    decode_file_header,
    encode_file_header,
    file_version,
)
from aiokv._bitcask.system import files as _files


class Segment:
    """An open segment file. ``size`` is its logical end: the offset the next append lands at.

    ``kind``, ``created_seq``, ``source`` and ``version`` come from the file header (see
    :mod:`format.record`); only a file of version 2 may hold batch records.
    """

    __slots__ = (
        "created_seq",
        "fd",
        "id",
        "kind",
        "mapped",
        "mapped_size",
        "path",
        "pread",
        "read",
        "size",
        "source",
        "version",
    )

    def __init__(
        self,
        segment_id: int,
        path: Path,
        fd: int,
        size: int,
        kind: int,
        created_seq: int,
        source: int,
    ) -> None:
        self.id = segment_id
        self.path = path
        self.fd = fd
        self.size = size
        self.kind = kind
        self.created_seq = created_seq
        self.source = source
        self.version = FILE_VERSION
        self.pread = self.read = _files.make_reader(fd)
        # The newest map, for readers in other threads (see AsyncDataStore.read_threadsafe).
        # Never closed explicitly: a reader may hold it, and it is unmapped when the last
        # reference goes. A closed descriptor does not affect a map made from it.
        self.mapped: mmap.mmap | None = None
        self.mapped_size = FILE_HEADER_SIZE  # the bytes read through the map

    def map(self) -> None:
        """Read the first ``size`` bytes through a memory map from now on.

        Written bytes never change (the file is only appended to, and cut back only past
        what was written successfully), so they can be mapped; a read is then a slice of the
        map: no system call, and no release of the GIL that hands it to another thread in the
        middle of a read (readers in several threads convoy on that). The segment being
        appended to is mapped again as it grows (:attr:`mapped_size`); a read past the map
        uses ``pread``. An earlier map is unmapped when its last reader drops it.
        Where mapping fails (address space, an unusual file system), ``pread`` goes on.
        """
        size = self.size
        if size <= self.mapped_size:
            return
        try:
            mapped = _files.fs.map(self.fd, size)
        except (OSError, ValueError):
            return
        pread = self.pread

        def read(offset: int, length: int) -> bytes:
            end = offset + length
            if end <= size:
                return mapped[offset:end]
            return pread(offset, length)

        self.mapped = mapped
        self.mapped_size = size
        self.read = read

    @classmethod
    def create(
        cls,
        directory: Path,
        segment_id: int,
        created_seq: int,
        kind: int = FILE_LOG,
        source: int = 0,
    ) -> Segment:
        """Create a segment holding only its file header, synced to disk.

        A log segment is created under its final name; the caller must fsync the directory
        before any record in it is acknowledged. A compacted one is created under a
        temporary name, to be renamed into place with :meth:`publish` once complete.
        """
        path = directory / segment_name(segment_id)
        if kind != FILE_LOG:
            path = path.with_name(path.name + TMP_SUFFIX)
        fd = _files.create_file(path)
        try:
            _files.write_all(fd, encode_file_header(kind, created_seq, source))
            # The header is synced now so that after a crash a file longer than its header
            # always has a valid one: a bad header then means corruption, not a torn create.
            _files.fs.fsync(fd)
        except BaseException:
            # The file is ours (O_EXCL made it); leave no half-made segment behind.
            _files.fs.close(fd)
            _files.unlink(path, missing_ok=True)
            raise
        return cls(segment_id, path, fd, FILE_HEADER_SIZE, kind, created_seq, source)

    @classmethod
    def open(cls, directory: Path, segment_id: int) -> Segment:
        """Open an existing segment and check its file header (:class:`BadRecord` if bad)."""
        path = directory / segment_name(segment_id)
        fd = _files.open_file(path)
        try:
            size = _files.fs.size(fd)
            head = _files.make_reader(fd)(0, FILE_HEADER_SIZE)
            header = decode_file_header(head)
        except BaseException:
            _files.fs.close(fd)
            raise
        segment = cls(segment_id, path, fd, size, header.kind, header.created_seq, header.source)
        segment.version = file_version(head)
        return segment

    def publish(self) -> None:
        """Rename a complete compacted segment from its temporary name to its final one.

        The caller must have synced the file, and must fsync the directory afterwards.
        """
        final = self.path.with_name(segment_name(self.id))
        _files.fs.replace(self.path, final)
        self.path = final

    def append(self, data: bytes | bytearray | memoryview) -> None:
        _files.write_all(self.fd, data)
        self.size += len(data)

    def truncate(self, size: int) -> None:
        _files.fs.truncate(self.fd, size)
        self.size = size

    def sync(self) -> None:
        _files.fs.fsync(self.fd)

    def read_all(self) -> bytes:
        # pread even when mapped: it lets go of the GIL while it copies megabytes.
        return self.pread(0, _files.fs.size(self.fd))

    def close(self) -> None:
        # The map is let go, not closed: a reader in another thread may be slicing it now,
        # and it stays valid until that reader drops it (a POSIX file can be removed while
        # mapped; its blocks are freed once the last map of it goes).
        self.mapped = None
        self.read = self.pread
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            _files.fs.close(fd)


class ReadGate:
    """Lets threads other than the store's read segment files while the store closes them.

    A reader counts itself in (under ``cond``, together with its lookup of the segment) before
    its ``pread`` and out after; :meth:`close` waits until no reader is counted in. A
    descriptor closed under a reader could be reused by the next file opened, and the read
    would see that file's bytes. The lock is held for the lookup and the counting only, not
    across the ``pread``, so readers in several threads do not queue behind each other's I/O.
    """

    __slots__ = ("cond", "readers")

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.readers = 0

    def leave(self) -> None:
        with self.cond:
            self.readers -= 1
            if not self.readers:
                self.cond.notify_all()

    def close(self, segments: Iterable[Segment]) -> None:
        """Close ``segments`` once no reader is inside a read (they must no longer be where
        readers look them up)."""
        with self.cond:
            while self.readers:
                self.cond.wait()
            for segment in segments:
                segment.close()

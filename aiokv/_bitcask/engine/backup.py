"""Backups: a copy of a running store, taken without stopping it, that opens as a store.

The copy holds exactly what was written when the backup began: under the batch lock (which
the writer holds from planning a batch to indexing it, so no batch is half-written then) it
takes the list of segments and the active segment's size, and takes hold of every sealed
segment and hint, hard-linking it into the destination (on the same file system: sealed
files never change) or opening it (elsewhere: an open file outlives compaction's removal of
its name). That is a few system calls per file; the copying is done afterwards, in a worker
thread, while reads and writes go on. The active segment is copied up to the size it had:
records are only appended after it.

A crash mid-backup must not leave a partial store that opens. The destination gets a marker
file (:data:`~aiokv._bitcask.format.names.BACKUP_MARKER`) first, synced, and loses it last,
once every file is written and synced; a store directory holding the marker refuses to open.
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

from aiokv import errors
from aiokv._bitcask.engine.space import Shared
from aiokv._bitcask.format.names import BACKUP_MARKER, hint_name
from aiokv._bitcask.system import files as _files
from aiokv._bitcask.system import threads as _threads
from aiokv.errors import StorePathError

COPY_CHUNK_BYTES = 1 << 20
"""How much of a file one read and one write of a copy move."""

# A link that fails for these reasons means "not here", not "broken": the files are copied.
_CANNOT_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


@dataclass
class _Held:
    """What a backup took hold of under the batch lock, and what it must still copy."""

    to_copy: list[tuple[int, str, int]] = field(default_factory=list)  # (fd, name, length)
    made: list[Path] = field(default_factory=list)  # every file made in the destination

    def close(self) -> None:
        for fd, _name, _length in self.to_copy:
            with contextlib.suppress(OSError):
                _files.fs.close(fd)
        self.to_copy.clear()


async def backup(shared: Shared, dest: Path) -> None:
    """Copy the store to ``dest`` (absent, or an empty directory), as of now.

    :raises StorePathError: ``dest`` is not absent or an empty directory, or lies inside the
        store; nothing there is touched.
    :raises StoreFullError, StoreIOError: the copy failed (a full disk, say); what it had
        made in ``dest`` is removed.
    """
    created = await _threads.run(_prepare, shared.directory, dest)
    held = _Held()
    try:
        with errors.map_os_errors(f"backing up to {dest} (nothing was left there)"):
            async with shared.batch_lock:
                await _threads.run(_hold, shared, dest, held)
            if _files.KILL_POINTS:
                _files.kill_point("backup.held")
            await _threads.run(_finish, dest, held)
    except BaseException:
        held.close()
        await _threads.run(_clean, dest, held, created)
        raise


def _prepare(source: Path, dest: Path) -> bool:
    """Check ``dest``, make it if absent (True if made), and mark it incomplete."""
    if dest == source or source in dest.parents:
        raise StorePathError(f"cannot back a store up into itself: {dest}")
    try:
        entries = os.listdir(dest)
    except FileNotFoundError:
        entries = None
    except NotADirectoryError:
        raise StorePathError(f"{dest} exists and is not a directory") from None
    except OSError as exc:
        raise StorePathError(f"cannot use {dest}: {exc.strerror or exc}") from exc
    if entries and BACKUP_MARKER in entries:
        raise errors.incomplete_backup(dest)  # an earlier backup there was cut off
    if entries:
        raise StorePathError(f"{dest} is not empty: a backup goes to a new or empty directory")
    try:
        if entries is None:
            os.makedirs(dest, mode=_files.DIR_MODE)
        _files.fs.close(_files.create_file(dest / BACKUP_MARKER))
        _files.sync_directory(dest)
        _files.sync_directory(dest.parent)
    except OSError as exc:
        if errors.is_disk_full(exc):
            raise errors.disk_full(f"backing up to {dest}", exc) from exc
        raise StorePathError(f"cannot make the backup {dest}: {exc.strerror or exc}") from exc
    return entries is None


def _hold(shared: Shared, dest: Path, held: _Held) -> None:
    """Under the batch lock: link or open every sealed file, note the active one's size."""
    active = shared.active
    for segment in sorted(shared.segments.values(), key=lambda s: s.id):
        if segment is active:
            held.to_copy.append((_files.fs.open(segment.path), segment.path.name, active.size))
            continue
        _take(segment.path, dest, held, segment.size)
        _take(shared.directory / hint_name(segment.id), dest, held, None)


def _take(path: Path, dest: Path, held: _Held, length: int | None) -> None:
    """Hard-link ``path`` into ``dest``, or hold it open to copy; a hint that is not there
    (lost, or never written) is left to the copy's open to rebuild."""
    target = dest / path.name
    try:
        _files.fs.link(path, target)
        held.made.append(target)
        return
    except FileNotFoundError:
        if length is None:
            return  # a hint: optional
        raise
    except OSError as exc:
        if exc.errno not in _CANNOT_LINK:
            raise
    try:
        fd = _files.fs.open(path)
    except FileNotFoundError:
        if length is None:
            return
        raise
    held.to_copy.append((fd, path.name, length if length is not None else _files.fs.size(fd)))


def _finish(dest: Path, held: _Held) -> None:
    """Copy what was not linked, sync it all, then take the marker away."""
    for fd, name, length in held.to_copy:
        target = dest / name
        out = _files.create_file(target)
        held.made.append(target)
        try:
            _copy(fd, out, length)
            _files.fs.fsync(out)
        finally:
            _files.fs.close(out)
    held.close()
    for path in held.made:
        if path.name.endswith(".data") or path.name.endswith(".hint"):
            _sync_file(path)  # a link's data was synced by the store; its inode now is too
    _files.sync_directory(dest)
    if _files.KILL_POINTS:
        _files.kill_point("backup.copied")
    _files.unlink(dest / BACKUP_MARKER)
    _files.sync_directory(dest)


def _copy(source: int, target: int, length: int) -> None:
    offset = 0
    while offset < length:
        chunk = _files.fs.pread(source, min(COPY_CHUNK_BYTES, length - offset), offset)
        if not chunk:
            raise OSError(errno.EIO, "the file ended before the size the store had written")
        _files.write_all(target, chunk)
        offset += len(chunk)


def _sync_file(path: Path) -> None:
    fd = _files.open_file(path)
    try:
        _files.fs.fsync(fd)
    finally:
        _files.fs.close(fd)


def _clean(dest: Path, held: _Held, created: bool) -> None:
    """Remove what a failed backup made (the marker last), and ``dest`` if it made it."""
    for path in held.made:
        with contextlib.suppress(OSError):
            _files.unlink(path, missing_ok=True)
    with contextlib.suppress(OSError):
        _files.unlink(dest / BACKUP_MARKER, missing_ok=True)
    if created:
        with contextlib.suppress(OSError):
            dest.rmdir()  # empty again, unless something else was put there meanwhile

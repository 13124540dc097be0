"""The plain file-system calls of the backend-neutral parts, the same on every OS aiokv runs
on: an export's new file and the fsync of its directory. The local engine's own file system
(``aiokv._bitcask.system.files``), which its fault tests can fail, syncs a directory through
:func:`sync_directory` as well.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Final

CAN_SYNC_DIRECTORY: Final = sys.platform != "win32"
"""Windows cannot open a directory to fsync it; NTFS journals the metadata instead."""
_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
_PRIVATE_FILE_FLAGS: Final = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC | getattr(os, "O_BINARY", 0)
)


def create_private(path: Path) -> int:
    """Create ``path`` (it must not exist), readable by its user only; a descriptor to
    write."""
    return os.open(path, _PRIVATE_FILE_FLAGS, 0o600)


def sync_directory(path: Path) -> None:
    """fsync a directory, so that files created or removed in it survive a power loss.

    Without it a new file's name may vanish after a crash even though its data was synced
    (the most common crash bug the OSDI'14 ALICE study found in LevelDB, SQLite and others).
    """
    if not CAN_SYNC_DIRECTORY:
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

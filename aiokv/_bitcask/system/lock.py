"""The process lock: one open store per directory, across and within processes.

``filelock`` takes an OS lock (``flock`` on POSIX, ``LockFileEx`` on Windows) on the file
``LOCK`` in the store directory. The kernel ties a flock to the open file description, so a
second open of the same store is refused even inside the same process, and the lock is gone
the moment the holding process dies, whatever killed it: there is no stale lock to clean up.
"""

from __future__ import annotations

from pathlib import Path

import filelock

from aiokv._bitcask.format.names import LOCK_NAME
from aiokv.errors import StoreLockedError, StorePathError


class StoreLock:
    __slots__ = ("_lock", "path")

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_NAME
        # timeout=0: a held store is refused at once rather than waited for.
        # thread_local=False: the store may be closed from another thread than opened it.
        self._lock = filelock.FileLock(self.path, timeout=0, mode=0o600, thread_local=False)

    def acquire(self) -> None:
        try:
            self._lock.acquire()
        except filelock.Timeout:
            raise StoreLockedError(
                f"{self.path.parent} is already open (by this process or another); "
                "a store can be open once at a time"
            ) from None
        except OSError as exc:
            raise StorePathError(f"cannot lock {self.path}: {exc.strerror or exc}") from exc

    def release(self) -> None:
        # The lock file is left in place; removing it while another opener waits on the same
        # inode would let two processes each hold a lock on a different file.
        self._lock.release()

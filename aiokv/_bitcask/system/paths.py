"""Where a local store lives: its directory's path, checked and made."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import platformdirs

from aiokv._bitcask.system import files as _files
from aiokv._core.checks import check_path
from aiokv.errors import StorePathError

StrPath = str | os.PathLike[str]


def default_path() -> Path:
    """``<user data dir>/aiokv/default``; on Linux ``$XDG_DATA_HOME/aiokv/default``."""
    return platformdirs.user_data_path("aiokv", appauthor=False) / "default"


def resolve_path(path: StrPath | None) -> Path:
    """The absolute store directory, so a later ``chdir`` cannot move the store."""
    if path is None:
        return default_path().absolute()
    return check_path(path)


def prepare_directory(path: Path) -> None:
    """Make ``path`` (and its parents) a directory, or raise :class:`StorePathError`.

    Nothing is created when ``path`` exists and is not a directory.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        try:
            # Only the store directory itself gets 0700; parents get the usual umask mode.
            os.makedirs(path, mode=_files.DIR_MODE, exist_ok=True)
            # The new directory's name must survive a power loss like any file's.
            _files.sync_directory(path.parent)
        except OSError as exc:
            raise StorePathError(
                f"cannot create the store directory {path}: {exc.strerror or exc}"
            ) from exc
        return
    except OSError as exc:
        raise StorePathError(f"cannot use {path} as a store: {exc.strerror or exc}") from exc
    if not stat.S_ISDIR(mode):
        raise StorePathError(f"{path} exists and is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise StorePathError(f"the store directory {path} is not writable")

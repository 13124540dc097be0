"""A real small file system for the full-disk tests: a tmpfs mounted for one test.

Only root can mount one; elsewhere the tests that need it are skipped, saying why. The fault
injection seam (``system.files.fs``) covers ENOSPC everywhere; this is the real thing, where
the kernel decides which write fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def mounted_tmpfs(where: Path, size_bytes: int) -> Iterator[Path]:
    """A tmpfs of ``size_bytes`` mounted at ``where`` (made if missing) for the block.

    :raises pytest.skip.Exception: not root, or the mount was refused (a container without
        the capability, say).
    """
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs was refused: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def fill(directory: Path) -> None:
    """Fill the file system holding ``directory`` to its last byte with a ballast file."""
    ballast = directory / "ballast"
    try:
        file = ballast.open("ab", buffering=0)
    except OSError:
        return  # not even room for a new file: already full
    with file:
        chunk = b"\0" * 65536
        while True:
            try:
                file.write(chunk)
            except OSError:
                break
        while chunk := chunk[: len(chunk) // 2]:
            try:
                file.write(chunk)
            except OSError:
                continue

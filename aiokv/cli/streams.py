"""``-`` (stdin or stdout) and other streams where the store's file methods want a path.

``export_jsonl`` writes a new file and renames it over its target, and ``import_jsonl`` reads
its file twice (checked whole first, then written). Neither suits a pipe, a terminal or a
device: the data goes through a file in a private temporary directory instead, copied a chunk
at a time so that memory stays bounded, and removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from aiokv.cli.output import stdout_guard
from aiokv.cli.progress import Advance, no_progress

CHUNK = 2**20
"""Bytes copied at a time."""

STDIO = "-"


def is_stream(target: str) -> bool:
    """Whether ``target`` is ``-`` or an existing path that is not a regular file (a pipe
    such as ``<(...)`` gives, ``/dev/stdout``, a terminal): renaming over one of those would
    replace the device node, and a pipe cannot be read twice."""
    if target == STDIO:
        return True
    try:
        return not stat.S_ISREG(os.stat(target).st_mode)
    except OSError:
        return False  # missing (a new export) or unreadable: the store reports it by name


@contextlib.contextmanager
def staging_file(name: str) -> Iterator[Path]:
    """A path in a new directory only this user can enter (0700), removed with it."""
    with tempfile.TemporaryDirectory(prefix="aiokv-") as directory:
        yield Path(directory) / name


def copy_in(source: str, dest: Path) -> int:
    """Copy stdin (``source`` is ``-``) or the stream ``source`` into ``dest``; the bytes."""
    with open(dest, "wb") as file:
        if source == STDIO:
            return _drain(sys.stdin.buffer, file, no_progress)
        with open(source, "rb") as stream:
            return _drain(stream, file, no_progress)


def copy_out(source: Path, target: str, advance: Advance) -> int:
    """Copy ``source`` to stdout (``target`` is ``-``) or into the stream ``target``."""
    with open(source, "rb") as file:
        if target != STDIO:
            with open(target, "wb") as stream:
                return _drain(file, stream, advance)
        with stdout_guard():
            sys.stdout.flush()  # anything written as text goes first
            total = _drain(file, sys.stdout.buffer, advance)
            sys.stdout.buffer.flush()
        return total


def _drain(source: BinaryIO, dest: BinaryIO, advance: Advance) -> int:
    total = 0
    while chunk := source.read(CHUNK):
        dest.write(chunk)
        total += len(chunk)
        advance(len(chunk))
    return total

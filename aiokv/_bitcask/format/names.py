"""The names of a store's files: the directory's part of the on-disk format.

A store directory holds::

    NNNNNNNN.data        a segment: a file header, then records (see ``record``)
    NNNNNNNN.hint        that segment's hint (see ``hint``)
    NNNNNNNN.data.tmp    a compaction output or a hint being written; removed at open
    NNNNNNNN.hint.tmp
    LOCK                 the process lock
    BACKUP-INCOMPLETE    only in a backup being made: a store holding it does not open

Segment numbers are eight decimal digits, so names sort in the order segments were made.
"""

from __future__ import annotations

import re
from typing import Final

MAX_SEGMENT_ID: Final = 99_999_999
"""The largest segment number a name can carry."""

TMP_SUFFIX: Final = ".tmp"
"""A file is written under its name plus this suffix and renamed into place when complete."""

LOCK_NAME: Final = "LOCK"

BACKUP_MARKER: Final = "BACKUP-INCOMPLETE"
"""Made first in a backup's directory and removed last: a store holding it is a backup cut
off by a crash, which must not open as if whole."""

_SEGMENT = re.compile(r"^(\d{8})\.data$")
_HINT = re.compile(r"^(\d{8})\.hint$")


def segment_name(segment_id: int) -> str:
    """``00000042.data``."""
    return f"{segment_id:08d}.data"


def hint_name(segment_id: int) -> str:
    """``00000042.hint``."""
    return f"{segment_id:08d}.hint"


def parse_segment_name(name: str) -> int | None:
    match = _SEGMENT.match(name)
    return int(match.group(1)) if match else None


def parse_hint_name(name: str) -> int | None:
    match = _HINT.match(name)
    return int(match.group(1)) if match else None

"""Looking at a store directory from the outside, independently of the code under test."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def dir_bytes(path: Path) -> int:
    """The total size of every file below ``path``: what ``max_size`` bounds."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            # Background compaction may remove a file between the listing and the stat.
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total

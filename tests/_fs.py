"""Looking at a store directory from the outside, independently of the code under test."""

from __future__ import annotations

import os
from pathlib import Path


def dir_bytes(path: Path) -> int:
    """The total size of every file below ``path``: what ``max_size`` bounds."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(root, name)).st_size
    return total

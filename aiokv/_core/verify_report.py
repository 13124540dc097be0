"""``VerifyReport``: what ``verify()`` read and what it found wrong."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing ``verify()`` found wrong.

    :param file: the file it lies in (a data file, or a data file's hint).
    :param offset: where in ``file``: the first byte of a damaged record, 0 for a file's
        header or for a hint as a whole, and for a hint entry the position of its offset
        field (the column an entry is found by).
    :param what: what is wrong, in words.
    """

    file: Path
    offset: int
    what: str

    def __str__(self) -> str:
        return f"{self.file}: offset {self.offset}: {self.what}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What ``verify()`` checked, and every problem it found (it raises none of them).

    :param files: files read whole, data files and hints (a file that compaction removed
        while it was being read is left out).
    :param records: records read from the data files and checked.
    :param bytes_checked: bytes of those files read and checked.
    :param problems: what is wrong, in the order found: each file's in file order, then the
        index's.
    """

    files: int
    records: int
    bytes_checked: int
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether nothing was found wrong."""
        return not self.problems

"""Progress on stderr while long work runs, and the one-line summary when it ends.

stdout carries data only, so both go to stderr; the bar only when stderr is a terminal (in a
log file it would be noise), the summary always.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

from aiokv.cli.output import say

Advance = Callable[[int], None]
"""Tells the bar that ``n`` more units are done."""


@contextlib.contextmanager
def progress(
    description: str, total: int | None = None, *, counting: bool = False, beside: bool = False
) -> Iterator[Advance]:
    """A bar (``total`` known) or a pulse (``total`` None, with the count so far if
    ``counting``) and the time elapsed, on stderr; removed when the block ends, so that only
    the summary stays.

    :param beside: the block writes to stdout meanwhile: no bar if stdout is the terminal too,
        where the data scrolling past would tear the bar up.
    """
    if not shows_progress(beside=beside):
        yield no_progress
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn())
    counted = (TextColumn("{task.completed:,.0f}"),) if counting and total is None else ()
    with Progress(
        *columns, *counted, TimeElapsedColumn(), console=Console(stderr=True), transient=True
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def shows_progress(*, beside: bool = False) -> bool:
    """Whether :func:`progress` draws: stderr is a terminal (and, ``beside`` stdout, stdout is
    not one); a command need not count what no bar will show."""
    return sys.stderr is not None and sys.stderr.isatty() and not (beside and sys.stdout.isatty())


def no_progress(n: int) -> None:
    """An :data:`Advance` that draws nothing."""


class Stopwatch:
    """Seconds since it was made, for the summary."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    def seconds(self) -> str:
        return f"{time.perf_counter() - self._start:.2f} s"


def summary(line: str) -> None:
    """The one line that ends long work, on stderr."""
    say(f"aiokv: {line}")


def size(n: int) -> str:
    """``n`` bytes for a person: ``512 B``, ``1.9 KiB``, ``3.0 MiB``."""
    amount = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def count(n: int, noun: str) -> str:
    """``1 key``, ``2 keys``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"

"""What goes to stdout: data only, as JSON for machines or plainly for people; and the
lines for people, which go to stderr.

Every write to stdout goes through :func:`stdout_guard`, so that a reader that goes away early
(``aiokv keys | head -1``) ends the command quietly instead of with a ``BrokenPipeError``.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from aiokv.cli.exits import StdoutClosed


@contextlib.contextmanager
def stdout_guard() -> Iterator[None]:
    """Turn a closed stdout into :class:`StdoutClosed`; flush at the end, inside the guard,
    so that the interpreter's own flush at exit has nothing left to fail on."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError as exc:
        raise StdoutClosed from exc


def say(line: str) -> None:
    """``line`` on stderr, if it can be written: a command started with stderr closed
    still does its work and sets its status (and ``print`` must not fall back to stdout)."""
    if sys.stderr is None:
        return
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr, flush=True)


def dumps(value: Any, *, pretty: bool) -> str:
    """``value`` as JSON: indented for a person, compact for a program; UTF-8 kept as is."""
    if pretty:
        return json.dumps(value, ensure_ascii=False, indent=2)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def print_json(value: Any, *, pretty: bool) -> None:
    with stdout_guard():
        sys.stdout.write(dumps(value, pretty=pretty) + "\n")


def print_lines(lines: Iterable[str]) -> int:
    """Each of ``lines`` on a line of its own; returns how many."""
    count = 0
    with stdout_guard():
        for line in lines:
            sys.stdout.write(line + "\n")
            count += 1
    return count


def print_json_array(items: Iterable[str]) -> int:
    """A JSON array of ``items``, written as they come (never the whole list in memory);
    returns how many."""
    count = 0
    with stdout_guard():
        sys.stdout.write("[")
        for count, item in enumerate(items, 1):
            sys.stdout.write(("," if count > 1 else "") + dumps(item, pretty=False))
        sys.stdout.write("]\n")
    return count

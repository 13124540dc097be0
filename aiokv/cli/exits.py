"""The command's exit statuses, and the one table that maps every error to its status.

A script tells what went wrong from the status alone; the person at the terminal reads the one
line on stderr. Checked in order, so a subclass must come before its base.
"""

from __future__ import annotations

from typing import Final

from aiokv.errors import (
    BlockingCallError,
    CorruptionError,
    DataStoreError,
    ImportFileError,
    InvalidKeyError,
    InvalidOptionError,
    InvalidTTLError,
    InvalidValueError,
    KeyExistsError,
    KeyNotFoundError,
    NotSupportedError,
    StoreClosedError,
    StoreFullError,
    StoreIOError,
    StoreLockedError,
    StorePathError,
    StoreUnavailableError,
)

OK: Final = 0
FAILED: Final = 1
"""Not found, already exists, or invalid input (a bad value, key, TTL, file or target)."""
USAGE: Final = 2
LOCKED: Final = 3
CORRUPT: Final = 4
"""A damaged record met on the way, or problems found by ``verify``."""
NO_ROOM_OR_IO: Final = 5
INTERNAL: Final = 70
"""A bug in aiokv (``EX_SOFTWARE`` of sysexits.h): the message says so and asks for a report."""
INTERRUPTED: Final = 130
"""Ctrl-C, as the shell reports a command killed by SIGINT."""
STDOUT_CLOSED: Final = 141
"""The reader of stdout went away (``aiokv keys | head -1``), as the shell reports SIGPIPE."""


class InputError(Exception):
    """Input the command itself refuses before the store sees it (a value that is not JSON)."""


class UsageProblem(Exception):
    """Options that do not go together, beyond what the argument parser checks."""


class ServerNotStarted(OSError):
    """``serve`` could not listen on its address (the server's log above says why)."""


class StdoutClosed(Exception):
    """stdout was closed by its reader; not an ``OSError``, so that it is never reported."""


EXIT_CODES: Final[tuple[tuple[type[BaseException], int], ...]] = (
    (KeyNotFoundError, FAILED),
    (KeyExistsError, FAILED),
    (InvalidKeyError, FAILED),
    (InvalidValueError, FAILED),  # ValueTooLargeError too
    (InvalidTTLError, FAILED),
    (InvalidOptionError, FAILED),
    (ImportFileError, FAILED),
    # A path the user named that cannot be a store or a backup (a file, a non-empty target).
    (StorePathError, FAILED),
    (InputError, FAILED),
    (UsageProblem, USAGE),
    # A command the store's backend has not (verify or backup of a Redis store).
    (NotSupportedError, USAGE),
    (StoreLockedError, LOCKED),
    (CorruptionError, CORRUPT),
    (StoreFullError, NO_ROOM_OR_IO),
    (StoreIOError, NO_ROOM_OR_IO),
    (StoreUnavailableError, NO_ROOM_OR_IO),  # the Redis server of --url cannot be reached
    (OSError, NO_ROOM_OR_IO),
    # Neither can happen to a store the command opens and closes itself: if one does, it is
    # aiokv's fault, not the user's input.
    (StoreClosedError, INTERNAL),
    (BlockingCallError, INTERNAL),
    (DataStoreError, NO_ROOM_OR_IO),
)


def exit_code_for(exc: BaseException) -> int:
    """The status for ``exc``: the first row of :data:`EXIT_CODES` it is an instance of."""
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            return code
    return INTERNAL


def describe(exc: BaseException) -> str:
    """``exc`` as the one line printed for it (without the ``aiokv:`` in front)."""
    code = exit_code_for(exc)
    text = " ".join(str(exc).split())  # one line, whatever the message held
    if isinstance(exc, OSError) and not isinstance(exc, DataStoreError):
        where = f"{exc.filename}: " if exc.filename is not None else ""
        text = f"{where}{exc.strerror or text}"
    if code == INTERNAL:
        return f"internal error, please report it: {type(exc).__name__}: {text}"
    return text or type(exc).__name__


HELP_TABLE: Final = (
    "Exit status: 0 ok; 1 not found, already exists or invalid input; 2 usage (or a command "
    "the store has not); "
    "3 store locked by another process; 4 damaged data (also problems found by verify); "
    "5 store or disk full, an I/O error, or the Redis server unreachable; 130 interrupted; "
    "141 stdout closed early."
)
"""The statuses in a sentence for ``aiokv --help`` (the README has them as a table)."""

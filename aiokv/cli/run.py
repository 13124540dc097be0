"""Running the command: every way it can end becomes an exit status and at most one line.

The parser runs outside its standalone mode, so that its errors, the store's and the
system's all arrive here, to be reported the same way: one line on stderr, never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer
import typer.main

from aiokv.cli.app import app
from aiokv.cli.exits import (
    INTERRUPTED,
    OK,
    STDOUT_CLOSED,
    USAGE,
    StdoutClosed,
    describe,
    exit_code_for,
)
from aiokv.cli.output import say

# The parser's UsageError, reached through a public name: older typers use click's, newer
# ones a copy of click of their own, and BadParameter is exported by both.
_UsageError: type[Exception] = typer.BadParameter.__mro__[1]


def run(args: Sequence[str] | None = None) -> int:
    """Run ``aiokv`` with ``args`` (``sys.argv[1:]`` by default); the exit status."""
    command = typer.main.get_command(app)
    try:
        status = command.main(args=args, prog_name="aiokv", standalone_mode=False)
    except KeyboardInterrupt:
        return INTERRUPTED
    except StdoutClosed:
        _silence_stdout()
        return STDOUT_CLOSED
    except _UsageError as exc:
        return _usage(exc)
    except Exception as exc:
        _say(describe(exc))
        return exit_code_for(exc)
    # A command that returns normally gives None; typer.Exit and --help give their status.
    return status if isinstance(status, int) else OK


def _usage(exc: Exception) -> int:
    context = getattr(exc, "ctx", None)
    where = getattr(context, "command_path", None) or "aiokv"
    message = " ".join(str(getattr(exc, "format_message", lambda: exc)()).split())
    # Empty when no command was given: the parser has printed the help instead.
    if message:
        _say(f"{message} (see '{where} --help')", prefix=f"{where}: ")
    return USAGE


def _say(line: str, prefix: str = "aiokv: ") -> None:
    say(prefix + line)


def _silence_stdout() -> None:
    # What is left in the buffer would fail again when the interpreter flushes it at exit.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)

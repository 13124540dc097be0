"""Running the installed ``aiokv`` command, as a user runs it.

The command runs as a subprocess, as a user runs it: its stdout is a pipe (so it prints JSON
unless told ``--human``), and every run is checked to have printed no traceback.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence

# The console script beside the interpreter running the tests (not another install's on
# PATH), else whatever PATH finds, else the module.
_SCRIPT = shutil.which("aiokv", path=os.path.dirname(sys.executable)) or shutil.which("aiokv")
COMMAND: list[str] = [_SCRIPT] if _SCRIPT else [sys.executable, "-m", "aiokv"]
TIMEOUT_S = 60


@dataclasses.dataclass(frozen=True)
class Ran:
    """What a run of the command left: its status and its two streams, as text."""

    status: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        """stderr's lines."""
        return self.stderr.splitlines()


def no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr


def run(*args: str | os.PathLike[str], stdin: str | bytes = b"") -> Ran:
    """Run ``aiokv *args`` to its end, with ``stdin`` as its input."""
    data = stdin.encode() if isinstance(stdin, str) else stdin
    done = subprocess.run(
        [*COMMAND, *map(os.fspath, args)], input=data, capture_output=True, timeout=TIMEOUT_S
    )
    ran = Ran(done.returncode, done.stdout.decode(), done.stderr.decode())
    no_traceback(ran.stderr)
    return ran


Aiokv = Callable[..., Ran]
"""The ``aiokv`` fixture: ``aiokv --path <store> *args``."""


def popen(args: Sequence[str | os.PathLike[str]], **kwargs: object) -> subprocess.Popen[bytes]:
    """``aiokv *args`` started, for pipes and signals."""
    return subprocess.Popen([*COMMAND, *map(os.fspath, args)], **kwargs)  # type: ignore[call-overload]

"""Run a store in a child process: write a script, start it, read its lines, kill it.

A child reports progress by printing one line per event to stdout (flushed), so the parent knows
exactly what the child had been told was done when it is killed.
"""

from __future__ import annotations

import ctypes
import os
import selectors
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import TracebackType

PYTHON = sys.executable
LOOPBACK = "127.0.0.1"
PR_SET_PDEATHSIG = 1


def loopback_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now (the OS's pick); another process may
    still take it before the caller binds it."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def die_with_parent(parent: int, signum: signal.Signals) -> None:
    """In a child, before it runs (``preexec_fn``): be sent ``signum`` when the test process
    ends, also when it is killed, so that no server outlives an interrupted run (Linux's
    PR_SET_PDEATHSIG). A parent already gone before the call is caught too."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum)
    if os.getppid() != parent:
        os._exit(1)


class Child:
    """A running child process whose stdout is read line by line with a deadline."""

    def __init__(self, script: str, args: list[str], workdir: Path, name: str) -> None:
        self.script_path = workdir / f"{name}.py"
        self.script_path.write_text(textwrap.dedent(script), encoding="utf-8")
        self.stderr_path = workdir / f"{name}.stderr"
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in close()
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
        self.proc = subprocess.Popen(
            [PYTHON, str(self.script_path), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        assert self.proc.stdout is not None
        self._fd = self.proc.stdout.fileno()
        self._buffer = b""
        self._eof = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr_text(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def _fill(self, timeout: float) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._fd, selectors.EVENT_READ)
            if not selector.select(timeout):
                return
        chunk = os.read(self._fd, 65536)
        if chunk:
            self._buffer += chunk
        else:
            self._eof = True

    def read_line(self, timeout: float = 15.0) -> str | None:
        """The next complete line (without its newline), or None once stdout is closed."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            if self._eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"no line from the child within {timeout} s; stderr:\n{self.stderr_text()}"
                )
            self._fill(remaining)
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode("utf-8")

    def expect_line(self, expected: str, timeout: float = 15.0) -> None:
        line = self.read_line(timeout)
        assert line == expected, (
            f"child printed {line!r}, expected {expected!r}; stderr:\n{self.stderr_text()}"
        )

    def rest_lines(self, timeout: float = 15.0) -> list[str]:
        """Every complete line still to come, up to end of file; a torn last line is dropped."""
        lines = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.read_line(max(0.1, deadline - time.monotonic()))
            if line is None:
                return lines
            lines.append(line)

    def kill(self) -> int:
        """SIGKILL the child and reap it; return its exit status."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        return self.proc.wait(timeout=30)

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        try:
            self.kill()
        finally:
            assert self.proc.stdout is not None
            self.proc.stdout.close()
            self._stderr.close()

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def start_child(script: str, *args: object, workdir: Path, name: str = "child") -> Child:
    """Write ``script`` to ``workdir/<name>.py`` and run it with the test's interpreter."""
    return Child(script, [str(arg) for arg in args], workdir, name)

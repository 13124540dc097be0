"""A real ``aiokv serve`` process on loopback for the server tests: start it on a free port,
wait for ``/healthz``, stop it (imported by the tests and by ``conftest.py``)."""

from __future__ import annotations

import dataclasses
import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from _proc import die_with_parent, loopback_port

HOST = "127.0.0.1"
TOKEN = "s3cret-Token_42"  # the token of the ``guarded`` server
TIMEOUT = 10.0  # seconds, for every request
STARTUP_DEADLINE = 20.0  # seconds for /healthz to answer 200

SERVE = (
    "import sys; from pathlib import Path; from aiokv.server import serve; "
    "serve(Path(sys.argv[1]), host=sys.argv[2], port=int(sys.argv[3]), "
    "token=sys.argv[4] if len(sys.argv) > 4 else None)"
)


@dataclasses.dataclass
class Server:
    url: str
    port: int
    path: Path
    process: subprocess.Popen[bytes]
    log: Path

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return httpx.Client(base_url=self.url, timeout=TIMEOUT, headers=headers)

    def log_text(self) -> str:
        return self.log.read_text("utf-8", errors="replace")


def launch(
    path: Path, log: Path, *, port: int, token: str | None = None
) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-c", SERVE, str(path), HOST, str(port)]
    with open(log, "wb") as sink:
        return subprocess.Popen(
            [*args, *([token] if token is not None else [])],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=functools.partial(die_with_parent, os.getpid(), signal.SIGTERM)
            if sys.platform == "linux"
            else None,
        )


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"no 200 from {url}/healthz in {STARTUP_DEADLINE} s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def start_server(path: Path, log: Path, *, token: str | None = None) -> Server:
    """A server on a free port; a port taken between the probe and the bind is tried again."""
    for _ in range(3):
        port = loopback_port()
        process = launch(path, log, port=port, token=token)
        url = f"http://{HOST}:{port}"
        try:
            wait_healthy(url, process, log)
        except RuntimeError:
            if "address already in use" not in log.read_text():
                raise
            continue
        except BaseException:
            stop(process)
            raise
        return Server(url, port, path, process, log)
    raise RuntimeError("no free port after three tries")

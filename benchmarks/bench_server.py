"""Requests per second and latency of ``aiokv serve``, against the framework's own floor.

A real uvicorn process serves ``create_app`` on a loopback port (access log off), with one
extra route that only this benchmark mounts: ``GET /bench/floor``, a constant JSON object
(the read's value, encoded once), the least any request through Starlette and uvicorn
costs. The client, in this process, runs ``--clients`` concurrent tasks on one
``httpx.AsyncClient`` for ``--seconds`` (or ``--requests``, whichever ends first) per phase:

* ``floor``: ``GET /bench/floor``;
* ``create``: ``PUT /v1/keys/{key}`` of a new 32-character key (the longest a key may be)
  with the benchmarks' nested 1 KB value (an id, a 50-int array, 30 short fields, ...);
* ``read``: ``GET /v1/keys/{key}`` of a created key, picked at random.

It prints req/s, p50 and p99 of each, and each store phase's req/s as a ratio of the floor's,
against the targets (reads at least 0.7 of the floor, creates 0.5). The client shares this
machine's cores with the server, so the absolute figures are lower bounds and, where the
client is the bottleneck, the ratios approach 1. So it also prints the server process's own
CPU time per request (Linux: from /proc), and the floor's as a ratio of each phase's: the rate
ratio the server alone would reach. Run from the repository root::

    python benchmarks/bench_server.py                  # about 20 s
    python benchmarks/bench_server.py --seconds 2      # a smoke test
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
from _bench.system import cpu_seconds
from _bench.values import LONG_KEY_CHARS, nested_values

HOST = "127.0.0.1"
TARGETS = {"read": 0.7, "create": 0.5}
VALUE = nested_values(1, 1000)[0]
VALUE_JSON = orjson.dumps(VALUE)  # the floor's answer: the read's body, encoded once


def key_of(n: int) -> str:
    return f"bench:{n}".ljust(LONG_KEY_CHARS, "-")


# -- the server, in its own process --------------------------------------------------------


def run_server(path: Path, port: int) -> None:
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import Response

    import aiokv
    from aiokv.server import create_app

    async def floor(request: Request) -> Response:
        return Response(VALUE_JSON, media_type="application/json")

    app = create_app(aiokv.AsyncDataStore(path))
    app.add_route("/bench/floor", floor, methods=["GET"])
    uvicorn.run(app, host=HOST, port=port, access_log=False, log_level="warning")


def start_server(path: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(path), str(port)], stdin=subprocess.DEVNULL
    )
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    process.wait()
    raise SystemExit(f"the server did not answer /healthz on {url} in 20 s")


# -- the client -----------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    latencies: list[float]
    seconds: float
    server_cpu: float | None  # seconds of the server process's CPU in the phase

    @property
    def cpu_us(self) -> float | None:
        if self.server_cpu is None:
            return None
        return self.server_cpu / len(self.latencies) * 1e6

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def quantile_ms(self, q: float) -> float:
        return statistics.quantiles(self.latencies, n=100)[int(q * 100) - 1] * 1000


async def phase(
    name: str,
    send: Callable[[int], Awaitable[httpx.Response]],
    expected: int,
    clients: int,
    seconds: float,
    requests: int,
    server_pid: int,
) -> Result:
    """``clients`` tasks send requests until ``seconds`` pass or ``requests`` are sent."""
    numbers = itertools.count()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline and (n := next(numbers)) < requests:
            began = time.perf_counter()
            response = await send(n)
            latencies.append(time.perf_counter() - began)
            if response.status_code != expected:
                raise RuntimeError(f"{name}: {response.status_code} {response.text}")

    began, cpu_before = time.perf_counter(), cpu_seconds(server_pid)
    async with asyncio.TaskGroup() as group:
        for _ in range(clients):
            group.create_task(worker())
    cpu_after = cpu_seconds(server_pid)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Result(name, latencies, time.perf_counter() - began, cpu)


async def measure(
    url: str, server_pid: int, clients: int, seconds: float, requests: int
) -> list[Result]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
        created: list[str] = []

        async def floor(n: int) -> httpx.Response:
            return await client.get("/bench/floor")

        async def create(n: int) -> httpx.Response:
            key = key_of(n)
            response = await client.put(f"/v1/keys/{key}", content=VALUE_JSON)
            created.append(key)
            return response

        async def read(n: int) -> httpx.Response:
            return await client.get(f"/v1/keys/{random.choice(created)}")

        bounds = (clients, seconds, requests, server_pid)
        await phase("warm-up", floor, 200, clients, 1.0, requests, server_pid)
        return [
            await phase("floor", floor, 200, *bounds),
            await phase("create", create, 201, *bounds),
            await phase("read", read, 200, *bounds),
        ]


def report(results: list[Result], clients: int) -> None:
    floor = results[0]
    python = sys.version.split()[0]
    print(f"aiokv serve on {HOST}, {clients} concurrent clients (httpx), Python {python}")
    print(
        f"{'phase':<8}{'requests':>10}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'x floor':>9}"
        f"{'cpu us/req':>12}{'x floor':>9}  target (req/s ratio)"
    )
    for result in results:
        ratio = result.rate / floor.rate
        target = TARGETS.get(result.name)
        verdict = "" if target is None else f"≥ {target}: {'met' if ratio >= target else 'MISSED'}"
        p50, p99 = result.quantile_ms(0.5), result.quantile_ms(0.99)
        cpu, floor_cpu = result.cpu_us, floor.cpu_us
        cpu_text = "n/a" if cpu is None else f"{cpu:.0f}"
        # A phase too short for its CPU time to tick (0) has no ratio either.
        cpu_ratio = "n/a" if not cpu or floor_cpu is None else f"{floor_cpu / cpu:.2f}"
        print(
            f"{result.name:<8}{len(result.latencies):>10}{result.rate:>8.0f}"
            f"{p50:>8.2f}{p99:>8.2f}{ratio:>9.2f}{cpu_text:>12}{cpu_ratio:>9}  {verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per phase (5)")
    parser.add_argument("--requests", type=int, default=100_000, help="per phase, at most")
    parser.add_argument("--serve", nargs=2, metavar=("PATH", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        run_server(Path(args.serve[0]), int(args.serve[1]))
        return
    with tempfile.TemporaryDirectory(prefix="bench_server-") as folder:
        process, url = start_server(Path(folder) / "store")
        try:
            results = asyncio.run(
                measure(url, process.pid, args.clients, args.seconds, args.requests)
            )
        finally:
            process.terminate()
            process.wait(timeout=30)
    report(results, args.clients)


if __name__ == "__main__":
    main()

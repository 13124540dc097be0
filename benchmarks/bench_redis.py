"""Operations per second of ``AsyncRedisStore`` against raw redis-py sending the same commands.

The script starts its own ``redis-server`` (Debian's) on a free port of 127.0.0.1, never 6379,
with no persistence (``--save "" --appendonly no``), killed when the run ends however it ends;
or ``--url`` names a server that is running. Keys are 32 characters (the longest a key may
be) and values the benchmarks' nested 1 KB objects (an id, a 50-int array, 30 short fields,
bools and nulls; 1,000 distinct ones, cycled over the ``--n`` keys). aiokv and raw redis-py
(``redis.asyncio.Redis`` made as the store makes its two clients: the same URL, timeouts and
retry policies, a non-retrying client for the writes) use the same Redis names, the store's
prefix then the key, so the server does the same work for both. Raw writes send values
encoded beforehand with ``orjson.dumps`` (the bytes aiokv stores, checked), and once more
encoding each value in the loop, for context; raw reads decode with ``orjson.loads``, as aiokv
does, and once more without decoding, for context.

* ``create``, ``read``, ``delete``, 1 task and ``--tasks`` (100) tasks: every key in key
  order, ``await store.create/read/delete`` against ``SET name value NX``, ``GET`` and
  ``DEL`` (the keys dealt round-robin among the tasks);
* ``read_many``: one ``store.read_many`` of every key (its ``MGET`` of 1,024 keys at a time)
  against raw ``MGET`` of the same chunks, decoded into a dict;
* ``create_many``: ``store.create_many`` of ``--batch`` (1,000) keys a call against raw
  ``EVAL`` of the same script (``aiokv.redis.scripts.CREATE_MANY``) with the same arguments,
  the target row; and a ``MULTI`` pipeline of ``SET NX`` for context.

Before every create phase the server is emptied (``FLUSHALL``; with ``--url`` only the
benchmark's names are deleted), and before every delete and ``read_many`` phase it is emptied
and filled again (untimed), so each contender starts from the same state. Each repeat times
every phase once for aiokv and once for redis-py, back to back, the first one alternating
between repeats; the table shows the medians over ``--repeat`` (5) repeats with their range,
the client process's CPU time per operation (``time.process_time``) and, for the server this
script started, the server's (Linux: from /proc): client and server share the machine's
cores. Each raw row's ``aiokv/this`` is aiokv's median over that row's, and ``paired`` the
median and range of the repeats' own ratios (each pair timed back to back, so less moved by
drift); the target is ``≥ 0.9`` for the create, read and delete rows against the same
commands (aiokv's layer costs at most 10%). Run from the repository root::

    python benchmarks/bench_redis.py                    # under two minutes
    python benchmarks/bench_redis.py --quick            # a smoke test, seconds
    python benchmarks/bench_redis.py --profile          # also cProfile 1-task create, read, delete
    python benchmarks/bench_redis.py --layer            # also aiokv's own CPU a call, no Redis
    python benchmarks/bench_redis.py --url redis://127.0.0.1:6390/0   # a running server
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import ctypes
import functools
import gc
import io
import os
import pstats
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis
import redis.asyncio as redis_asyncio
from _bench import machine
from _bench.output import print_total
from _bench.stats import span_of
from _bench.system import cpu_seconds
from _bench.text import GE, TIMES, fmt_rate, print_table
from _bench.values import LONG_KEY_CHARS, chunks, long_key_of, nested_values
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff

from aiokv.redis import AsyncRedisStore
from aiokv.redis.connect import (
    BACKOFF_BASE_S,
    BACKOFF_CAP_S,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
)
from aiokv.redis.scripts import CREATE_MANY
from aiokv.redis.store import READ_MANY_PER_CALL

HOST = "127.0.0.1"
DEFAULT_PORT = 6379  # a system service's: never the benchmark's own server
PREFIX = "aiokv:"  # the store's default prefix; the raw client writes the same names
TARGET = 0.9  # aiokv's ops/s over raw redis-py's, for create, read and delete
VALUE_BYTES = 1000
DISTINCT_VALUES = 1000  # values cycled over the keys: making 20,000 takes seconds
TIMEOUT_S, RETRIES = DEFAULT_TIMEOUT_S, DEFAULT_RETRIES  # the store's, given to the raw clients
FILL_CHUNK = 1000  # keys per untimed MSET or DEL when filling or emptying the server
TARGETED = ("redis-py SET NX", "redis-py GET + orjson.loads", "redis-py DEL")  # the rows
PR_SET_PDEATHSIG = 1
N, QUICK_N = 15_000, 2_000
REPEAT, QUICK_REPEAT = 5, 1

Pair = tuple[str, Any]  # (key, value) for aiokv; (key, its JSON bytes) for redis-py


def body(text: str | None) -> str:
    """The module docstring, or a placeholder where ``-OO`` stripped it."""
    return text or "bench_redis.py"


# -- the server -----------------------------------------------------------------------------


def free_port() -> int:
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            port: int = probe.getsockname()[1]
        if port != DEFAULT_PORT:
            return port
    raise RuntimeError("no free port on 127.0.0.1 in 100 tries")


def die_with_parent(parent: int) -> None:
    """In the child: be SIGKILLed when this process ends, also when it is killed (Linux's
    PR_SET_PDEATHSIG), so no server outlives an interrupted run."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def ping(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as connection:
            connection.sendall(b"*1\r\n$4\r\nPING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(executable: str, folder: Path) -> Iterator[tuple[str, int]]:
    """A ``redis-server`` of its own on a free loopback port: its URL and process id."""
    port = free_port()
    log = folder / "redis.log"
    config = [
        *("--port", str(port), "--bind", HOST, "--daemonize", "no", "--dir", str(folder)),
        *("--save", "", "--appendonly", "no", "--logfile", ""),
    ]
    with open(log, "ab") as sink:
        process = subprocess.Popen(
            [executable, *config],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=(
                functools.partial(die_with_parent, os.getpid()) if sys.platform == "linux" else None
            ),
        )
    try:
        deadline = time.monotonic() + 10
        while not ping(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"redis-server did not answer PING on port {port}:\n"
                    + log.read_text("utf-8", errors="replace")
                )
            time.sleep(0.02)
        yield f"redis://{HOST}:{port}/0", process.pid
    finally:
        process.kill()
        process.wait()


def server_cpu_seconds(pid: int | None) -> float | None:
    """The server's CPU time so far, where it is a process of this machine."""
    return None if pid is None else cpu_seconds(pid)


# -- the rows and their samples ---------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    ops: int
    seconds: float
    client_cpu: float
    server_cpu: float | None

    @property
    def rate(self) -> float:
        return self.ops / self.seconds


@dataclass
class Row:
    """One line of the table: who ran which phase, and its samples, one a repeat."""

    phase: str
    who: str
    target: float | None = None  # on a raw row: the least aiokv's median may be of its own
    samples: list[Sample] = field(default_factory=list)

    @property
    def aiokv(self) -> bool:
        return self.who == "aiokv"

    def rate(self) -> float:
        return span_of(sample.rate for sample in self.samples)[0]


class Rows:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Row] = {}

    def add(self, phase: str, who: str, target: float | None = None) -> Row:
        row = self.rows[phase, who] = Row(phase, who, target)
        return row

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows.values())


# -- the loops ------------------------------------------------------------------------------
# Each is one task's loop over its keys; a phase runs one, or ``tasks`` at once.


Loop = Callable[[Sequence[Any]], Awaitable[None]]


def aiokv_loops(store: AsyncRedisStore) -> dict[str, Loop]:
    async def create(pairs: Sequence[Pair]) -> None:
        create = store.create
        for key, value in pairs:
            await create(key, value)

    async def read(keys: Sequence[str]) -> None:
        read = store.read
        for key in keys:
            await read(key)

    async def delete(keys: Sequence[str]) -> None:
        delete = store.delete
        for key in keys:
            await delete(key)

    return {"create": create, "read": read, "delete": delete}


def raw_loops(client: redis_asyncio.Redis, writer: redis_asyncio.Redis) -> dict[str, Loop]:
    """The same commands from raw redis-py: what the store sends, and checks, for each call."""

    async def create(pairs: Sequence[Pair]) -> None:
        set_ = writer.set
        for key, data in pairs:
            if not await set_(PREFIX + key, data, nx=True):
                raise RuntimeError(f"raw SET NX: {key} exists")

    async def create_dumps(pairs: Sequence[Pair]) -> None:
        set_, dumps = writer.set, orjson.dumps
        for key, value in pairs:
            if not await set_(PREFIX + key, dumps(value), nx=True):
                raise RuntimeError(f"raw SET NX: {key} exists")

    async def read(keys: Sequence[str]) -> None:
        get, loads = client.get, orjson.loads
        for key in keys:
            data = await get(PREFIX + key)
            if data is None:
                raise RuntimeError(f"raw GET: {key} not found")
            loads(data)

    async def read_bytes(keys: Sequence[str]) -> None:
        get = client.get
        for key in keys:
            if await get(PREFIX + key) is None:
                raise RuntimeError(f"raw GET: {key} not found")

    async def delete(keys: Sequence[str]) -> None:
        delete = client.delete
        for key in keys:
            if not await delete(PREFIX + key):
                raise RuntimeError(f"raw DEL: {key} not found")

    return {
        "create": create,
        "create_dumps": create_dumps,
        "read": read,
        "read_bytes": read_bytes,
        "delete": delete,
    }


# -- the benchmark --------------------------------------------------------------------------


class Bench:
    def __init__(
        self,
        args: argparse.Namespace,
        url: str,
        server_pid: int | None,
        store: AsyncRedisStore,
        client: redis_asyncio.Redis,
        writer: redis_asyncio.Redis,
    ) -> None:
        self.url, self.server_pid, self.own_server = url, server_pid, args.url is None
        self.n, self.tasks, self.batch = args.n, args.tasks, args.batch
        self.store, self.client, self.writer = store, client, writer
        self.keys = [long_key_of(i) for i in range(self.n)]
        assert all(len(key) == LONG_KEY_CHARS for key in (self.keys[0], self.keys[-1]))
        pool = nested_values(DISTINCT_VALUES, VALUE_BYTES)
        self.values = [pool[i % DISTINCT_VALUES] for i in range(self.n)]
        pool_data = [orjson.dumps(value) for value in pool]  # raw writes' values, encoded once
        self.data = [pool_data[i % DISTINCT_VALUES] for i in range(self.n)]
        self.names = [PREFIX + key for key in self.keys]
        self.pairs = list(zip(self.keys, self.values, strict=True))
        self.raw_pairs = list(zip(self.keys, self.data, strict=True))
        self.aiokv = aiokv_loops(store)
        self.raw = raw_loops(client, writer)
        self.rows = Rows()

    # -- the server's state, untimed

    async def empty(self) -> None:
        if self.own_server:
            await self.client.flushall()
            return
        for start in range(0, self.n, FILL_CHUNK):
            await self.client.delete(*self.names[start : start + FILL_CHUNK])

    async def fill(self) -> None:
        await self.empty()
        for start in range(0, self.n, FILL_CHUNK):
            part = range(start, min(start + FILL_CHUNK, self.n))
            await self.client.mset({self.names[i]: self.data[i] for i in part})

    async def check_filled(self, who: str) -> None:
        """Every key is there, and a few hold exactly the bytes ``orjson.dumps`` makes."""
        there = 0
        for start in range(0, self.n, FILL_CHUNK):
            there += await self.client.exists(*self.names[start : start + FILL_CHUNK])
        if there != self.n:
            raise RuntimeError(f"{who}: {there:,} of the {self.n:,} keys are there")
        for i in (0, self.n // 2, self.n - 1):
            if await self.client.get(self.names[i]) != self.data[i]:
                raise RuntimeError(f"{who}: key {self.keys[i]} holds other bytes")

    async def check_empty(self, who: str) -> None:
        there = 0
        for start in range(0, self.n, FILL_CHUNK):
            there += await self.client.exists(*self.names[start : start + FILL_CHUNK])
        if there:
            raise RuntimeError(f"{who}: {there:,} keys are left")

    # -- timing

    async def timed(self, row: Row, ops: int, work: Callable[[], Awaitable[None]]) -> None:
        gc.collect()
        server_before = server_cpu_seconds(self.server_pid)
        cpu_before, began = time.process_time(), time.perf_counter()
        await work()
        seconds, cpu = time.perf_counter() - began, time.process_time() - cpu_before
        server_after = server_cpu_seconds(self.server_pid)
        server = None
        if server_before is not None and server_after is not None:
            server = server_after - server_before
        row.samples.append(Sample(ops, seconds, cpu, server))

    @staticmethod
    async def spread(loop: Loop, items: Sequence[Any], tasks: int) -> None:
        if tasks == 1:
            await loop(items)
        else:
            await asyncio.gather(*(loop(part) for part in chunks(items, tasks)))

    async def single(self, repeat: int, tasks: int) -> None:
        """create, read and delete of every key, aiokv and raw, with ``tasks`` tasks."""
        label = f"{tasks} task" if tasks == 1 else f"{tasks} tasks"
        pairs, raw_pairs, n = self.pairs, self.raw_pairs, self.n

        create = {
            "aiokv": lambda: self.spread(self.aiokv["create"], pairs, tasks),
            "redis-py SET NX": lambda: self.spread(self.raw["create"], raw_pairs, tasks),
            "redis-py SET NX + orjson.dumps": lambda: self.spread(
                self.raw["create_dumps"], pairs, tasks
            ),
        }
        for who in ordered(create, repeat):
            await self.empty()
            await self.timed(self.row(f"create, {label}", who), n, create[who])
            await self.check_filled(f"create, {label}, {who}")

        read = {
            "aiokv": lambda: self.spread(self.aiokv["read"], self.keys, tasks),
            "redis-py GET + orjson.loads": lambda: self.spread(self.raw["read"], self.keys, tasks),
            "redis-py GET, bytes only": lambda: self.spread(
                self.raw["read_bytes"], self.keys, tasks
            ),
        }
        for who in ordered(read, repeat):
            await self.timed(self.row(f"read, {label}", who), n, read[who])

        delete = {
            "aiokv": lambda: self.spread(self.aiokv["delete"], self.keys, tasks),
            "redis-py DEL": lambda: self.spread(self.raw["delete"], self.keys, tasks),
        }
        for who in ordered(delete, repeat):
            await self.fill()
            await self.timed(self.row(f"delete, {label}", who), n, delete[who])
            await self.check_empty(f"delete, {label}, {who}")

    async def read_many(self, repeat: int) -> None:
        phase = f"read_many, {READ_MANY_PER_CALL:,} per MGET"
        await self.fill()

        async def aiokv() -> None:
            found = await self.store.read_many(self.keys)
            if len(found) != self.n:
                raise RuntimeError(f"read_many found {len(found):,} of {self.n:,} keys")

        def raw(decode: bool) -> Callable[[], Awaitable[None]]:
            async def mget() -> None:
                mget, loads, keys = self.client.mget, orjson.loads, self.keys
                found: dict[str, Any] = {}
                for start in range(0, len(keys), READ_MANY_PER_CALL):
                    part = keys[start : start + READ_MANY_PER_CALL]
                    values = await mget([PREFIX + key for key in part])
                    for key, data in zip(part, values, strict=True):
                        if data is not None:
                            found[key] = loads(data) if decode else data
                if len(found) != self.n:
                    raise RuntimeError(f"raw MGET found {len(found):,} of {self.n:,} keys")

            return mget

        contenders = {
            "aiokv": aiokv,
            "redis-py MGET + orjson.loads": raw(True),
            "redis-py MGET, bytes only": raw(False),
        }
        for who in ordered(contenders, repeat):
            await self.timed(self.row(phase, who), self.n, contenders[who])

    async def create_many(self, repeat: int) -> None:
        phase = f"create_many, {self.batch:,} per call"
        size = self.batch
        batches = [self.pairs[i : i + size] for i in range(0, self.n, size)]
        raw_batches = [self.raw_pairs[i : i + size] for i in range(0, self.n, size)]

        async def aiokv() -> None:
            create_many = self.store.create_many
            for batch in batches:
                await create_many(batch)

        async def script() -> None:
            eval_ = self.writer.eval
            for batch in raw_batches:
                names = [PREFIX + key for key, _data in batch]
                args: list[bytes | int | str] = ["PX"]
                for _key, data in batch:
                    args += (data, 0)
                if await eval_(CREATE_MANY, len(names), *names, *args):
                    raise RuntimeError("raw EVAL CREATE_MANY: keys exist")

        async def multi() -> None:
            for batch in raw_batches:
                pipe = self.writer.pipeline(transaction=True)
                for key, data in batch:
                    pipe.set(PREFIX + key, data, nx=True)
                if not all(await pipe.execute()):
                    raise RuntimeError("raw MULTI SET NX: keys exist")

        contenders = {
            "aiokv": aiokv,
            "redis-py EVAL CREATE_MANY": script,
            "redis-py MULTI, SET NX each": multi,
        }
        for who in ordered(contenders, repeat):
            await self.empty()
            await self.timed(self.row(phase, who), self.n, contenders[who])
            await self.check_filled(f"{phase}, {who}")

    def row(self, phase: str, who: str) -> Row:
        existing = self.rows.rows.get((phase, who))
        if existing is not None:
            return existing
        return self.rows.add(phase, who, TARGET if who in TARGETED else None)

    async def warm_up(self) -> None:
        """Open the connections of every pool the timed phases use (``tasks`` of each), and
        run each loop once, untimed."""
        m = min(self.n, max(2 * self.tasks, 1000))
        keys, pairs, raw_pairs = self.keys[:m], self.pairs[:m], self.raw_pairs[:m]
        for loops, items in ((self.aiokv, pairs), (self.raw, raw_pairs)):
            await self.empty()
            await self.spread(loops["create"], items, self.tasks)
            await self.spread(loops["read"], keys, self.tasks)
            await self.spread(loops["delete"], keys, self.tasks)
        await self.store.create_many(pairs)
        await self.store.read_many(keys)
        await self.empty()

    async def run(self, repeats: int, started: float) -> None:
        await self.warm_up()
        for repeat in range(repeats):
            await self.single(repeat, 1)
            await self.single(repeat, self.tasks)
            await self.read_many(repeat)
            await self.create_many(repeat)
            await self.empty()
            print(f"repeat {repeat + 1} of {repeats} done, {time.perf_counter() - started:.0f} s")


def ordered(contenders: dict[str, Any], repeat: int) -> list[str]:
    """The contenders in their order on even repeats, reversed on odd ones."""
    names = list(contenders)
    return names if repeat % 2 == 0 else names[::-1]


# -- profiles -------------------------------------------------------------------------------


async def profile(bench: Bench, top: int) -> str:
    """cProfile of aiokv's 1-task create, read and delete of every key, and raw redis-py's: the
    ``top`` functions of each by their own time, as text."""
    text = io.StringIO()
    pairs, raw_pairs = bench.pairs, bench.raw_pairs
    runs: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("aiokv create, 1 task", lambda: bench.aiokv["create"](pairs)),
        ("aiokv read, 1 task", lambda: bench.aiokv["read"](bench.keys)),
        ("redis-py SET NX, 1 task", lambda: bench.raw["create"](raw_pairs)),
        ("redis-py GET + orjson.loads, 1 task", lambda: bench.raw["read"](bench.keys)),
        ("aiokv delete, 1 task", lambda: bench.aiokv["delete"](bench.keys)),
        ("redis-py DEL, 1 task", lambda: bench.raw["delete"](bench.keys)),
    ]
    for name, work in runs:
        if "create" in name or "SET" in name:
            await bench.empty()
        elif "delete" in name or "DEL" in name:
            await bench.fill()
        profiler = cProfile.Profile()
        cpu = time.process_time()
        profiler.enable()
        await work()
        profiler.disable()
        cpu = time.process_time() - cpu
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
        print(
            f"\n== profile: {name}, {bench.n:,} calls, {cpu / bench.n * 1e6:.1f} us of CPU a "
            "call (the profiler's own included) ==",
            file=text,
        )
        # pstats' lines from the column header on, without its preamble
        lines = out.getvalue().splitlines()
        first = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
        print("\n".join(lines[first:]).rstrip(), file=text)
    await bench.empty()
    return text.getvalue()


# -- aiokv's own layer ------------------------------------------------------------------------


@contextlib.contextmanager
def answering(answer: Any) -> Iterator[None]:
    """Every ``redis.asyncio.Redis.execute_command`` answers ``answer`` at once, sending
    nothing: what is left of a call is the code above redis-py's connection."""
    original = redis_asyncio.Redis.execute_command

    async def execute_command(self: redis_asyncio.Redis, *args: Any, **options: Any) -> Any:
        return answer

    setattr(redis_asyncio.Redis, "execute_command", execute_command)  # noqa: B010
    try:
        yield
    finally:
        setattr(redis_asyncio.Redis, "execute_command", original)  # noqa: B010


async def layer(bench: Bench, repeats: int) -> list[tuple[str, float, float]]:
    """The client CPU (us) of a 1-task create, read and delete when Redis answers at once,
    aiokv's and raw redis-py's, medians of ``repeats``: aiokv's layer is their difference,
    free of the network and the server, which dominate the timed phases and their noise."""
    found = []
    for op, answer, items in (
        ("create", True, (bench.pairs, bench.raw_pairs)),
        ("read", bench.data[0], (bench.keys, bench.keys)),
        ("delete", 1, (bench.keys, bench.keys)),
    ):
        loops = {"aiokv": (bench.aiokv[op], items[0]), "raw": (bench.raw[op], items[1])}
        cpu: dict[str, list[float]] = {"aiokv": [], "raw": []}
        with answering(answer):
            for repeat in range(repeats):
                for who in ordered(loops, repeat):
                    loop, args = loops[who]
                    started = time.process_time()
                    await loop(args)
                    cpu[who].append((time.process_time() - started) / bench.n * 1e6)
        found.append((op, span_of(cpu["aiokv"])[0], span_of(cpu["raw"])[0]))
    return found


def report_layer(found: list[tuple[str, float, float]], rows: Rows) -> None:
    one_task = {row.phase: row for row in rows if row.aiokv}
    table = []
    for op, ours, raw in found:
        row = one_task[f"{op}, 1 task"]
        whole = span_of(s.client_cpu / s.ops * 1e6 for s in row.samples)[0]
        table.append([op, f"{ours:.2f}", f"{raw:.2f}", f"{ours - raw:+.2f}", f"{whole:.1f}"])
        table[-1].append(f"{(ours - raw) / whole:.1%}")
    print()
    print("aiokv's layer: client CPU per call when Redis answers at once (no network, no server)")
    print()
    print_table(
        ["op", "aiokv us", "redis-py us", "layer us", "a real call, us", "layer/real"], table
    )


# -- the report -----------------------------------------------------------------------------


def report(rows: Rows, repeats: int) -> None:
    table: list[list[str]] = []
    verdicts: list[str] = []
    aiokv_rows: dict[str, Row] = {}
    phase_seen = ""
    width = max(len(row.who) for row in rows)  # print_table right-aligns: pad to the left
    for row in rows:
        rates = span_of(sample.rate for sample in row.samples)
        client = span_of(sample.client_cpu / sample.ops * 1e6 for sample in row.samples)[0]
        servers = [s.server_cpu / s.ops * 1e6 for s in row.samples if s.server_cpu is not None]
        server = f"{span_of(servers)[0]:.1f}" if servers else "n/a"
        ratio = paired = verdict = ""
        if row.aiokv:
            aiokv_rows[row.phase] = row
        else:
            ours = aiokv_rows[row.phase]
            value = ours.rate() / rates[0]
            ratio = f"{value:.3f}{TIMES}"
            # each repeat's aiokv over this row's, timed back to back: less of the drift
            pairs = span_of(a.rate / b.rate for a, b in zip(ours.samples, row.samples, strict=True))
            paired = f"{pairs[0]:.3f} ({pairs[1]:.2f}-{pairs[2]:.2f})"
            if row.target is not None:
                verdict = f"{GE} {row.target}: {'met' if value >= row.target else 'MISSED'}"
                verdicts.append(f"{row.phase}: aiokv {ratio} of {row.who} ({verdict})")
        table.append(
            [
                row.phase if row.phase != phase_seen else "",
                row.who.ljust(width),
                fmt_rate(rates[0]),
                f"{fmt_rate(rates[1])}-{fmt_rate(rates[2])}",
                f"{client:.1f}",
                server,
                ratio,
                paired,
                verdict,
            ]
        )
        phase_seen = row.phase
    print_table(
        [
            "phase",
            "who".ljust(width),
            "ops/s",
            "min-max",
            "cpu us client",
            "cpu us server",
            "aiokv/this",
            "paired (range)",
            "target",
        ],
        table,
    )
    print()
    print(
        f"ops/s: the median of {repeats} repeat(s), and its range; cpu us: the CPU time of the "
        "client (this process) and of the server\nper operation (key), medians; aiokv/this: "
        "aiokv's median ops/s over the row's; paired: the median (and range) of each\n"
        "repeat's ratio, the two timed back to back"
    )
    print()
    missed = [line for line in verdicts if "MISSED" in line]
    print(
        f"targets: {len(verdicts) - len(missed)} of {len(verdicts)} met"
        + (f"; missed: {'; '.join(missed)}" if missed else "")
    )


# -- the run --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=body(__doc__).split("\n")[0])
    parser.add_argument("--n", type=int, default=N, help="keys per phase (default: %(default)s)")
    parser.add_argument(
        "--tasks", type=int, default=100, help="tasks of the concurrent phases (default: 100)"
    )
    parser.add_argument(
        "--batch", type=int, default=1000, help="keys per create_many call (default: 1000)"
    )
    parser.add_argument(
        "--repeat", type=int, default=REPEAT, help="repeats of every phase (default: 5)"
    )
    parser.add_argument(
        "--url",
        help="a running Redis server to use instead of starting one (only the benchmark's "
        f"keys, {PREFIX}key:..., are written and deleted there)",
    )
    parser.add_argument(
        "--redis-server",
        default=shutil.which("redis-server") or "/usr/bin/redis-server",
        help="the redis-server to start (default: %(default)s)",
    )
    parser.add_argument(
        "--loop", choices=("asyncio", "uvloop"), default="asyncio", help="the event loop"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="then cProfile aiokv's and redis-py's 1-task create, read, delete of --n keys",
    )
    parser.add_argument(
        "--layer",
        action="store_true",
        help="then time aiokv's own layer: 1-task calls answered at once, without Redis",
    )
    parser.add_argument("--top", type=int, default=25, help="functions in each profile (25)")
    parser.add_argument(
        "--quick", action="store_true", help=f"a smoke test: {QUICK_N:,} keys, one repeat"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.n = min(args.n, QUICK_N)
        args.repeat = QUICK_REPEAT
    if min(args.n, args.tasks, args.batch, args.repeat) < 1:
        parser.error("--n, --tasks, --batch and --repeat must be at least 1")
    if args.n < args.tasks:
        parser.error("--n must be at least --tasks")
    return args


def make_raw(url: str, *, retry: bool) -> redis_asyncio.Redis:
    """A raw client made as the store makes its own: the same timeouts and retry policy."""
    policy = (
        Retry(ExponentialBackoff(cap=BACKOFF_CAP_S, base=BACKOFF_BASE_S), RETRIES)
        if retry
        else Retry(NoBackoff(), 0)
    )
    return redis_asyncio.Redis.from_url(
        url, retry=policy, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
    )


async def measure(
    args: argparse.Namespace, url: str, server_pid: int | None, started: float
) -> tuple[Rows, str, str, list[tuple[str, float, float]]]:
    client, writer = make_raw(url, retry=True), make_raw(url, retry=False)
    try:
        async with AsyncRedisStore(url, prefix=PREFIX, timeout=TIMEOUT_S, retries=RETRIES) as store:
            info = await client.info("server")
            bench = Bench(args, url, server_pid, store, client, writer)
            await bench.run(args.repeat, started)
            profiles = await profile(bench, args.top) if args.profile else ""
            found = await layer(bench, args.repeat) if args.layer else []
            return bench.rows, str(info.get("redis_version", "?")), profiles, found
    finally:
        await client.aclose()
        await writer.aclose()


def run_loop(args: argparse.Namespace, work: Awaitable[Any]) -> Any:
    if args.loop == "uvloop":
        import uvloop

        return uvloop.run(work)  # type: ignore[arg-type]
    return asyncio.run(work)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine.basic()
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if args.url is None:
            if not os.path.exists(args.redis_server):
                raise SystemExit(f"no redis-server at {args.redis_server}: give --url instead")
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_redis-")))
            url, server_pid = stack.enter_context(redis_server(args.redis_server, folder))
        else:
            url, server_pid = args.url, None
        rows, version, profiles, found = run_loop(args, measure(args, url, server_pid, started))
    elapsed = time.perf_counter() - started
    print()
    print(
        f"aiokv {info['aiokv']} on Redis {version} ({'its own' if args.url is None else url}, "
        f"loopback), redis-py {redis.__version__} (hiredis: "
        f"{'yes' if redis.utils.HIREDIS_AVAILABLE else 'no'}), {info['implementation']} "
        f"{info['python']} on {args.loop}, {info['cpus']} CPUs shared by client and server"
    )
    print(
        f"{args.n:,} keys of {LONG_KEY_CHARS} characters, nested values of {VALUE_BYTES} bytes "
        f"of JSON; medians of {args.repeat} repeat(s), aiokv and redis-py alternating"
    )
    print()
    report(rows, args.repeat)
    if found:
        report_layer(found, rows)
    if profiles:
        print(profiles)
    print_total(elapsed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

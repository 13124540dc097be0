"""Throughput of the core operations: creates, reads and deletes per second.

Every measurement runs against a fresh store in a new temporary directory, with values whose
compact JSON is ``--value-bytes`` long (1000 by default) and keys of 12 characters:

* ``async, 1 task``: one coroutine awaiting each call in turn;
* ``async, 100 tasks``: the keys split among 100 coroutines running at once;
* ``sync, 1 thread`` / ``sync, 4 threads``: ``DataStore`` called from plain threads;
* ``fsync, 1 task`` / ``fsync, 100 tasks``: creates with ``durability="fsync"``.

Each phase (all creates, then all reads, then all deletes, in key order) is timed on its own,
without the store's open and close. Each case is repeated ``--repeat`` times; the table shows
the median and the range. Run from the repository root::

    python benchmarks/bench_core.py                     # the full run, a few minutes
    python benchmarks/bench_core.py --quick             # a smoke test, seconds
    python benchmarks/bench_core.py --json results.json # also write every figure as JSON
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiokv

ASYNC_TASKS = 100
SYNC_THREADS = 4
SIZE_KEYS = 100_000  # the store whose directory size is reported
PHASES = ("create", "read", "delete")


@dataclass
class Case:
    name: str
    n: int
    phases: tuple[str, ...]
    runs: list[dict[str, float]] = field(default_factory=list)  # phase -> ops/s, per repeat

    def summary(self, phase: str) -> tuple[float, float, float] | None:
        rates = [run[phase] for run in self.runs if phase in run]
        if not rates:
            return None
        return statistics.median(rates), min(rates), max(rates)


def make_keys(n: int) -> list[str]:
    return [f"key:{i:08d}" for i in range(n)]


def make_values(n: int, value_bytes: int) -> list[dict[str, Any]]:
    """``n`` distinct dicts whose compact JSON is exactly ``value_bytes`` long."""
    overhead = len(json.dumps({"id": f"{0:08d}", "pad": ""}, separators=(",", ":")))
    if value_bytes < overhead:
        raise SystemExit(f"--value-bytes must be at least {overhead}")
    pad = "x" * (value_bytes - overhead)  # one string shared by every value
    values = [{"id": f"{i:08d}", "pad": pad} for i in range(n)]
    encoded = json.dumps(values[0], separators=(",", ":"), ensure_ascii=False).encode()
    assert len(encoded) == value_bytes
    return values


def directory_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.iterdir() if entry.is_file())


def chunks(items: Sequence[Any], parts: int) -> list[Sequence[Any]]:
    return [items[i::parts] for i in range(parts)]


# -- AsyncDataStore ------------------------------------------------------------------------


async def _async_phase(
    store: aiokv.AsyncDataStore,
    phase: str,
    keys: Sequence[str],
    values: Sequence[dict[str, Any]],
    tasks: int,
) -> float:
    """Run one phase over every key with ``tasks`` coroutines; return the seconds it took."""

    async def work(indices: Sequence[int]) -> None:
        if phase == "create":
            for i in indices:
                await store.create(keys[i], values[i])
        elif phase == "read":
            for i in indices:
                await store.read(keys[i])
        else:
            for i in indices:
                await store.delete(keys[i])

    indices = range(len(keys))
    started = time.perf_counter()
    if tasks == 1:
        await work(indices)
    else:
        await asyncio.gather(*(work(part) for part in chunks(indices, tasks)))
    return time.perf_counter() - started


async def _async_run(
    path: Path,
    keys: Sequence[str],
    values: Sequence[dict[str, Any]],
    tasks: int,
    phases: Sequence[str],
    durability: str,
) -> dict[str, float]:
    rates: dict[str, float] = {}
    async with aiokv.AsyncDataStore(path, durability=durability) as store:  # type: ignore[arg-type]
        for phase in phases:
            seconds = await _async_phase(store, phase, keys, values, tasks)
            rates[phase] = len(keys) / seconds
    return rates


def run_async(
    base: Path | None,
    keys: Sequence[str],
    values: Sequence[dict[str, Any]],
    phases: Sequence[str],
    *,
    tasks: int,
    durability: str = "flush",
) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="aiokv-bench-", dir=base) as tmp:
        return asyncio.run(_async_run(Path(tmp) / "store", keys, values, tasks, phases, durability))


# -- DataStore -----------------------------------------------------------------------------


def _sync_phase(
    store: aiokv.DataStore,
    phase: str,
    keys: Sequence[str],
    values: Sequence[dict[str, Any]],
    threads: int,
) -> float:
    def work(indices: Sequence[int]) -> None:
        if phase == "create":
            for i in indices:
                store.create(keys[i], values[i])
        elif phase == "read":
            for i in indices:
                store.read(keys[i])
        else:
            for i in indices:
                store.delete(keys[i])

    parts = chunks(range(len(keys)), threads)
    if threads == 1:
        started = time.perf_counter()
        work(parts[0])
        return time.perf_counter() - started
    errors: list[BaseException] = []
    gate = threading.Barrier(threads + 1)

    def thread_main(indices: Sequence[int]) -> None:
        gate.wait()
        try:
            work(indices)
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=thread_main, args=(part,)) for part in parts]
    for thread in pool:
        thread.start()
    gate.wait()  # every thread is ready: start the clock as they are released
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    return seconds


def run_sync(
    base: Path | None,
    keys: Sequence[str],
    values: Sequence[dict[str, Any]],
    phases: Sequence[str],
    *,
    threads: int,
) -> dict[str, float]:
    rates: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory(prefix="aiokv-bench-", dir=base) as tmp,
        aiokv.DataStore(Path(tmp) / "store") as store,
    ):
        for phase in phases:
            seconds = _sync_phase(store, phase, keys, values, threads)
            rates[phase] = len(keys) / seconds
    return rates


# -- the store's size ----------------------------------------------------------------------


async def _fill(path: Path, keys: Sequence[str], values: Sequence[dict[str, Any]]) -> int:
    async with aiokv.AsyncDataStore(path) as store:
        await _async_phase(store, "create", keys, values, 1)
        await _async_phase(store, "read", keys, values, 1)  # every create must have landed
    return directory_bytes(path)


def measure_size(base: Path | None, keys: Sequence[str], values: Sequence[dict[str, Any]]) -> int:
    """The store directory's size in bytes after ``len(keys)`` creates (and a clean close)."""
    with tempfile.TemporaryDirectory(prefix="aiokv-bench-", dir=base) as tmp:
        return asyncio.run(_fill(Path(tmp) / "store", keys, values))


# -- the report ----------------------------------------------------------------------------


def fmt_rate(rate: float) -> str:
    return f"{rate:,.0f}"


def print_table(cases: list[Case]) -> None:
    header = ["case", "n", *(f"{phase}s/s median (min-max)" for phase in PHASES)]
    rows = [header]
    for case in cases:
        row = [case.name, f"{case.n:,}"]
        for phase in PHASES:
            summary = case.summary(phase)
            if summary is None:
                row.append("-")
            else:
                median, low, high = summary
                row.append(f"{fmt_rate(median)} ({fmt_rate(low)}-{fmt_rate(high)})")
        rows.append(row)
    widths = [max(len(row[col]) for row in rows) for col in range(len(header))]
    for position, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells).rstrip())
        if position == 0:
            print("  ".join("-" * width for width in widths))


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpus": os.cpu_count(),
        "aiokv": aiokv.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--n", type=int, default=100_000, help="keys per AsyncDataStore run (default: %(default)s)"
    )
    parser.add_argument(
        "--sync-n", type=int, default=20_000, help="keys per DataStore run (default: %(default)s)"
    )
    parser.add_argument(
        "--fsync-n",
        type=int,
        default=20_000,
        help='keys per durability="fsync" run (default: %(default)s)',
    )
    parser.add_argument(
        "--value-bytes",
        type=int,
        default=1000,
        help="size of each value's compact JSON (default: %(default)s)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each case (default: %(default)s)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument("--dir", type=Path, help="where the temporary stores go (default: TMPDIR)")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke test: small n, one run of each case"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.n = min(args.n, 5_000)
        args.sync_n = min(args.sync_n, 2_000)
        args.fsync_n = min(args.fsync_n, 1_000)
        args.repeat = 1
    size_keys = SIZE_KEYS if not args.quick else args.n
    if min(args.n, args.sync_n, args.fsync_n, args.repeat) < 1:
        parser.error("--n, --sync-n, --fsync-n and --repeat must be at least 1")
    if args.n < ASYNC_TASKS or args.fsync_n < ASYNC_TASKS:
        parser.error(f"--n and --fsync-n must be at least {ASYNC_TASKS}")

    info = machine()
    print(
        f"aiokv {info['aiokv']} on {info['platform']}, {info['implementation']} "
        f"{info['python']}, {info['cpus']} CPUs"
    )
    print(
        f"values: {args.value_bytes} bytes of JSON; keys: 12 characters; "
        f"{args.repeat} run(s) per case, each on a fresh store in "
        f"{args.dir or tempfile.gettempdir()}"
    )
    print(
        f"n: {args.n:,} keys for AsyncDataStore, {args.sync_n:,} for DataStore (each call "
        f'is a cross-thread hop, so fewer keys keep the run short), {args.fsync_n:,} for "fsync"'
    )
    print()

    biggest = max(args.n, args.sync_n, args.fsync_n, size_keys)
    all_keys = make_keys(biggest)
    all_values = make_values(biggest, args.value_bytes)

    def plan(
        name: str, n: int, phases: tuple[str, ...], run: Callable[..., dict[str, float]]
    ) -> tuple[Case, Callable[[], dict[str, float]]]:
        keys, values = all_keys[:n], all_values[:n]
        return Case(name, n, phases), lambda: run(keys, values, phases)

    base = args.dir
    create = ("create",)
    plans = [
        plan("async, 1 task", args.n, PHASES, lambda *a: run_async(base, *a, tasks=1)),
        plan(
            f"async, {ASYNC_TASKS} tasks",
            args.n,
            PHASES,
            lambda *a: run_async(base, *a, tasks=ASYNC_TASKS),
        ),
        plan("sync, 1 thread", args.sync_n, PHASES, lambda *a: run_sync(base, *a, threads=1)),
        plan(
            f"sync, {SYNC_THREADS} threads",
            args.sync_n,
            PHASES,
            lambda *a: run_sync(base, *a, threads=SYNC_THREADS),
        ),
        plan(
            "fsync, 1 task",
            args.fsync_n,
            create,
            lambda *a: run_async(base, *a, tasks=1, durability="fsync"),
        ),
        plan(
            f"fsync, {ASYNC_TASKS} tasks",
            args.fsync_n,
            create,
            lambda *a: run_async(base, *a, tasks=ASYNC_TASKS, durability="fsync"),
        ),
    ]

    started = time.perf_counter()
    # Repeats are interleaved (every case once, then again) so that a burst of noise on a
    # shared machine spreads over the cases instead of landing on one.
    for repeat in range(args.repeat):
        for case, run in plans:
            try:
                rates = run()
            except aiokv.KeyNotFoundError as exc:
                # Every key read or deleted was created (and acknowledged) just before.
                raise SystemExit(
                    f"{case.name}: a key whose create() returned is missing ({exc}); "
                    "the store lost an acknowledged write"
                ) from exc
            case.runs.append(rates)
            shown = ", ".join(f"{phase} {fmt_rate(rate)}/s" for phase, rate in rates.items())
            print(f"  run {repeat + 1}/{args.repeat} {case.name:<17} {shown}", flush=True)
    cases = [case for case, _run in plans]

    size = measure_size(args.dir, all_keys[:size_keys], all_values[:size_keys])
    per_record = size / size_keys
    elapsed = time.perf_counter() - started

    print()
    print_table(cases)
    print()
    print(
        f"store directory after {size_keys:,} creates of {args.value_bytes}-byte values: "
        f"{size:,} bytes ({per_record:,.1f} bytes per key; a record is a 28-byte header, "
        f"the key and the value)"
    )
    print(f"total time {elapsed:.0f} s; command: {' '.join([sys.executable, *sys.argv])}")

    if args.json is not None:
        report = {
            "machine": info,
            "command": [sys.executable, *sys.argv],
            "value_bytes": args.value_bytes,
            "repeat": args.repeat,
            "cases": [
                {
                    "name": case.name,
                    "n": case.n,
                    "runs": case.runs,
                    "median": {
                        phase: summary[0]
                        for phase in case.phases
                        if (summary := case.summary(phase)) is not None
                    },
                }
                for case in cases
            ],
            "directory_bytes": {"keys": size_keys, "bytes": size},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

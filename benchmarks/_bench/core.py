"""The measurements of ``bench_core.py``: creates, reads and deletes per second of aiokv.

Each case runs every phase (all creates, then all reads, then all deletes, in key order) on a
fresh store, each phase timed on its own without the store's open and close.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiokv
from _bench.output import command
from _bench.stats import Span, span
from _bench.system import directory_bytes
from _bench.text import fmt_rate, print_table
from _bench.values import Value, chunks

PHASES = ("create", "read", "delete")
ASYNC_TASKS = 100  # the coroutines of the many-task cases
TMP_PREFIX = "aiokv-bench-"

Run = Callable[[], dict[str, float]]  # one run of a case: ops/s per phase


@dataclass
class Case:
    name: str
    n: int
    phases: tuple[str, ...]
    runs: list[dict[str, float]] = field(default_factory=list)  # phase -> ops/s, per repeat

    def summary(self, phase: str) -> Span | None:
        return span(run[phase] for run in self.runs if phase in run)


# -- AsyncDataStore ------------------------------------------------------------------------


async def async_phase(
    store: aiokv.AsyncDataStore,
    phase: str,
    keys: Sequence[str],
    values: Sequence[Value],
    tasks: int,
) -> float:
    """Run one phase over every key with ``tasks`` coroutines; return the seconds it took.

    The dataset cases time their ``await`` baselines with it too, so that each ratio they
    report is against the same loop as the cases of the table above them.
    """

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
    values: Sequence[Value],
    tasks: int,
    phases: Sequence[str],
    durability: str,
) -> dict[str, float]:
    rates: dict[str, float] = {}
    async with aiokv.AsyncDataStore(path, durability=durability) as store:  # type: ignore[arg-type]
        for phase in phases:
            seconds = await async_phase(store, phase, keys, values, tasks)
            rates[phase] = len(keys) / seconds
    return rates


def run_async(
    base: Path | None,
    keys: Sequence[str],
    values: Sequence[Value],
    phases: Sequence[str],
    *,
    tasks: int,
    durability: str = "flush",
    loop: str = "asyncio",
) -> dict[str, float]:
    """``loop``: ``asyncio``, or ``uvloop`` (which must be installed)."""
    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=base) as tmp:
        work = _async_run(Path(tmp) / "store", keys, values, tasks, phases, durability)
        if loop == "uvloop":
            import uvloop

            return uvloop.run(work)
        return asyncio.run(work)


# -- DataStore -----------------------------------------------------------------------------


def _sync_phase(
    store: aiokv.DataStore,
    phase: str,
    keys: Sequence[str],
    values: Sequence[Value],
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
    values: Sequence[Value],
    phases: Sequence[str],
    *,
    threads: int,
) -> dict[str, float]:
    rates: dict[str, float] = {}
    with (
        tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=base) as tmp,
        aiokv.DataStore(Path(tmp) / "store") as store,
    ):
        for phase in phases:
            seconds = _sync_phase(store, phase, keys, values, threads)
            rates[phase] = len(keys) / seconds
    return rates


# -- the store's size ----------------------------------------------------------------------


async def _fill(path: Path, keys: Sequence[str], values: Sequence[Value]) -> int:
    async with aiokv.AsyncDataStore(path) as store:
        await async_phase(store, "create", keys, values, 1)
        await async_phase(store, "read", keys, values, 1)  # every create must have landed
    return directory_bytes(path)


def measure_size(base: Path | None, keys: Sequence[str], values: Sequence[Value]) -> int:
    """The store directory's size in bytes after ``len(keys)`` creates (and a clean close)."""
    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=base) as tmp:
        return asyncio.run(_fill(Path(tmp) / "store", keys, values))


# -- running the cases, and the report -----------------------------------------------------


def run_cases(plans: Sequence[tuple[Case, Run]], repeat: int) -> list[Case]:
    """Run every case ``repeat`` times. Repeats are interleaved (every case once, then again)
    so that a burst of noise on a shared machine spreads over the cases instead of landing on
    one."""
    for run_number in range(repeat):
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
            print(f"  run {run_number + 1}/{repeat} {case.name:<17} {shown}", flush=True)
    return [case for case, _run in plans]


def print_cases(cases: Sequence[Case]) -> None:
    header = ["case", "n", *(f"{phase}s/s median (min-max)" for phase in PHASES)]
    rows = []
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
    print_table(header, rows)


def document(
    info: dict[str, Any],
    value_bytes: int,
    repeat: int,
    cases: Sequence[Case],
    size: tuple[int, int] | None,
) -> dict[str, Any]:
    """The JSON of a run; ``size`` is the keys of the store measured and its bytes (None when
    the core cases did not run)."""
    return {
        "machine": info,
        "command": command(),
        "value_bytes": value_bytes,
        "repeat": repeat,
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
        "directory_bytes": None if size is None else {"keys": size[0], "bytes": size[1]},
    }

"""The targets of the store's performance work, checked against the figures of a run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from _bench.peers.config import ASYNC_TASKS, BATCH, LATENCY_SIZES, NESTED, THREADS
from _bench.peers.latency import LatencyRow
from _bench.peers.reopen import ReopenRow
from _bench.peers.results import Workload
from _bench.peers.runners import (
    AIOKV,
    PEER,
    aiokv_async,
    aiokv_create_many,
    aiokv_gather,
    aiokv_sync,
    asyncio_floor,
    event_loops,
    rocksdict_write_batch,
)
from _bench.text import GE, LE, TIMES, fmt_rate

# The rows the targets read, on asyncio's default loop unless a target names another.
ONE_TASK = aiokv_async(1).name
MANY_TASKS = aiokv_async(ASYNC_TASKS).name
GATHER = aiokv_gather(ASYNC_TASKS).name
GATHER_FLOOR = asyncio_floor(ASYNC_TASKS, gather=True).name
SHAPES = (("create", "1 KB"), (NESTED, "1 KB nested"))  # each 1 KB create phase, its label
CREATE_MANY = aiokv_create_many(BATCH).name
WRITE_BATCH = rocksdict_write_batch(BATCH).name


@dataclass
class Target:
    name: str
    threshold: float
    value: float | None
    detail: str
    at_most: bool = False  # the figure must stay at or under the threshold

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value <= self.threshold if self.at_most else self.value >= self.threshold

    def line(self) -> str:
        if self.value is None:
            return f"{self.name}: n/a ({self.detail})"
        verdict = "met" if self.met else "not met"
        return f"{self.name}: {self.detail} \u2014 {verdict}"


def rate_of(workload: Workload | None, name: str, phase: str) -> float | None:
    if workload is None:
        return None
    row = workload.row(name)
    return row.median(phase) if row is not None else None


def ratio_target(
    name: str, threshold: float, ours: float | None, theirs: float | None, what: str
) -> Target:
    if ours is None or theirs is None:
        return Target(name, threshold, None, f"not measured: {what}")
    ratio = ours / theirs
    return Target(
        name,
        threshold,
        ratio,
        f"{ratio:.2f}{TIMES} ({fmt_rate(ours)} vs {fmt_rate(theirs)} ops/s)",
    )


def best_lmdb(workload: Workload | None, phase: str, against: str) -> float | None:
    """The faster of lmdb's two settings, among the rows run with as many keys as the aiokv
    row ``against``: a target against lmdb is met only if both are beaten on the same size."""
    if workload is None or (ours := workload.row(against)) is None:
        return None
    rates = [
        rate
        for row in workload.rows
        if row.runner.series in ("lmdb", "lmdb sync=False")
        and row.n == ours.n
        and (rate := row.median(phase)) is not None
    ]
    return max(rates) if rates else None


def targets(
    found: dict[str, Workload],
    latency: Sequence[LatencyRow],
    reopen: Sequence[ReopenRow],
) -> list[Target]:
    """The targets of the store's performance work, against the figures of this run."""
    return [
        *lmdb_targets(found.get("1kb"), found.get("mixed")),
        *create_targets(found.get("1kb"), found.get("fsync")),
        *floor_targets(found.get("1kb")),
        *large_targets(found.get("16kb")),
        *reopen_targets(reopen),
        latency_target(latency),
    ]


def lmdb_targets(small: Workload | None, mixed: Workload | None) -> list[Target]:
    """Reads of 1 KB values, from a task and from a thread, and the 90/10 mix, against lmdb."""
    one_thread, threads = aiokv_sync(1).name, aiokv_sync(THREADS).name
    return [
        ratio_target(
            f"await read 1 KB {GE} 1.5{TIMES} lmdb",
            1.5,
            rate_of(small, ONE_TASK, "read"),
            best_lmdb(small, "read", ONE_TASK),
            "the 1kb workload",
        ),
        ratio_target(
            f"DataStore 1-thread read 1 KB {GE} 1.5{TIMES} lmdb",
            1.5,
            rate_of(small, one_thread, "read"),
            best_lmdb(small, "read", one_thread),
            "the 1kb workload",
        ),
        ratio_target(
            f"DataStore {THREADS}-thread 90/10 mix {GE} 1.2{TIMES} lmdb",
            1.2,
            rate_of(mixed, threads, "mixed"),
            best_lmdb(mixed, "mixed", threads),
            "the mixed workload",
        ),
    ]


def create_targets(small: Workload | None, durable: Workload | None) -> list[Target]:
    """Creates of 1 KB values, flat and nested, against rocksdict and diskcache; durable ones
    against lmdb."""
    rocksdict = [
        ratio_target(
            f"await create {label}, {ASYNC_TASKS} tasks {GE} 1.5{TIMES} rocksdict put",
            1.5,
            rate_of(small, MANY_TASKS, phase),
            rate_of(small, "rocksdict", phase),
            "the 1kb workload with rocksdict",
        )
        for phase, label in SHAPES
    ]
    gather = ratio_target(
        f"gather create 1 KB, {ASYNC_TASKS} fresh tasks per batch {GE} 1.5{TIMES} rocksdict put",
        1.5,
        rate_of(small, GATHER, "create"),
        rocksdict_rate := rate_of(small, "rocksdict", "create"),
        "the 1kb workload with rocksdict",
    )
    floor = rate_of(small, GATHER_FLOOR, "create")
    if gather.value is not None and floor is not None and rocksdict_rate:
        gather.detail += f"; the asyncio floor gathered: {floor / rocksdict_rate:.2f}{TIMES}"
    return [
        *rocksdict,
        gather,
        ratio_target(
            f"create_many {BATCH:,} {TIMES} 1 KB {GE} 1.5{TIMES} rocksdict WriteBatch",
            1.5,
            rate_of(small, CREATE_MANY, "create"),
            rate_of(small, WRITE_BATCH, "create"),
            "the 1kb workload with rocksdict",
        ),
        ratio_target(
            f"await create 1 KB, 1 task {GE} 3{TIMES} diskcache add",
            3.0,
            rate_of(small, ONE_TASK, "create"),
            rate_of(small, "diskcache", "create"),
            "the 1kb workload with diskcache",
        ),
        ratio_target(
            f"fsync create, {ASYNC_TASKS} tasks {GE} 10{TIMES} lmdb sync=True",
            10.0,
            rate_of(durable, aiokv_async(ASYNC_TASKS, "fsync").name, "create"),
            rate_of(durable, "lmdb (sync=True), 1 writer", "create"),
            "the fsync workload with lmdb",
        ),
    ]


def floor_targets(small: Workload | None) -> list[Target]:
    """aiokv's creates from ``ASYNC_TASKS`` tasks against the asyncio floor's on the same
    event loop, flat and nested values."""
    return [
        ratio_target(
            f"await create {label}, {ASYNC_TASKS} tasks {GE} 0.5{TIMES} asyncio floor [{loop}]",
            0.5,
            rate_of(small, aiokv_async(ASYNC_TASKS, loop=loop).name, phase),
            rate_of(small, asyncio_floor(ASYNC_TASKS, loop).name, phase),
            "the 1kb workload",
        )
        for loop in event_loops()[0]
        for phase, label in SHAPES
    ]


def large_targets(large: Workload | None) -> list[Target]:
    """16 KB creates and reads, aiokv's best mode against the best peer."""
    result = []
    for phase in ("create", "read"):
        ours = large.best(phase, AIOKV) if large else None
        theirs = large.best(phase, PEER) if large else None
        target = ratio_target(
            f"16 KB {phase} {GE} 1.5{TIMES} best peer",
            1.5,
            ours[1] if ours else None,
            theirs[1] if theirs else None,
            "the 16kb workload",
        )
        if ours and theirs:
            target.detail += f"; {ours[0].runner.name} vs {theirs[0].runner.name}"
        result.append(target)
    return result


def reopen_targets(reopen: Sequence[ReopenRow]) -> list[Target]:
    """aiokv's memory per key after a reopen (its anonymous part: the pages of the files it
    maps are page cache, not the process's own), and the reopen's time."""
    ours_reopen = next((row for row in reopen if row.series == AIOKV), None)
    per_key = ours_reopen.span("anon_bytes_per_key") if ours_reopen else None
    seconds = ours_reopen.span("seconds") if ours_reopen else None
    keys = f"{ours_reopen.keys:,} keys" if ours_reopen else "the reopen workload"
    return [
        Target(
            f"anonymous memory after reopen {LE} 32 B/key",
            32.0,
            per_key[0] if per_key else None,
            f"{per_key[0]:,.1f} B/key ({keys})" if per_key else "not measured: reopen",
            at_most=True,
        ),
        Target(
            f"reopen {LE} 0.5 s",
            0.5,
            seconds[0] if seconds else None,
            f"{seconds[0]:.3f} s ({keys})" if seconds else "not measured: reopen",
            at_most=True,
        ),
    ]


def latency_target(latency: Sequence[LatencyRow]) -> Target:
    """aiokv's read p50 at the largest store against the smallest."""
    ours_latency = sorted(
        (row for row in latency if row.runner.family == AIOKV), key=lambda row: row.size
    )
    if len(ours_latency) < 2:
        return Target(
            f"read p50 at {LATENCY_SIZES[-1]:,} keys {LE} 1.3{TIMES} p50 at {LATENCY_SIZES[0]:,}",
            1.3,
            None,
            "not measured: latency",
            at_most=True,
        )
    low, high = ours_latency[0], ours_latency[-1]
    ratio = high.median("p50_us") / low.median("p50_us")
    return Target(
        f"read p50 at {high.size:,} keys {LE} 1.3{TIMES} p50 at {low.size:,}",
        1.3,
        ratio,
        f"{ratio:.2f}{TIMES} ({high.median('p50_us'):.1f} vs {low.median('p50_us'):.1f} us)",
        at_most=True,
    )

"""The throughput workloads: ``1kb`` and ``16kb`` (create, read, delete), ``mixed`` (90% reads,
10% creates from 4 threads) and ``fsync`` (durable creates)."""

from __future__ import annotations

import random
import shutil
from collections.abc import Sequence
from pathlib import Path

from _bench.peers.config import (
    ASYNC_TASKS,
    MIXED_CREATE_SHARE,
    NESTED,
    SEED,
    SMALL_VALUE_BYTES,
    THREADS,
)
from _bench.peers.phases import run_phases, run_threads, sync_work
from _bench.peers.results import Plan, Row, Workload, run_workload
from _bench.peers.runners import (
    UVLOOP,
    Runner,
    aiokv_sync,
    async_runners,
    asyncio_floor,
    batch_runners,
    event_loops,
    fsync_runners,
    peer_runners,
)
from _bench.stores.base import SyncOps, WrongValueError
from _bench.values import Value, make_keys, nested_values, sized_values

MixedPlan = Sequence[tuple[bool, int]]  # one thread's operations: (is_create, key index)


def crud_workload(
    key: str,
    n: int,
    slow_n: int,
    value_bytes: int,
    repeat: int,
    base: Path | None,
    *,
    nested: bool = False,
    batch: int = 0,
) -> Workload:
    """Create, read and delete ``n`` keys of ``value_bytes``-byte flat values; with ``nested``,
    also the creates of nested values of the same size (``NESTED``) on a fresh store, by the
    runners ``measures_nested`` names; with ``batch``, also the creates of the batch rows,
    ``batch`` keys per call."""
    phases = ("create", NESTED, "read", "delete") if nested else ("create", "read", "delete")
    title = f"{key}: create, random read, delete of {n:,} keys, {value_bytes:,}-byte values"
    if nested:
        title += "; then creates of nested values of that size on a fresh store"
    workload = Workload(key, title, phases)
    loops, missing = event_loops()
    runners = [runner for loop in loops for runner in async_runners(ASYNC_TASKS, loop)]
    runners += [aiokv_sync(1), aiokv_sync(THREADS)]
    peers, missing_peers = peer_runners()
    runners += peers
    runners += [asyncio_floor(ASYNC_TASKS, loop, gather=g) for loop in loops for g in (False, True)]
    workload.notes += missing + missing_peers
    workload.notes += crud_notes(loops, nested)
    if batch:
        batched, missing_batch = batch_runners(batch)
        runners += batched
        workload.notes += missing_batch
        workload.notes.append(
            f"aiokv create_many, rocksdict WriteBatch: creates only, {batch:,} keys per call "
            "from one task or thread, the batches made before the clock starts; every key then "
            "read back untimed. A batch is not one operation: these rows are ranked with "
            "neither aiokv's modes nor the peers, only against each other"
        )
    keys = make_keys(n)
    values = sized_values(n, value_bytes)
    nested_of = nested_values(n, value_bytes) if nested else None
    plans = []
    for runner in runners:
        count = min(n, slow_n) if runner.slow else n
        shape = nested_of[:count] if nested_of and measures_nested(runner) else None
        plans.append((Row(runner, count), crud_plan(runner, keys[:count], values[:count], shape)))
    reduced = sorted({row.runner.name for row, _plan in plans if row.n < n})
    if reduced:
        workload.notes.append(
            f"{', '.join(reduced)}: {min(n, slow_n):,} keys (--slow-n), a few thousand "
            f"operations per second each; their rates are per operation all the same, but "
            f"the best-mode and best-peer ratios rank only the rows of {n:,} keys"
        )
    run_workload(workload, plans, repeat, base)
    return workload


def measures_nested(runner: Runner) -> bool:
    """The runners the nested values are created by: aiokv's and the asyncio floor's
    ``ASYNC_TASKS``-task modes (awaits and gathers) on each loop, and rocksdict."""
    return runner.series == "rocksdict" or (runner.is_async and runner.workers == ASYNC_TASKS)


def crud_notes(loops: Sequence[str], nested: bool) -> list[str]:
    """What the async rows, the asyncio floor and the nested creates of a crud workload are."""
    notes = [
        f"aiokv gather: each batch of {ASYNC_TASKS} creates one asyncio.gather of fresh "
        "coroutines, creates only (every key then read back untimed); aiokv await, "
        f"{ASYNC_TASKS} tasks: the keys split among {ASYNC_TASKS} tasks, each awaiting its "
        "operations in turn",
        f"asyncio floor: {ASYNC_TASKS} tasks queue orjson-encoded, CRC-32'd records for one "
        "writer task, one os.write per batch; no index, no delete: creates only, then every "
        "key read back untimed; asyncio floor gather: the same floor, each batch of "
        f"{ASYNC_TASKS} creates one asyncio.gather of fresh coroutines (the ceiling of aiokv "
        "gather: asyncio makes a task per coroutine)",
    ]
    if UVLOOP in loops:
        notes.append("[uvloop]: on uvloop's event loop; the other async rows on asyncio's default")
    if nested:
        notes.append(
            f"{NESTED}: the same keys on a fresh store, values of an id, a 50-int array, 30 "
            "short string and integer fields, bools and nulls, padded to the same size; "
            f"aiokv's and the asyncio floor's {ASYNC_TASKS}-task rows and rocksdict only"
        )
    return notes


def crud_plan(
    runner: Runner,
    keys: Sequence[str],
    values: Sequence[Value],
    nested: Sequence[Value] | None,
) -> Plan:
    """One run of ``runner``: create, read and delete ``values`` under ``keys`` on a fresh store,
    then, if ``nested`` is given, create those under the same keys on another."""

    def plan(path: Path) -> dict[str, float]:
        rates = run_phases(runner, path, ("create", "read", "delete"), keys, values)
        if nested is not None:
            # The first store goes before the second is made: its pages still waiting to be
            # written back are dropped, not flushed while the nested creates are timed.
            shutil.rmtree(path)
            rates[NESTED] = run_phases(runner, path, ("create",), keys, nested)["create"]
        return rates

    return plan


def mixed_plans(n: int, ops_total: int, threads: int) -> list[list[tuple[bool, int]]]:
    """Each thread's share of the operations: (is_create, key index).

    Reads pick random pre-loaded keys; creates take new keys, thread ``t`` the indices
    ``n + t``, ``n + t + threads``, ... so that no two threads create the same key.
    """
    plans = []
    for t in range(threads):
        rng = random.Random(SEED + t)
        share = ops_total // threads + (1 if t < ops_total % threads else 0)
        fresh = n + t
        plan = []
        for _ in range(share):
            if rng.random() < MIXED_CREATE_SHARE:
                plan.append((True, fresh))
                fresh += threads
            else:
                plan.append((False, rng.randrange(n)))
        plans.append(plan)
    return plans


def run_mixed(
    runner: Runner,
    path: Path,
    keys: Sequence[str],
    values: Sequence[Value],
    n: int,
    plans: Sequence[MixedPlan],
) -> dict[str, float]:
    runner.load(path, keys[:n], values.__getitem__)
    assert runner.connect is not None
    handle = runner.connect(path)

    def work(ops: SyncOps, plan: MixedPlan) -> None:
        create, read = ops.create, ops.read
        for is_create, i in plan:
            if is_create:
                create(keys[i], values[i])
            elif read(keys[i]) != values[i]:
                raise WrongValueError(f"read({keys[i]!r}) is not the value written")

    try:
        seconds = run_threads(handle, plans, work)
        created = [i for plan in plans for is_create, i in plan if is_create]
        sync_work("read", keys, values)(handle.ops(), created)  # every create landed
    finally:
        handle.close()
    return {"mixed": sum(len(plan) for plan in plans) / seconds}


def mixed_workload(n: int, repeat: int, base: Path | None) -> Workload:
    workload = Workload(
        "mixed",
        f"mixed: {n:,} keys pre-loaded, then {n:,} operations (90% reads, 10% creates, "
        f"{SMALL_VALUE_BYTES:,}-byte values) split among {THREADS} threads",
        ("mixed",),
    )
    runners = [aiokv_sync(THREADS)]
    peers, missing = peer_runners(THREADS, with_async=False)
    runners += peers
    workload.notes += missing
    workload.notes.append(
        "aiokv: one DataStore shared by the threads; lmdb: one environment, a transaction per "
        "operation; rocksdict, diskcache, sqlitedict, raw floor: one store shared; sqlite3: a "
        "connection per thread; aiosqlite is asyncio-only and not run here"
    )
    thread_plans = mixed_plans(n, n, THREADS)
    top = max(i for plan in thread_plans for _c, i in plan) + 1
    keys = make_keys(top)
    values = sized_values(top, SMALL_VALUE_BYTES)
    plans = [
        (
            Row(runner, n),
            lambda path, r=runner: run_mixed(r, path, keys, values, n, thread_plans),
        )
        for runner in runners
    ]
    run_workload(workload, plans, repeat, base)
    return workload


def fsync_workload(n: int, repeat: int, base: Path | None) -> Workload:
    workload = Workload(
        "fsync",
        f"fsync: {n:,} creates of {SMALL_VALUE_BYTES:,}-byte values, each synced to disk "
        "before it returns",
        ("create",),
    )
    runners, notes = fsync_runners(ASYNC_TASKS)
    workload.notes += notes
    keys = make_keys(n)
    values = sized_values(n, SMALL_VALUE_BYTES)
    plans = [
        (
            Row(runner, n),
            lambda path, r=runner: run_phases(r, path, ("create",), keys, values),
        )
        for runner in runners
    ]
    run_workload(workload, plans, repeat, base)
    return workload

"""Timing a phase (every create, every read or every delete) from threads or from tasks.

Every read is compared with the value written, and a sample of deleted keys must be gone.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from _bench.peers.config import SEED
from _bench.peers.runners import UVLOOP, Runner, uvloop
from _bench.stores.base import AsyncOps, SyncHandle, SyncOps, WrongValueError
from _bench.values import Value, chunks, shuffled

T = TypeVar("T")


def run_threads(
    handle: SyncHandle,
    parts: Sequence[Sequence[Any]],
    work: Callable[[SyncOps, Sequence[Any]], None],
) -> float:
    """Run ``work`` over each part in a thread of its own; return the seconds until all are done.

    The clock starts when every thread is ready and stops when every one has finished its
    part (and the store has drained its queued writes), before the threads close their own
    connections: closing the last one may checkpoint, which is not part of the work.
    """
    if len(parts) == 1:
        ops = handle.ops()
        started = time.perf_counter()
        work(ops, parts[0])
        ops.drain()
        return time.perf_counter() - started
    errors: list[BaseException] = []
    start_gate = threading.Barrier(len(parts) + 1)
    end_gate = threading.Barrier(len(parts) + 1)

    def main(part: Sequence[Any]) -> None:
        own: SyncHandle | None = None
        try:
            own = handle.for_thread()
            start_gate.wait()
            work(own.ops(), part)
            end_gate.wait()
        except threading.BrokenBarrierError:
            pass
        except BaseException as exc:
            errors.append(exc)
            start_gate.abort()  # nobody waits for a thread that failed
            end_gate.abort()
        finally:
            if own is not None and own is not handle:
                own.close_thread()

    threads = [threading.Thread(target=main, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    try:
        start_gate.wait()
        started = time.perf_counter()
        end_gate.wait()
        handle.ops().drain()
    except threading.BrokenBarrierError:
        pass  # a thread failed: its error is raised below, once every thread has stopped
    seconds = time.perf_counter() - started
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return seconds


async def run_tasks(
    parts: Sequence[Sequence[Any]], work: Callable[[Sequence[Any]], Awaitable[None]]
) -> float:
    started = time.perf_counter()
    if len(parts) == 1:
        await work(parts[0])
    else:
        await asyncio.gather(*(work(part) for part in parts))
    return time.perf_counter() - started


def sync_work(
    phase: str, keys: Sequence[str], values: Sequence[Value]
) -> Callable[[SyncOps, Sequence[int]], None]:
    """The loop of one phase over some key indices, with every read checked."""

    def create(ops: SyncOps, part: Sequence[int]) -> None:
        call = ops.create
        for i in part:
            call(keys[i], values[i])

    def read(ops: SyncOps, part: Sequence[int]) -> None:
        call = ops.read
        for i in part:
            if call(keys[i]) != values[i]:
                raise WrongValueError(f"read({keys[i]!r}) is not the value written")

    def delete(ops: SyncOps, part: Sequence[int]) -> None:
        call = ops.delete
        for i in part:
            call(keys[i])

    return {"create": create, "read": read, "delete": delete}[phase]


def async_work(
    ops: AsyncOps, phase: str, keys: Sequence[str], values: Sequence[Value]
) -> Callable[[Sequence[int]], Awaitable[None]]:
    async def create(part: Sequence[int]) -> None:
        call = ops.create
        for i in part:
            await call(keys[i], values[i])

    async def read(part: Sequence[int]) -> None:
        call = ops.read
        for i in part:
            if await call(keys[i]) != values[i]:
                raise WrongValueError(f"read({keys[i]!r}) is not the value written")

    async def delete(part: Sequence[int]) -> None:
        call = ops.delete
        for i in part:
            await call(keys[i])

    return {"create": create, "read": read, "delete": delete}[phase]


def gather_creates(
    ops: AsyncOps, keys: Sequence[str], values: Sequence[Value], batch: int
) -> Callable[[Sequence[int]], Awaitable[None]]:
    """Creates as an application firing them at once makes them: each ``batch`` of them one
    ``asyncio.gather`` of fresh coroutines."""

    async def create(part: Sequence[int]) -> None:
        call = ops.create
        for start in range(0, len(part), batch):
            await asyncio.gather(*(call(keys[i], values[i]) for i in part[start : start + batch]))

    return create


def batch_pairs(
    keys: Sequence[str], values: Sequence[Value], part: Sequence[int], batch: int
) -> list[list[tuple[str, Value]]]:
    """``part``'s keys and values cut into batches of ``batch`` pairs, made before the clock
    starts: the batch rows time the stores' batch writes, not the making of their arguments."""
    return [
        [(keys[i], values[i]) for i in part[start : start + batch]]
        for start in range(0, len(part), batch)
    ]


def sync_batches(
    batches: Sequence[Sequence[tuple[str, Value]]],
) -> Callable[[SyncOps, Sequence[Any]], None]:
    def create(ops: SyncOps, _part: Sequence[Any]) -> None:
        call = ops.create_many
        if call is None:
            raise TypeError("this store has no batch write")
        for pairs in batches:
            call(pairs)

    return create


def async_batches(
    ops: AsyncOps, batches: Sequence[Sequence[tuple[str, Value]]]
) -> Callable[[Sequence[Any]], Awaitable[None]]:
    async def create(_part: Sequence[Any]) -> None:
        call = ops.create_many
        if call is None:
            raise TypeError("this store has no batch write")
        for pairs in batches:
            await call(pairs)

    return create


def phase_order(phase: str, n: int) -> list[int]:
    """Creates and deletes in key order, reads in a random order."""
    return shuffled(n, SEED + n) if phase == "read" else list(range(n))


def check_gone_sync(ops: SyncOps, keys: Sequence[str]) -> None:
    for key in keys:
        try:
            ops.read(key)
        except KeyError:
            continue
        raise WrongValueError(f"{key!r} is readable after its delete")


async def check_gone_async(ops: AsyncOps, keys: Sequence[str]) -> None:
    for key in keys:
        try:
            await ops.read(key)
        except KeyError:
            continue
        raise WrongValueError(f"{key!r} is readable after its delete")


def run_phases(
    runner: Runner,
    path: Path,
    phases: Sequence[str],
    keys: Sequence[str],
    values: Sequence[Value],
) -> dict[str, float]:
    """Open a fresh store at ``path``, time each phase over every key, check, close.

    After the creates of a create-only run (``fsync``, or a ``creates_only`` runner), every key
    is read back untimed.
    """
    if runner.creates_only:
        phases = [phase for phase in phases if phase == "create"]
    if runner.aconnect is not None:
        return run_on(runner.loop, _async_phases(runner, path, phases, keys, values))
    return _sync_phases(runner, path, phases, keys, values)


def run_on(loop: str, work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` in a new event loop: asyncio's default, or ``uvloop``'s."""
    if loop == UVLOOP:
        assert uvloop is not None
        return uvloop.run(work)  # type: ignore[no-any-return]
    return asyncio.run(work)


async def _async_phases(
    runner: Runner,
    path: Path,
    phases: Sequence[str],
    keys: Sequence[str],
    values: Sequence[Value],
) -> dict[str, float]:
    assert runner.aconnect is not None
    n = len(keys)
    rates: dict[str, float] = {}
    handle = await runner.aconnect(path)
    try:
        ops = handle.ops()
        for phase in phases:
            order = phase_order(phase, n)
            if runner.batch and phase == "create":
                batches = batch_pairs(keys, values, order, runner.batch)
                seconds = await run_tasks([order], async_batches(ops, batches))
            elif runner.gather and phase == "create":
                work = gather_creates(ops, keys, values, runner.workers)
                seconds = await run_tasks([order], work)
            else:
                parts = chunks(order, runner.workers)
                seconds = await run_tasks(parts, async_work(ops, phase, keys, values))
            rates[phase] = n / seconds
        if "read" not in phases:
            await async_work(ops, "read", keys, values)(range(n))
        if "delete" in phases:
            await check_gone_async(ops, keys[:: max(1, n // 200)])
    finally:
        await handle.close()
    return rates


def _sync_phases(
    runner: Runner,
    path: Path,
    phases: Sequence[str],
    keys: Sequence[str],
    values: Sequence[Value],
) -> dict[str, float]:
    assert runner.connect is not None
    n = len(keys)
    rates: dict[str, float] = {}
    handle = runner.connect(path)
    try:
        for phase in phases:
            order = phase_order(phase, n)
            if runner.batch and phase == "create":
                work = sync_batches(batch_pairs(keys, values, order, runner.batch))
                rates[phase] = n / run_threads(handle, [order], work)
                continue
            parts = chunks(order, runner.workers)
            rates[phase] = n / run_threads(handle, parts, sync_work(phase, keys, values))
        if "read" not in phases:
            sync_work("read", keys, values)(handle.ops(), range(n))
        if "delete" in phases:
            check_gone_sync(handle.ops(), keys[:: max(1, n // 200)])
    finally:
        handle.close()
    return rates

"""The ``latency`` workload: p50 and p99 of single reads of random keys, at several sizes."""

from __future__ import annotations

import asyncio
import gc
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from _bench.peers.config import LOAD_LIMIT_S, SEED, TMP_PREFIX
from _bench.peers.runners import Runner, latency_runners
from _bench.stats import Span, percentile, span_of
from _bench.stores.base import AsyncHandle, AsyncOps, SyncHandle, SyncOps, WrongValueError
from _bench.values import make_keys, small_value


@dataclass
class LatencyRow:
    runner: Runner
    size: int
    path: Path
    load_seconds: float
    runs: list[dict[str, float]] = field(default_factory=list)  # p50_us, p99_us, reads_per_s

    def median(self, name: str) -> float:
        return self.span(name)[0]

    def span(self, name: str) -> Span:
        return span_of(run[name] for run in self.runs)


def store_dir(where: Path, series: str) -> Path:
    """Where a runner's store of a given size is built: one folder per library."""
    return where / series.replace(" ", "-").replace("=", "-")


def timed_reads_sync(ops: SyncOps, keys: Sequence[str], order: Sequence[int]) -> list[int]:
    clock = time.perf_counter_ns
    read = ops.read
    samples = []
    for i in order:
        key = keys[i]
        started = clock()
        value = read(key)
        samples.append(clock() - started)
        if value != {"i": i}:
            raise WrongValueError(f"read({key!r}) is not the value written")
    return samples


async def timed_reads_async(ops: AsyncOps, keys: Sequence[str], order: Sequence[int]) -> list[int]:
    clock = time.perf_counter_ns
    read = ops.read
    samples = []
    for i in order:
        key = keys[i]
        started = clock()
        value = await read(key)
        samples.append(clock() - started)
        if value != {"i": i}:
            raise WrongValueError(f"read({key!r}) is not the value written")
    return samples


def latency_workload(
    sizes: Sequence[int],
    reads: int,
    repeat: int,
    base: Path | None,
    keep: dict[str, Path],
    keep_size: int,
    keep_dir: Path | None,
) -> tuple[list[LatencyRow], list[str]]:
    """Load each runner's store at each size, then time single reads, repeats interleaved.

    The stores of size ``keep_size`` are built in ``keep_dir`` and listed in ``keep`` (for the
    reopen measurement) instead of being deleted.
    """
    runners, notes = latency_runners()
    rows: list[LatencyRow] = []
    skipped: set[str] = set()
    previous: dict[str, tuple[int, float]] = {}  # runner -> (size, load seconds)
    print(
        f"latency: p50/p99 of single reads of random keys, values {{'i': n}}, "
        f"{reads:,} timed reads per runner and repeat, sizes {', '.join(f'{s:,}' for s in sizes)}",
        flush=True,
    )
    for note in notes:
        print(f"  note: {note}")
    for size in sizes:
        keys = make_keys(size)
        with tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=base) as tmp:
            where = keep_dir if size == keep_size and keep_dir is not None else Path(tmp)
            size_rows: list[LatencyRow] = []
            for runner in runners:
                if runner.name in skipped:
                    continue
                why = too_slow(runner, size, previous.get(runner.name))
                if why is not None:
                    skipped.add(runner.name)
                    notes.append(why)
                    print(f"  note: {why}", flush=True)
                    continue
                row = load_row(runner, store_dir(where, runner.series), keys)
                previous[runner.name] = (size, row.load_seconds)
                if size == keep_size:
                    keep[runner.series] = row.path
                size_rows.append(row)
            run_latency_passes(size_rows, keys, reads, repeat)
            rows += size_rows
    return rows, notes


def too_slow(runner: Runner, size: int, previous: tuple[int, float] | None) -> str | None:
    """Why ``runner`` skips the store of ``size`` keys, if its load would take too long,
    estimated from its ``previous`` load (keys, seconds)."""
    if previous is None:
        return None
    before_size, before_s = previous
    estimate = before_s * size / before_size
    if estimate <= LOAD_LIMIT_S:
        return None
    return (
        f"{runner.name}: skipped at {size:,} keys and above: its load would "
        f"take about {estimate:,.0f} s ({before_size / before_s:,.0f} keys/s "
        f"at {before_size:,})"
    )


def load_row(runner: Runner, path: Path, keys: Sequence[str]) -> LatencyRow:
    """Build ``runner``'s store of ``keys`` at ``path``, timed."""
    started = time.perf_counter()
    try:
        runner.load(path, keys, small_value)
    except Exception as exc:
        raise SystemExit(f"latency: {runner.name} failed to load: {exc!r}") from exc
    load_s = time.perf_counter() - started
    print(f"  {len(keys):,} keys: {runner.name} loaded in {load_s:.1f} s", flush=True)
    return LatencyRow(runner, len(keys), path, load_s)


def run_latency_passes(
    rows: Sequence[LatencyRow], keys: Sequence[str], reads: int, repeat: int
) -> None:
    """Open every store of one size, then run ``repeat`` passes of timed reads over them."""
    loop = asyncio.new_event_loop()
    handles: list[SyncHandle | AsyncHandle] = []
    try:
        for row in rows:
            runner = row.runner
            if runner.aconnect is not None:
                handles.append(loop.run_until_complete(runner.aconnect(row.path)))
            else:
                assert runner.connect is not None
                handles.append(runner.connect(row.path))
        for run in range(repeat):
            rng = random.Random(SEED + run)
            order = [rng.randrange(len(keys)) for _ in range(reads)]
            for row, handle in zip(rows, handles, strict=True):
                figures = timed_pass(loop, row, handle, keys, order)
                row.runs.append(figures)
                print(
                    f"  {len(keys):,} keys {run + 1}/{repeat} {row.runner.name:<24} p50 "
                    f"{figures['p50_us']:.1f} us, p99 {figures['p99_us']:.1f} us, "
                    f"{figures['reads_per_s']:,.0f} reads/s",
                    flush=True,
                )
    finally:
        for handle in handles:
            if isinstance(handle, AsyncHandle):
                loop.run_until_complete(handle.close())
            else:
                handle.close()
        loop.close()


def timed_pass(
    loop: asyncio.AbstractEventLoop,
    row: LatencyRow,
    handle: SyncHandle | AsyncHandle,
    keys: Sequence[str],
    order: Sequence[int],
) -> dict[str, float]:
    """One pass of timed reads of ``keys`` in ``order``: p50, p99 and reads per second."""
    gc.collect()
    started = time.perf_counter()
    try:
        if isinstance(handle, AsyncHandle):
            samples = loop.run_until_complete(timed_reads_async(handle.ops(), keys, order))
        else:
            samples = timed_reads_sync(handle.ops(), keys, order)
    except Exception as exc:
        raise SystemExit(f"latency: {row.runner.name} failed: {exc!r}") from exc
    seconds = time.perf_counter() - started
    samples.sort()
    return {
        "p50_us": percentile(samples, 50) / 1e3,
        "p99_us": percentile(samples, 99) / 1e3,
        "reads_per_s": len(order) / seconds,
    }

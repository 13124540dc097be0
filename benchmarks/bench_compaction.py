"""Compaction under load: the size cap during churn, reopen time and memory, read latency.

Three measurements, each on a fresh store in a new temporary directory:

* ``churn``: 1,000,000 creates of 1000-byte JSON values into a store capped at 256 MiB (16 MiB
  segments), at most 50,000 keys live at once. Variant ``delete``: before each batch of 100
  creates, the oldest keys are deleted so that no more than 50,000 stay live. Variant ``ttl``:
  no deletes; every key has ``ttl=10`` and a ``ManualClock`` moves 1 s per 5,000 creates, so
  about 50,000 are live. After every batch the directory's size is summed and checked against
  ``max_size``; no create may fail with ``StoreFullError``, and at the end the store must hold
  ``disk_bytes <= 1.5 * live_bytes + segment size``. Every key still live is then read back.
* ``reopen``: a store of 1,000,000 small keys (``{"i": n}``) is built and closed, then opened
  three times, each in a fresh Python process: the wall time of ``await store.open()`` and the
  resident memory it added, per key.
* ``latency``: 300,000 keys of 1000-byte values in 64 MiB segments, every other key deleted,
  background compaction off. Reads of random live keys, one at a time from one task, are timed
  first with nothing else running, then while ``store.compact()`` runs in another task. The
  target: p99 during compaction at most 5 ms.

``--quick`` makes every count, ``max_size`` and segment size ten times smaller. Run from the
repository root::

    python benchmarks/bench_compaction.py                      # the full run, about 5 minutes
    python benchmarks/bench_compaction.py --quick              # a smoke test, about 30 s
    python benchmarks/bench_compaction.py --only latency       # one measurement
    python benchmarks/bench_compaction.py --json results.json  # also write every figure

The exit status is 1 if any check fails (a ``StoreFullError``, the cap crossed, a lost key, the
size bound or the latency target missed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiokv

MiB = 2**20
MEASUREMENTS = ("churn", "reopen", "latency")
VALUE_BYTES = 1000
RECORD_HEADER_BYTES = 28  # a put record is this header, the key and the value

# churn
CHURN_CREATES = 1_000_000
CHURN_LIVE = 50_000
CHURN_BATCH = 100
CHURN_MAX_SIZE = 256 * MiB
CHURN_TTL_S = 10
CHURN_DEAD_RATIO = 0.3
SIZE_BOUND_FACTOR = 1.5  # disk_bytes <= 1.5 * live_bytes + one segment

# reopen
REOPEN_KEYS = 1_000_000
REOPEN_BATCH = 1000
REOPEN_REPEAT = 3

# latency
LATENCY_KEYS = 300_000
LATENCY_SEGMENT_BYTES = 64 * MiB
LATENCY_BATCH = 1000
BASELINE_READS = 200_000
LATENCY_TARGET_S = 0.005


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, passed: bool, detail: str) -> None:
        self.checks.append(Check(name, passed, detail))
        print(f"  {'PASS' if passed else 'FAIL'}  {name}: {detail}", flush=True)


# -- helpers -------------------------------------------------------------------------------


def make_value(i: int, pad: str) -> dict[str, Any]:
    return {"id": f"{i:08d}", "pad": pad}


def make_pad(value_bytes: int) -> str:
    """The padding that makes ``make_value``'s compact JSON exactly ``value_bytes`` long."""
    overhead = len(json.dumps(make_value(0, ""), separators=(",", ":")))
    pad = "x" * (value_bytes - overhead)
    assert len(json.dumps(make_value(0, pad), separators=(",", ":")).encode()) == value_bytes
    return pad


def scan_directory(path: Path) -> tuple[int, list[str]]:
    """The total size of the files in ``path`` (as ``max_size`` counts them) and their names.

    Background compaction may remove a file between the listing and its ``stat``.
    """
    total = 0
    names = []
    with os.scandir(path) as entries:
        for entry in entries:
            try:
                total += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                continue
            names.append(entry.name)
    return total, names


def proc_status(field_name: str) -> int | None:
    """A ``kB`` figure of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes; None elsewhere."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    return {
        "reads": len(ordered),
        "p50_ms": percentile(ordered, 50) * 1e3,
        "p99_ms": percentile(ordered, 99) * 1e3,
        "p999_ms": percentile(ordered, 99.9) * 1e3,
        "max_ms": ordered[-1] * 1e3,
        "over_target": sum(1 for s in ordered if s > LATENCY_TARGET_S),
    }


def mib(n: float) -> str:
    return f"{n / MiB:,.1f} MiB"


def stats_dict(stats: aiokv.StoreStats) -> dict[str, Any]:
    return {
        "live_keys": stats.live_keys,
        "live_bytes": stats.live_bytes,
        "dead_bytes": stats.dead_bytes,
        "disk_bytes": stats.disk_bytes,
        "segment_count": stats.segment_count,
        "last_compaction": stats.last_compaction,
    }


def format_stats(stats: aiokv.StoreStats) -> str:
    return (
        f"live_keys {stats.live_keys:,}, live_bytes {stats.live_bytes:,}, dead_bytes "
        f"{stats.dead_bytes:,}, disk_bytes {stats.disk_bytes:,}, segments {stats.segment_count}"
    )


async def gather_ops(coroutines: list[Any]) -> list[Any]:
    return await asyncio.gather(*coroutines, return_exceptions=True)


# -- churn ---------------------------------------------------------------------------------


@dataclass
class ChurnSettings:
    creates: int
    live: int
    batch: int
    max_size: int
    ttl_s: int


class Sampler:
    """Samples the directory after every batch: the largest size seen, and the data files."""

    def __init__(self, path: Path, max_size: int) -> None:
        self.path = path
        self.max_size = max_size
        self.samples = 0
        self.max_bytes = 0
        self.over_cap = 0
        self.first_over: tuple[int, int] | None = None  # (creates so far, bytes)
        self.data_files: set[str] = set()
        self.max_data_files = 0

    def sample(self, creates: int) -> None:
        size, names = scan_directory(self.path)
        self.samples += 1
        self.max_bytes = max(self.max_bytes, size)
        if size > self.max_size:
            self.over_cap += 1
            if self.first_over is None:
                self.first_over = (creates, size)
        data_files = [name for name in names if name.endswith(".data")]
        self.max_data_files = max(self.max_data_files, len(data_files))
        self.data_files.update(data_files)

    def removed_data_files(self) -> int:
        """Data files seen during the run that are gone now: one per compaction step."""
        _size, names = scan_directory(self.path)
        return len(self.data_files - set(names))


async def _churn(path: Path, settings: ChurnSettings, variant: str) -> dict[str, Any]:
    clock = aiokv.ManualClock() if variant == "ttl" else None
    ttl = settings.ttl_s if variant == "ttl" else None
    # The clock moves 1 s per this many creates, so about ``live`` keys are unexpired.
    per_second = settings.live // settings.ttl_s
    pad = make_pad(VALUE_BYTES)
    sampler = Sampler(path, settings.max_size)
    live: deque[tuple[str, float]] = deque()  # (key, clock time of its create), oldest first
    full_errors = 0
    first_full: str | None = None
    deletes = 0
    store = aiokv.AsyncDataStore(
        path, max_size=settings.max_size, compact_dead_ratio=CHURN_DEAD_RATIO, clock=clock
    )
    await store.open()
    try:
        sampler.sample(0)
        started = time.perf_counter()
        created = 0
        while created < settings.creates:
            n = min(settings.batch, settings.creates - created)
            if variant == "delete":
                excess = len(live) + n - settings.live
                if excess > 0:
                    doomed = [live.popleft()[0] for _ in range(excess)]
                    results = await gather_ops([store.delete(key) for key in doomed])
                    for key, result in zip(doomed, results, strict=True):
                        if isinstance(result, BaseException):
                            raise SystemExit(
                                f"churn ({variant}): delete of {key!r}, a key whose create "
                                f"returned, failed: {result!r}"
                            ) from result
                    deletes += excess
                    sampler.sample(created)
            now = clock.time() if clock is not None else 0.0
            keys = [f"c:{i:08d}" for i in range(created, created + n)]
            results = await gather_ops(
                [
                    store.create(key, make_value(i, pad), ttl=ttl)
                    for i, key in enumerate(keys, created)
                ]
            )
            for key, result in zip(keys, results, strict=True):
                if result is None:
                    live.append((key, now))
                elif isinstance(result, aiokv.StoreFullError):
                    full_errors += 1
                    if first_full is None:
                        first_full = f"create #{created:,} ({key!r}): {result}"
                else:
                    raise SystemExit(f"churn ({variant}): create of {key!r} failed: {result!r}")
            created += n
            sampler.sample(created)
            if clock is not None:
                if created % per_second == 0:
                    clock.advance(1.0)
                # Keys past their deadline are gone; drop them from the bookkeeping.
                deadline = clock.time() - settings.ttl_s
                while live and live[0][1] <= deadline:
                    live.popleft()
        elapsed = time.perf_counter() - started
        final = await store.stats()
        removed = sampler.removed_data_files()
        # Every key still live must read back; deleted or expired ones must be gone.
        lost = 0
        for key, _created_at in live:
            try:
                await store.read(key)
            except aiokv.KeyNotFoundError:
                lost += 1
        oldest = int(live[0][0][2:]) if live else settings.creates
        resurrected = 0
        for i in range(max(0, oldest - 1000), oldest):
            try:
                await store.read(f"c:{i:08d}")
                resurrected += 1
            except aiokv.KeyNotFoundError:
                pass
    finally:
        await store.close()
    segment_bytes = store.options.segment_bytes  # the default for this max_size
    bound = SIZE_BOUND_FACTOR * final.live_bytes + segment_bytes
    return {
        "variant": variant,
        "creates": settings.creates,
        "deletes": deletes,
        "batch": settings.batch,
        "max_live": settings.live,
        "ttl_s": ttl,
        "max_size": settings.max_size,
        "segment_bytes": segment_bytes,
        "seconds": elapsed,
        "creates_per_s": settings.creates / elapsed,
        "samples": sampler.samples,
        "max_dir_bytes": sampler.max_bytes,
        "max_dir_ratio": sampler.max_bytes / settings.max_size,
        "samples_over_cap": sampler.over_cap,
        "first_over_cap": sampler.first_over,
        "store_full_errors": full_errors,
        "first_store_full_error": first_full,
        "final_stats": stats_dict(final),
        "expected_live_keys": len(live),
        # What the unexpired, undeleted keys take: stats() counts expired keys until the
        # reaper drops them from the index.
        "expected_live_bytes": sum(RECORD_HEADER_BYTES + len(k) + VALUE_BYTES for k, _t in live),
        "max_data_files": sampler.max_data_files,
        "size_bound": bound,
        "size_bound_ok": final.disk_bytes <= bound,
        "compaction_steps": removed,
        "live_keys_lost": lost,
        "dead_keys_readable": resurrected,
    }


def run_churn(base: Path | None, settings: ChurnSettings, report: Report) -> None:
    results = {}
    for variant in ("delete", "ttl"):
        how = (
            f"each key deleted once {settings.live:,} are live"
            if variant == "delete"
            else f"ttl={settings.ttl_s}, clock +1 s per {settings.live // settings.ttl_s:,} creates"
        )
        print(
            f"churn ({variant}): {settings.creates:,} creates of {VALUE_BYTES}-byte values in "
            f"batches of {settings.batch}, {how}; max_size {mib(settings.max_size)}",
            flush=True,
        )
        with tempfile.TemporaryDirectory(prefix="aiokv-bench-", dir=base) as tmp:
            r = asyncio.run(_churn(Path(tmp) / "store", settings, variant))
        results[variant] = r
        s = r["final_stats"]
        print(
            f"  {r['seconds']:.1f} s, {r['creates_per_s']:,.0f} creates/s; largest directory "
            f"sampled {r['max_dir_bytes']:,} bytes = {r['max_dir_ratio']:.1%} of max_size "
            f"({r['samples']:,} samples); {r['compaction_steps']} compaction steps "
            f"(data files removed); at most {r['max_data_files']} data files at once"
        )
        print(
            f"  final: live_keys {s['live_keys']:,} (unexpired {r['expected_live_keys']:,}), "
            f"live_bytes {s['live_bytes']:,} (unexpired {r['expected_live_bytes']:,}), "
            f"dead_bytes {s['dead_bytes']:,}, disk_bytes "
            f"{s['disk_bytes']:,}, segments {s['segment_count']}"
        )
        report.check(
            f"churn {variant}: no StoreFullError",
            r["store_full_errors"] == 0,
            f"{r['store_full_errors']} StoreFullError"
            + (f"; first: {r['first_store_full_error']}" if r["first_store_full_error"] else ""),
        )
        over = r["first_over_cap"]
        report.check(
            f"churn {variant}: directory <= max_size",
            r["samples_over_cap"] == 0,
            f"max {r['max_dir_bytes']:,} of {settings.max_size:,} bytes; "
            f"{r['samples_over_cap']} of {r['samples']:,} samples over"
            + (f" (first after {over[0]:,} creates: {over[1]:,} bytes)" if over else ""),
        )
        report.check(
            f"churn {variant}: disk <= {SIZE_BOUND_FACTOR} x live + segment",
            r["size_bound_ok"],
            f"disk_bytes {s['disk_bytes']:,} vs {SIZE_BOUND_FACTOR} x {s['live_bytes']:,} + "
            f"{r['segment_bytes']:,} = {r['size_bound']:,.0f}",
        )
        report.check(
            f"churn {variant}: live keys readable, dead ones gone",
            r["live_keys_lost"] == 0 and r["dead_keys_readable"] == 0,
            f"{r['live_keys_lost']} of {r['expected_live_keys']:,} live keys missing, "
            f"{r['dead_keys_readable']} of the last 1,000 dead keys still readable",
        )
    report.results["churn"] = results


# -- reopen --------------------------------------------------------------------------------

# Runs in a fresh interpreter so that its resident memory holds the store alone. argv: the
# directory holding the aiokv package under test, the store path.
REOPEN_CHILD = r"""
import asyncio, json, sys, time
sys.path.insert(0, sys.argv[1])
import aiokv

def status(name):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    return None

after_import = status("VmRSS")

async def main(path):
    store = aiokv.AsyncDataStore(path)
    started = time.perf_counter()
    await store.open()
    seconds = time.perf_counter() - started
    after_open = status("VmRSS")
    stats = await store.stats()
    await store.close()
    print(json.dumps({
        "seconds": seconds,
        "rss_after_import": after_import,
        "rss_after_open": after_open,
        "peak_rss": status("VmHWM"),
        "live_keys": stats.live_keys,
        "aiokv": aiokv.__file__,
    }))

asyncio.run(main(sys.argv[2]))
"""


async def _build_small(path: Path, n: int) -> None:
    async with aiokv.AsyncDataStore(path) as store:
        for start in range(0, n, REOPEN_BATCH):
            stop = min(n, start + REOPEN_BATCH)
            await asyncio.gather(
                *(store.create(f"key:{i:07d}", {"i": i}) for i in range(start, stop))
            )


def _reopen_child(package_root: str, path: Path, n: int, report: Report) -> dict[str, Any]:
    """Open the store in a fresh interpreter; its timing and memory figures."""
    child = subprocess.run(
        [sys.executable, "-c", REOPEN_CHILD, package_root, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise SystemExit(f"reopen: the child process failed:\n{child.stderr}")
    result: dict[str, Any] = json.loads(child.stdout)
    if result["live_keys"] != n:
        report.check("reopen: every key back", False, f"{result['live_keys']:,} of {n:,} keys")
    if result["rss_after_open"] is not None:
        result["rss_bytes_per_key"] = (result["rss_after_open"] - result["rss_after_import"]) / n
    return result


def run_reopen(base: Path | None, n: int, repeat: int, report: Report) -> None:
    print(f"reopen: a store of {n:,} keys of {{'i': n}}, opened {repeat} times", flush=True)
    package_root = str(Path(aiokv.__file__).resolve().parent.parent)
    with tempfile.TemporaryDirectory(prefix="aiokv-bench-", dir=base) as tmp:
        path = Path(tmp) / "store"
        rss_before = proc_status("VmRSS")
        started = time.perf_counter()
        asyncio.run(_build_small(path, n))
        build_s = time.perf_counter() - started
        rss_built = proc_status("VmRSS")
        dir_bytes, names = scan_directory(path)
        print(
            f"  built in {build_s:.1f} s ({n / build_s:,.0f} creates/s): {dir_bytes:,} bytes "
            f"in {sum(name.endswith('.data') for name in names)} data file(s)",
            flush=True,
        )
        runs = []
        for run in range(repeat):
            result = _reopen_child(package_root, path, n, report)
            runs.append(result)
            print(
                f"  run {run + 1}/{repeat}: open {result['seconds']:.2f} s, RSS "
                f"{mib(result['rss_after_import'] or 0)} after import -> "
                f"{mib(result['rss_after_open'] or 0)} after open "
                f"({result.get('rss_bytes_per_key', float('nan')):,.0f} bytes/key), "
                f"peak {mib(result['peak_rss'] or 0)}",
                flush=True,
            )
        # The same store with its hint files removed before each open: every segment is
        # scanned (and the open writes the hints again).
        scans = []
        for run in range(repeat):
            for hint in path.glob("*.hint"):
                hint.unlink()
            result = _reopen_child(package_root, path, n, report)
            scans.append(result["seconds"])
            print(f"  run {run + 1}/{repeat} without hints: open {result['seconds']:.2f} s")
    times = [r["seconds"] for r in runs]
    per_key = [r["rss_bytes_per_key"] for r in runs if "rss_bytes_per_key" in r]
    result = {
        "keys": n,
        "build_seconds": build_s,
        "dir_bytes": dir_bytes,
        "open_seconds": {
            "median": statistics.median(times),
            "min": min(times),
            "max": max(times),
            "runs": times,
        },
        "child_rss_bytes_per_key": statistics.median(per_key) if per_key else None,
        "child_peak_rss": max((r["peak_rss"] or 0) for r in runs),
        "child_runs": runs,
        "parent_rss_before_build": rss_before,
        "parent_rss_after_build_and_close": rss_built,
        "parent_rss_bytes_per_key": (
            (rss_built - rss_before) / n if rss_before is not None and rss_built else None
        ),
        "hints": any(name.endswith(".hint") for name in names),
        "open_seconds_without_hints": {
            "median": statistics.median(scans),
            "min": min(scans),
            "max": max(scans),
            "runs": scans,
        },
    }
    report.results["reopen"] = result
    if result["parent_rss_bytes_per_key"] is not None:
        print(
            f"  this process: RSS {mib(rss_before or 0)} before building, "
            f"{mib(rss_built or 0)} after building and closing "
            f"({result['parent_rss_bytes_per_key']:,.0f} bytes/key kept by the allocator)"
        )


# -- latency -------------------------------------------------------------------------------


async def _read_loop(
    store: aiokv.AsyncDataStore,
    keys: Sequence[str],
    rng: random.Random,
    *,
    count: int | None = None,
    until: asyncio.Task[Any] | None = None,
) -> list[float]:
    """Read random ``keys`` one at a time; return each read's latency in seconds."""
    samples: list[float] = []
    clock = time.perf_counter
    while (count is not None and len(samples) < count) or (until is not None and not until.done()):
        key = keys[rng.randrange(len(keys))]
        started = clock()
        await store.read(key)
        samples.append(clock() - started)
    return samples


async def _latency(path: Path, n: int, segment_bytes: int, baseline_reads: int) -> dict[str, Any]:
    pad = make_pad(VALUE_BYTES)
    rng = random.Random(20240611)
    async with aiokv.AsyncDataStore(
        path, segment_max_bytes=segment_bytes, compact_dead_ratio=None
    ) as store:
        started = time.perf_counter()
        keys = [f"k:{i:08d}" for i in range(n)]
        for start in range(0, n, LATENCY_BATCH):
            await asyncio.gather(
                *(
                    store.create(keys[i], make_value(i, pad))
                    for i in range(start, min(n, start + LATENCY_BATCH))
                )
            )
        deleted = keys[0::2]
        live = keys[1::2]
        for start in range(0, len(deleted), LATENCY_BATCH):
            await asyncio.gather(*(store.delete(k) for k in deleted[start : start + LATENCY_BATCH]))
        build_s = time.perf_counter() - started
        before = await store.stats()
        print(f"  built in {build_s:.1f} s: {format_stats(before)}", flush=True)

        baseline = await _read_loop(store, live, rng, count=baseline_reads)

        async def timed_compact() -> tuple[int, float]:
            began = time.perf_counter()
            reclaimed = await store.compact()
            return reclaimed, time.perf_counter() - began

        dir_before, _ = scan_directory(path)
        task = asyncio.create_task(timed_compact())
        during = await _read_loop(store, live, rng, until=task)
        reclaimed, compact_s = await task
        after = await store.stats()
        dir_after, _ = scan_directory(path)

        lost = 0
        for key in rng.sample(live, min(len(live), 10_000)):
            try:
                await store.read(key)
            except aiokv.KeyNotFoundError:
                lost += 1
        resurrected = 0
        for key in rng.sample(deleted, min(len(deleted), 10_000)):
            try:
                await store.read(key)
                resurrected += 1
            except aiokv.KeyNotFoundError:
                pass
    return {
        "keys": n,
        "deleted": len(deleted),
        "segment_bytes": segment_bytes,
        "build_seconds": build_s,
        "stats_before": stats_dict(before),
        "stats_after": stats_dict(after),
        "dir_bytes_before": dir_before,
        "dir_bytes_after": dir_after,
        "compaction_seconds": compact_s,
        "bytes_reclaimed": reclaimed,
        "baseline": latency_summary(baseline),
        "during_compaction": latency_summary(during),
        "live_keys_lost": lost,
        "dead_keys_readable": resurrected,
    }


def run_latency(
    base: Path | None, n: int, segment_bytes: int, baseline_reads: int, report: Report
) -> None:
    print(
        f"latency: {n:,} keys of {VALUE_BYTES}-byte values in {mib(segment_bytes)} segments, "
        f"every other key deleted, compact_dead_ratio=None",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="aiokv-bench-", dir=base) as tmp:
        r = asyncio.run(_latency(Path(tmp) / "store", n, segment_bytes, baseline_reads))
    report.results["latency"] = r
    for name in ("baseline", "during_compaction"):
        s = r[name]
        print(
            f"  reads, {name.replace('_', ' ')}: {s['reads']:,} reads, p50 {s['p50_ms']:.3f} ms, "
            f"p99 {s['p99_ms']:.3f} ms, p99.9 {s['p999_ms']:.3f} ms, max {s['max_ms']:.2f} ms, "
            f"{s['over_target']:,} over {LATENCY_TARGET_S * 1e3:g} ms"
        )
    print(
        f"  compaction: {r['compaction_seconds']:.2f} s, {r['bytes_reclaimed']:,} bytes reclaimed; "
        f"after: {format_stats(aiokv.StoreStats(**r['stats_after']))}"
    )
    during = r["during_compaction"]
    report.check(
        f"latency: p99 during compaction <= {LATENCY_TARGET_S * 1e3:g} ms",
        during["p99_ms"] <= LATENCY_TARGET_S * 1e3,
        f"p99 {during['p99_ms']:.3f} ms (baseline {r['baseline']['p99_ms']:.3f} ms), "
        f"max {during['max_ms']:.2f} ms",
    )
    report.check(
        "latency: live keys readable, deleted ones gone after compaction",
        r["live_keys_lost"] == 0 and r["dead_keys_readable"] == 0,
        f"{r['live_keys_lost']} of 10,000 sampled live keys missing, "
        f"{r['dead_keys_readable']} of 10,000 sampled deleted keys readable",
    )


# -- the report ----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpus": os.cpu_count(),
        "aiokv": aiokv.__version__,
        "aiokv_path": str(Path(aiokv.__file__).resolve().parent),
    }


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _value in rows)
    print(f"{'figure'.ljust(width)}  value")
    print(f"{'-' * width}  {'-' * 40}")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


def summary_rows(report: Report) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for variant, r in report.results.get("churn", {}).items():
        s = r["final_stats"]
        prefix = f"churn {variant}"
        rows += [
            (f"{prefix}: time", f"{r['seconds']:.1f} s ({r['creates']:,} creates)"),
            (f"{prefix}: creates/s", f"{r['creates_per_s']:,.0f}"),
            (
                f"{prefix}: max directory",
                f"{r['max_dir_bytes']:,} bytes ({r['max_dir_ratio']:.1%} of max_size)",
            ),
            (f"{prefix}: StoreFullError", f"{r['store_full_errors']}"),
            (
                f"{prefix}: final stats",
                f"live {s['live_bytes']:,}, disk {s['disk_bytes']:,}, dead {s['dead_bytes']:,}, "
                f"{s['segment_count']} segments",
            ),
            (
                f"{prefix}: disk / live",
                f"{s['disk_bytes'] / max(1, s['live_bytes']):.2f} "
                f"(bound {r['size_bound']:,.0f} bytes); disk / unexpired live "
                f"{s['disk_bytes'] / max(1, r['expected_live_bytes']):.2f}",
            ),
            (
                f"{prefix}: compaction steps",
                f"{r['compaction_steps']}; at most {r['max_data_files']} data files",
            ),
        ]
    if "reopen" in report.results:
        r = report.results["reopen"]
        t = r["open_seconds"]
        rows += [
            (
                f"reopen {r['keys']:,} keys: open()",
                f"median {t['median']:.2f} s (min {t['min']:.2f}, max {t['max']:.2f})"
                + (" with hint files" if r["hints"] else ", without hint files"),
            ),
            (
                f"reopen {r['keys']:,} keys: open(), hints removed",
                "median {median:.2f} s (min {min:.2f}, max {max:.2f})".format(
                    **r["open_seconds_without_hints"]
                ),
            ),
            (
                "reopen: RSS per key (fresh process)",
                f"{r['child_rss_bytes_per_key']:,.0f} bytes"
                if r["child_rss_bytes_per_key"] is not None
                else "n/a",
            ),
            ("reopen: peak RSS (fresh process)", mib(r["child_peak_rss"])),
            (
                "reopen: RSS per key (builder)",
                f"{r['parent_rss_bytes_per_key']:,.0f} bytes"
                if r["parent_rss_bytes_per_key"] is not None
                else "n/a",
            ),
        ]
    if "latency" in report.results:
        r = report.results["latency"]
        for name in ("baseline", "during_compaction"):
            s = r[name]
            rows.append(
                (
                    f"read latency, {name.replace('_', ' ')}",
                    f"p50 {s['p50_ms']:.3f} ms, p99 {s['p99_ms']:.3f} ms, max "
                    f"{s['max_ms']:.2f} ms ({s['reads']:,} reads)",
                )
            )
        rows.append(
            (
                "compaction",
                f"{r['compaction_seconds']:.2f} s, {r['bytes_reclaimed']:,} bytes reclaimed",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        action="append",
        choices=MEASUREMENTS,
        help="run this measurement only (may be given more than once; default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="every count ten times smaller")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument("--dir", type=Path, help="where the temporary stores go (default: TMPDIR)")
    args = parser.parse_args(argv)
    only = args.only or list(MEASUREMENTS)
    scale = 10 if args.quick else 1

    info = machine()
    print(
        f"aiokv {info['aiokv']} ({info['aiokv_path']}) on {info['platform']}, "
        f"{info['implementation']} {info['python']}, {info['cpus']} CPUs"
    )
    print(f"stores in {args.dir or tempfile.gettempdir()}; scale 1/{scale}")
    print()

    report = Report()
    started = time.perf_counter()
    if "churn" in only:
        settings = ChurnSettings(
            creates=CHURN_CREATES // scale,
            live=CHURN_LIVE // scale,
            batch=CHURN_BATCH,
            max_size=CHURN_MAX_SIZE // scale,
            ttl_s=CHURN_TTL_S,
        )
        run_churn(args.dir, settings, report)
        print()
    if "reopen" in only:
        run_reopen(args.dir, REOPEN_KEYS // scale, REOPEN_REPEAT, report)
        print()
    if "latency" in only:
        run_latency(
            args.dir,
            LATENCY_KEYS // scale,
            LATENCY_SEGMENT_BYTES // scale,
            BASELINE_READS // scale,
            report,
        )
        print()
    elapsed = time.perf_counter() - started

    print(
        f"summary: {info['platform']}, {info['cpus']} CPUs, {info['implementation']} "
        f"{info['python']}, aiokv {info['aiokv']}"
    )
    print()
    print_table(summary_rows(report))
    print()
    for check in report.checks:
        print(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
    print()
    print(f"total time {elapsed:.0f} s; command: {' '.join([sys.executable, *sys.argv])}")

    if args.json is not None:
        document = {
            "machine": info,
            "command": [sys.executable, *sys.argv],
            "quick": args.quick,
            "scale": scale,
            "elapsed_s": elapsed,
            "results": report.results,
            "checks": [
                {"name": c.name, "passed": c.passed, "detail": c.detail} for c in report.checks
            ],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0 if all(check.passed for check in report.checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())

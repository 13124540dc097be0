"""``latency``: reads of random live keys, one at a time from one task, timed first with
nothing else running, then while ``store.compact()`` runs in another task."""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiokv
from _bench.compaction.common import TMP_PREFIX, VALUE_BYTES, format_stats, mib, stats_dict
from _bench.compaction.report import Report
from _bench.stats import percentile
from _bench.system import scan_directory
from _bench.values import id_pad, id_value

LATENCY_KEYS = 300_000
LATENCY_SEGMENT_BYTES = 64 * 2**20
LATENCY_BATCH = 1000
BASELINE_READS = 200_000
LATENCY_TARGET_S = 0.005
SEED = 20240611
SAMPLED_KEYS = 10_000  # live and deleted keys read back after the compaction


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


async def _build(store: aiokv.AsyncDataStore, n: int, pad: str) -> tuple[list[str], list[str]]:
    """``n`` keys created, every other one deleted: the deleted keys and the live ones."""
    keys = [f"k:{i:08d}" for i in range(n)]
    for start in range(0, n, LATENCY_BATCH):
        await asyncio.gather(
            *(
                store.create(keys[i], id_value(i, pad))
                for i in range(start, min(n, start + LATENCY_BATCH))
            )
        )
    deleted = keys[0::2]
    live = keys[1::2]
    for start in range(0, len(deleted), LATENCY_BATCH):
        await asyncio.gather(*(store.delete(k) for k in deleted[start : start + LATENCY_BATCH]))
    return deleted, live


async def _during_compaction(
    store: aiokv.AsyncDataStore, live: Sequence[str], rng: random.Random
) -> tuple[list[float], int, float]:
    """Reads while ``compact()`` runs: their latencies, the bytes reclaimed and its seconds."""

    async def timed_compact() -> tuple[int, float]:
        began = time.perf_counter()
        reclaimed = await store.compact()
        return reclaimed, time.perf_counter() - began

    task = asyncio.create_task(timed_compact())
    during = await _read_loop(store, live, rng, until=task)
    reclaimed, compact_s = await task
    return during, reclaimed, compact_s


async def _check_keys(
    store: aiokv.AsyncDataStore, rng: random.Random, live: list[str], deleted: list[str]
) -> tuple[int, int]:
    """Sampled live keys missing, and sampled deleted keys readable."""
    lost = 0
    for key in rng.sample(live, min(len(live), SAMPLED_KEYS)):
        try:
            await store.read(key)
        except aiokv.KeyNotFoundError:
            lost += 1
    resurrected = 0
    for key in rng.sample(deleted, min(len(deleted), SAMPLED_KEYS)):
        try:
            await store.read(key)
            resurrected += 1
        except aiokv.KeyNotFoundError:
            pass
    return lost, resurrected


async def _latency(path: Path, n: int, segment_bytes: int, baseline_reads: int) -> dict[str, Any]:
    pad = id_pad(VALUE_BYTES)
    rng = random.Random(SEED)
    async with aiokv.AsyncDataStore(
        path, segment_max_bytes=segment_bytes, compact_dead_ratio=None
    ) as store:
        started = time.perf_counter()
        deleted, live = await _build(store, n, pad)
        build_s = time.perf_counter() - started
        before = await store.stats()
        print(f"  built in {build_s:.1f} s: {format_stats(before)}", flush=True)

        baseline = await _read_loop(store, live, rng, count=baseline_reads)
        dir_before, _ = scan_directory(path)
        during, reclaimed, compact_s = await _during_compaction(store, live, rng)
        after = await store.stats()
        dir_after, _ = scan_directory(path)
        lost, resurrected = await _check_keys(store, rng, live, deleted)
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
    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=base) as tmp:
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

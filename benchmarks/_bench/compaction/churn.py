"""``churn``: creates into a capped store, the oldest keys deleted (or expired by a TTL) so that
at most a given number stay live; the directory's size is sampled after every batch."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiokv
from _bench.compaction.common import (
    RECORD_HEADER_BYTES,
    TMP_PREFIX,
    VALUE_BYTES,
    gather_ops,
    mib,
    stats_dict,
)
from _bench.compaction.report import Report
from _bench.system import scan_directory
from _bench.values import id_pad, id_value

CHURN_CREATES = 1_000_000
CHURN_LIVE = 50_000
CHURN_BATCH = 100
CHURN_MAX_SIZE = 256 * 2**20
CHURN_TTL_S = 10
CHURN_DEAD_RATIO = 0.3
SIZE_BOUND_FACTOR = 1.5  # disk_bytes <= 1.5 * live_bytes + one segment


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


@dataclass
class Churn:
    """One churn run's settings and bookkeeping."""

    settings: ChurnSettings
    variant: str  # "delete" or "ttl"
    sampler: Sampler
    clock: aiokv.ManualClock | None
    ttl: int | None
    pad: str
    live: deque[tuple[str, float]] = field(default_factory=deque)  # (key, created at), oldest first
    deletes: int = 0
    full_errors: int = 0
    first_full: str | None = None


async def _churn(path: Path, settings: ChurnSettings, variant: str) -> dict[str, Any]:
    clock = aiokv.ManualClock() if variant == "ttl" else None
    churn = Churn(
        settings,
        variant,
        Sampler(path, settings.max_size),
        clock,
        settings.ttl_s if variant == "ttl" else None,
        id_pad(VALUE_BYTES),
    )
    store = aiokv.AsyncDataStore(
        path, max_size=settings.max_size, compact_dead_ratio=CHURN_DEAD_RATIO, clock=clock
    )
    await store.open()
    try:
        churn.sampler.sample(0)
        started = time.perf_counter()
        await _churn_loop(store, churn)
        elapsed = time.perf_counter() - started
        final = await store.stats()
        removed = churn.sampler.removed_data_files()
        lost, resurrected = await _check_keys(store, churn)
    finally:
        await store.close()
    return _churn_result(churn, store, elapsed, final, removed, (lost, resurrected))


async def _churn_loop(store: aiokv.AsyncDataStore, churn: Churn) -> None:
    """Every create, batch by batch, each batch preceded by its deletes and followed by a
    sample of the directory (and, for ``ttl``, by the clock's move)."""
    settings = churn.settings
    # The clock moves 1 s per this many creates, so about ``live`` keys are unexpired.
    per_second = settings.live // settings.ttl_s
    created = 0
    while created < settings.creates:
        n = min(settings.batch, settings.creates - created)
        if churn.variant == "delete":
            await _delete_oldest(store, churn, created, n)
        await _create_batch(store, churn, created, n)
        created += n
        churn.sampler.sample(created)
        if churn.clock is not None:
            if created % per_second == 0:
                churn.clock.advance(1.0)
            # Keys past their deadline are gone; drop them from the bookkeeping.
            deadline = churn.clock.time() - settings.ttl_s
            while churn.live and churn.live[0][1] <= deadline:
                churn.live.popleft()


async def _delete_oldest(store: aiokv.AsyncDataStore, churn: Churn, created: int, n: int) -> None:
    """Delete the oldest keys so that the next ``n`` creates leave at most ``live`` live."""
    excess = len(churn.live) + n - churn.settings.live
    if excess <= 0:
        return
    doomed = [churn.live.popleft()[0] for _ in range(excess)]
    results = await gather_ops([store.delete(key) for key in doomed])
    for key, result in zip(doomed, results, strict=True):
        if isinstance(result, BaseException):
            raise SystemExit(
                f"churn ({churn.variant}): delete of {key!r}, a key whose create "
                f"returned, failed: {result!r}"
            ) from result
    churn.deletes += excess
    churn.sampler.sample(created)


async def _create_batch(store: aiokv.AsyncDataStore, churn: Churn, created: int, n: int) -> None:
    """``n`` creates at once; a ``StoreFullError`` is counted, any other error is fatal."""
    now = churn.clock.time() if churn.clock is not None else 0.0
    keys = [f"c:{i:08d}" for i in range(created, created + n)]
    results = await gather_ops(
        [
            store.create(key, id_value(i, churn.pad), ttl=churn.ttl)
            for i, key in enumerate(keys, created)
        ]
    )
    for key, result in zip(keys, results, strict=True):
        if result is None:
            churn.live.append((key, now))
        elif isinstance(result, aiokv.StoreFullError):
            churn.full_errors += 1
            if churn.first_full is None:
                churn.first_full = f"create #{created:,} ({key!r}): {result}"
        else:
            raise SystemExit(f"churn ({churn.variant}): create of {key!r} failed: {result!r}")


async def _check_keys(store: aiokv.AsyncDataStore, churn: Churn) -> tuple[int, int]:
    """Every key still live must read back; deleted or expired ones must be gone. Returns the
    live keys missing and the last 1,000 dead keys still readable."""
    lost = 0
    for key, _created_at in churn.live:
        try:
            await store.read(key)
        except aiokv.KeyNotFoundError:
            lost += 1
    oldest = int(churn.live[0][0][2:]) if churn.live else churn.settings.creates
    resurrected = 0
    for i in range(max(0, oldest - 1000), oldest):
        try:
            await store.read(f"c:{i:08d}")
            resurrected += 1
        except aiokv.KeyNotFoundError:
            pass
    return lost, resurrected


def _churn_result(
    churn: Churn,
    store: aiokv.AsyncDataStore,
    elapsed: float,
    final: aiokv.StoreStats,
    removed: int,
    checked: tuple[int, int],
) -> dict[str, Any]:
    settings, sampler, live = churn.settings, churn.sampler, churn.live
    segment_bytes = store.options.segment_bytes  # the default for this max_size
    bound = SIZE_BOUND_FACTOR * final.live_bytes + segment_bytes
    return {
        "variant": churn.variant,
        "creates": settings.creates,
        "deletes": churn.deletes,
        "batch": settings.batch,
        "max_live": settings.live,
        "ttl_s": churn.ttl,
        "max_size": settings.max_size,
        "segment_bytes": segment_bytes,
        "seconds": elapsed,
        "creates_per_s": settings.creates / elapsed,
        "samples": sampler.samples,
        "max_dir_bytes": sampler.max_bytes,
        "max_dir_ratio": sampler.max_bytes / settings.max_size,
        "samples_over_cap": sampler.over_cap,
        "first_over_cap": sampler.first_over,
        "store_full_errors": churn.full_errors,
        "first_store_full_error": churn.first_full,
        "final_stats": stats_dict(final),
        "expected_live_keys": len(live),
        # What the unexpired, undeleted keys take: stats() counts expired keys until the
        # reaper drops them from the index.
        "expected_live_bytes": sum(RECORD_HEADER_BYTES + len(k) + VALUE_BYTES for k, _t in live),
        "max_data_files": sampler.max_data_files,
        "size_bound": bound,
        "size_bound_ok": final.disk_bytes <= bound,
        "compaction_steps": removed,
        "live_keys_lost": checked[0],
        "dead_keys_readable": checked[1],
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
        with tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=base) as tmp:
            r = asyncio.run(_churn(Path(tmp) / "store", settings, variant))
        results[variant] = r
        _print_churn(r)
        _check_churn(report, variant, r, settings)
    report.results["churn"] = results


def _print_churn(r: dict[str, Any]) -> None:
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


def _check_churn(report: Report, variant: str, r: dict[str, Any], settings: ChurnSettings) -> None:
    s = r["final_stats"]
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

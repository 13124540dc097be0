"""A whole run of ``bench_peers.py``: the header, the workloads in order, the summary, the
targets, the chart and the JSON."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from _bench.machine import aiokv_source, detailed, machine_line
from _bench.output import print_total, write_json
from _bench.peers.chart import write_chart
from _bench.peers.config import BATCH, LARGE_VALUE_BYTES, SMALL_VALUE_BYTES, TMP_PREFIX, Settings
from _bench.peers.document import document
from _bench.peers.latency import latency_workload
from _bench.peers.reopen import reopen_workload
from _bench.peers.report import Outcome, print_latency, print_reopen, print_workload
from _bench.peers.results import Workload
from _bench.peers.runners import latency_runners
from _bench.peers.targets import Target, targets
from _bench.peers.workloads import crud_workload, fsync_workload, mixed_workload

# The libraries whose versions the machine's description lists, after aiokv's and SQLite's.
LIBRARIES = (
    "orjson",
    "uvloop",
    "lmdb",
    "rocksdict",
    "diskcache",
    "sqlitedict",
    "aiosqlite",
    "matplotlib",
)


def run(settings: Settings) -> int:
    """Run the workloads ``settings`` asks for, then report them."""
    info = detailed(LIBRARIES)
    print_header(info, settings)
    started = time.perf_counter()
    outcome = Outcome(found=run_throughput(settings))
    run_latency_and_reopen(settings, outcome)
    outcome.elapsed = time.perf_counter() - started
    changed = source_change(info)
    goals = print_summary(info, changed, outcome, settings.quick)
    chart: str | None = None
    if settings.chart is not None and write_chart(settings.chart, outcome.found, info):
        chart = str(settings.chart)
        print(f"wrote {settings.chart}")
    print_total(outcome.elapsed)
    if settings.json is not None:
        write_json(settings.json, document(info, settings, outcome, goals, chart))
    return 0


def versions_line(info: dict[str, Any]) -> str:
    return ", ".join(f"{name} {v}" for name, v in info["versions"].items() if v)


def print_header(info: dict[str, Any], settings: Settings) -> None:
    print(f"aiokv against its peers on {machine_line(info)}")
    print(f"versions: {versions_line(info)}")
    source = info["aiokv_source"]
    print(f"aiokv from {source['path']}" + (f" (git {source['git']})" if "git" in source else ""))
    print(
        f"load average at start: {', '.join(f'{x:.2f}' for x in info['load_average'] or [])}; "
        f"stores in {settings.dir or tempfile.gettempdir()}; {settings.repeat} run(s) per runner"
    )
    print()


def run_throughput(settings: Settings) -> dict[str, Workload]:
    """The ``1kb``, ``16kb``, ``mixed`` and ``fsync`` workloads asked for, in that order."""
    n, repeat, base = settings.n, settings.repeat, settings.dir
    found: dict[str, Workload] = {}
    if "1kb" in settings.only:
        found["1kb"] = crud_workload(
            "1kb", n, settings.slow_n, SMALL_VALUE_BYTES, repeat, base, nested=True, batch=BATCH
        )
        print()
    if "16kb" in settings.only:
        found["16kb"] = crud_workload(
            "16kb", n // 5, settings.slow_n, LARGE_VALUE_BYTES, repeat, base
        )
        print()
    if "mixed" in settings.only:
        found["mixed"] = mixed_workload(n, repeat, base)
        print()
    if "fsync" in settings.only:
        found["fsync"] = fsync_workload(n // 5, repeat, base)
        print()
    return found


def run_latency_and_reopen(settings: Settings, outcome: Outcome) -> None:
    """``latency``, then ``reopen`` of the largest latency stores when they have its size (and
    of stores built for it otherwise)."""
    sizes, reopen_n = settings.latency_sizes, settings.reopen_keys
    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=settings.dir) as kept:
        stores: dict[str, Path] = {}
        skipped: list[str] = []
        if "latency" in settings.only:
            outcome.latency, outcome.latency_notes = latency_workload(
                sizes,
                settings.latency_reads,
                settings.repeat,
                settings.dir,
                stores,
                reopen_n if "reopen" in settings.only else -1,
                Path(kept),
            )
            built = {row.runner.name for row in outcome.latency if row.size == max(sizes)}
            skipped = [r.name for r in latency_runners()[0] if r.name not in built]
            if reopen_n != max(sizes):
                stores.clear()
                skipped = []
            print()
        if "reopen" in settings.only:
            outcome.reopen = reopen_workload(
                reopen_n, settings.reopen_runs, settings.dir, stores, skipped
            )
            print()


def source_change(info: dict[str, Any]) -> str:
    """A note if aiokv's modules changed during the run (recorded in ``info``), else ``""``."""
    source_at_end = aiokv_source()
    if source_at_end["sha256"] == info["aiokv_source"]["sha256"]:
        return ""
    info["aiokv_source_at_end"] = source_at_end
    return (
        f"note: aiokv's modules changed during the run "
        f"({info['aiokv_source'].get('git', '?')} -> {source_at_end.get('git', '?')}): the "
        "workloads ran the code imported at the start, the reopen children (if any) the code "
        "on disk when they started"
    )


def print_summary(
    info: dict[str, Any], changed: str, outcome: Outcome, quick: bool
) -> list[Target]:
    """Every table of the run and the targets, which it returns."""
    print("=" * 100)
    print(f"summary: {machine_line(info)}")
    print(f"versions: {versions_line(info)}")
    if changed:
        print(changed)
    print()
    for workload in outcome.found.values():
        print_workload(workload)
    if outcome.latency:
        print_latency(outcome.latency, outcome.latency_notes)
    print_reopen(outcome.reopen)
    goals = targets(outcome.found, outcome.latency, outcome.reopen)
    print("targets" + (" (quick run: smaller sizes than the targets name)" if quick else ""))
    for goal in goals:
        print(f"  {goal.line()}")
    print()
    return goals

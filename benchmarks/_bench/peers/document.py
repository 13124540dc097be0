"""The JSON document of a run: the machine, the settings and every figure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from _bench.output import command
from _bench.peers.config import LARGE_VALUE_BYTES, SMALL_VALUE_BYTES, Settings
from _bench.peers.latency import LatencyRow
from _bench.peers.reopen import ReopenRow
from _bench.peers.report import Outcome
from _bench.peers.results import Workload
from _bench.peers.targets import Target
from _bench.stats import span_dict


def document(
    info: dict[str, Any],
    settings: Settings,
    outcome: Outcome,
    goals: Sequence[Target],
    chart: str | None,
) -> dict[str, Any]:
    """The whole run; ``chart`` is where the chart went, if one was drawn."""
    return {
        "machine": info,
        "command": command(),
        "settings": settings_json(settings),
        "elapsed_s": outcome.elapsed,
        "workloads": {key: workload_json(workload) for key, workload in outcome.found.items()},
        "latency": {
            "notes": outcome.latency_notes,
            "rows": [latency_json(row) for row in outcome.latency],
        },
        "reopen": [reopen_json(row) for row in outcome.reopen],
        "targets": [target_json(goal) for goal in goals],
        "chart": chart,
    }


def settings_json(settings: Settings) -> dict[str, Any]:
    return {
        "n": settings.n,
        "slow_n": settings.slow_n,
        "repeat": settings.repeat,
        "quick": settings.quick,
        "latency_sizes": list(settings.latency_sizes),
        "latency_reads": settings.latency_reads,
        "reopen_keys": settings.reopen_keys,
        "reopen_runs": settings.reopen_runs,
        "value_bytes": {"1kb": SMALL_VALUE_BYTES, "16kb": LARGE_VALUE_BYTES},
    }


def workload_json(workload: Workload) -> dict[str, Any]:
    return {
        "title": workload.title,
        "phases": list(workload.phases),
        "notes": workload.notes,
        "runners": [
            {
                "name": row.runner.name,
                "library": row.runner.series,
                "family": row.runner.family,
                "workers": row.runner.workers,
                "loop": row.runner.loop if row.runner.is_async else None,
                "gather": row.runner.gather,
                "batch": row.runner.batch,
                "n": row.n,
                "runs": row.runs,
                "summary": {
                    phase: span_dict(summary)
                    for phase in workload.phases
                    if (summary := row.summary(phase)) is not None
                },
            }
            for row in workload.rows
        ],
        "ratios": workload.ratios(),
    }


def latency_json(row: LatencyRow) -> dict[str, Any]:
    return {
        "name": row.runner.name,
        "library": row.runner.series,
        "keys": row.size,
        "load_seconds": row.load_seconds,
        "runs": row.runs,
        "median": {name: row.median(name) for name in ("p50_us", "p99_us", "reads_per_s")},
    }


def reopen_json(row: ReopenRow) -> dict[str, Any]:
    return {
        "library": row.series,
        "keys": row.keys,
        "disk_bytes": row.disk_bytes,
        "runs": row.runs,
        "median": {
            name: span[0]
            for name in ("seconds", "bytes_per_key", "bytes_per_key_after_reads")
            if (span := row.span(name)) is not None
        },
    }


def target_json(goal: Target) -> dict[str, Any]:
    return {
        "name": goal.name,
        "threshold": goal.threshold,
        "at_most": goal.at_most,
        "value": goal.value,
        "met": goal.met,
        "line": goal.line(),
    }

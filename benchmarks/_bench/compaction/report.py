"""The checks of the compaction measurements, and the summary table of their figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from _bench.compaction.common import mib


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


def print_figures(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _value in rows)
    print(f"{'figure'.ljust(width)}  value")
    print(f"{'-' * width}  {'-' * 40}")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


def summary_rows(report: Report) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for variant, r in report.results.get("churn", {}).items():
        rows += churn_rows(variant, r)
    if "reopen" in report.results:
        rows += reopen_rows(report.results["reopen"])
    if "latency" in report.results:
        rows += latency_rows(report.results["latency"])
    return rows


def churn_rows(variant: str, r: dict[str, Any]) -> list[tuple[str, str]]:
    s = r["final_stats"]
    prefix = f"churn {variant}"
    return [
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


def reopen_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    t = r["open_seconds"]
    return [
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


def latency_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
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

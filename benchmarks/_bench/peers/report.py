"""The summary tables of a run: each workload, the latencies, the reopens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from _bench.peers.config import REOPEN_READS
from _bench.peers.latency import LatencyRow
from _bench.peers.reopen import ReopenRow
from _bench.peers.results import Workload
from _bench.peers.runners import AIOKV, FLOOR, PEER
from _bench.stats import Span
from _bench.text import TIMES, fmt_rate, print_table


@dataclass
class Outcome:
    """What one run measured: the throughput workloads by key, the latencies with their
    notes, the reopens, and the run's time."""

    found: dict[str, Workload] = field(default_factory=dict)
    latency: list[LatencyRow] = field(default_factory=list)
    latency_notes: list[str] = field(default_factory=list)
    reopen: list[ReopenRow] = field(default_factory=list)
    elapsed: float = 0.0


def rate_span(summary: Span | None) -> str:
    if summary is None:
        return "-"
    return f"{fmt_rate(summary[0])} ({fmt_rate(summary[1])}-{fmt_rate(summary[2])})"


def print_workload(workload: Workload) -> None:
    print(workload.title)
    header = ["runner", "n", *(f"{phase}/s median (min-max)" for phase in workload.phases)]
    rows = [
        [row.runner.name, f"{row.n:,}", *(rate_span(row.summary(p)) for p in workload.phases)]
        for row in workload.rows
    ]
    print_table(header, rows)
    for phase, entry in workload.ratios().items():
        parts = [f"  {phase}: aiokv best ({entry['aiokv']}) {fmt_rate(entry['aiokv_rate'])}/s"]
        if PEER in entry:
            parts.append(f"{entry['vs_peer']:.2f}{TIMES} best peer ({entry['peer']})")
        if FLOOR in entry:
            parts.append(f"{entry['vs_floor']:.2f}{TIMES} best floor ({entry['floor']})")
        print(", ".join(parts))
    for note in workload.notes:
        print(f"  note: {note}")
    print()


def print_latency(rows: Sequence[LatencyRow], notes: Sequence[str]) -> None:
    print("latency: single reads of random keys, microseconds, median of the repeats (min-max)")
    table = []
    for row in rows:
        p50, p99, rate = row.span("p50_us"), row.span("p99_us"), row.span("reads_per_s")
        table.append(
            [
                row.runner.name,
                f"{row.size:,}",
                f"{p50[0]:.1f} ({p50[1]:.1f}-{p50[2]:.1f})",
                f"{p99[0]:.1f} ({p99[1]:.1f}-{p99[2]:.1f})",
                fmt_rate(rate[0]),
                f"{row.load_seconds:.1f}",
            ]
        )
    print_table(["runner", "keys", "p50 us", "p99 us", "reads/s", "load s"], table)
    for size in sorted({row.size for row in rows}):
        line = latency_comparison([row for row in rows if row.size == size])
        if line is not None:
            print(line)
    for note in notes:
        print(f"  note: {note}")
    print()


def latency_comparison(at: Sequence[LatencyRow]) -> str | None:
    """aiokv's p50 at one store size against the best peer's and the floor's."""
    ours = next((row for row in at if row.runner.family == AIOKV), None)
    peers = [row for row in at if row.runner.family == PEER]
    floor = next((row for row in at if row.runner.family == FLOOR), None)
    if ours is None:
        return None
    parts = [f"  {ours.size:,} keys: aiokv p50 {ours.median('p50_us'):.1f} us"]
    if peers:
        best = min(peers, key=lambda row: row.median("p50_us"))
        parts.append(
            f"best peer {best.runner.name} {best.median('p50_us'):.1f} us "
            f"(aiokv {ours.median('p50_us') / best.median('p50_us'):.2f}{TIMES} its latency)"
        )
    if floor is not None:
        parts.append(
            f"raw floor {floor.median('p50_us'):.1f} us "
            f"({ours.median('p50_us') / floor.median('p50_us'):.2f}{TIMES})"
        )
    return ", ".join(parts)


def print_reopen(rows: Sequence[ReopenRow]) -> None:
    if not rows:
        return
    print(
        f"reopen: {rows[0].keys:,} keys of 32 characters, small values, each open in a fresh "
        "process; median of the child runs (min-max); anonymous: RssAnon, without mapped files"
    )
    table = []
    for row in rows:
        seconds = row.span("seconds")
        per_key = row.span("bytes_per_key")
        anon = row.span("anon_bytes_per_key")
        after_reads = row.span("bytes_per_key_after_reads")
        table.append(
            [
                row.series,
                f"{row.disk_bytes:,}",
                f"{seconds[0]:.3f} ({seconds[1]:.3f}-{seconds[2]:.3f})" if seconds else "-",
                f"{per_key[0]:,.1f} ({per_key[1]:,.1f}-{per_key[2]:,.1f})" if per_key else "-",
                f"{anon[0]:,.1f}" if anon else "-",
                f"{after_reads[0]:,.1f}" if after_reads else "-",
            ]
        )
    print_table(
        [
            "store",
            "disk bytes",
            "open s",
            "RSS B/key after open",
            "anonymous",
            f"after {REOPEN_READS:,} reads",
        ],
        table,
    )
    print()

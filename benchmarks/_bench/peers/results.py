"""A workload's rows: each runner's repeats, their medians, and aiokv's ratios to the others."""

from __future__ import annotations

import gc
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _bench.peers.config import TMP_PREFIX
from _bench.peers.runners import AIOKV, FLOOR, PEER, Runner
from _bench.stats import Span, span

Plan = Callable[[Path], dict[str, float]]  # one run on a fresh store: ops/s per phase


@dataclass
class Row:
    """One runner's repeats in one workload: ops/s per phase, per repeat."""

    runner: Runner
    n: int
    runs: list[dict[str, float]] = field(default_factory=list)

    def summary(self, phase: str) -> Span | None:
        return span(run[phase] for run in self.runs if phase in run)

    def median(self, phase: str) -> float | None:
        summary = self.summary(phase)
        return summary[0] if summary else None


@dataclass
class Workload:
    key: str
    title: str
    phases: tuple[str, ...]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self, name: str) -> Row | None:
        return next((row for row in self.rows if row.runner.name == name), None)

    def best(self, phase: str, family: str) -> tuple[Row, float] | None:
        """The row of ``family`` with the highest median ops/s in ``phase``.

        Only rows run with the workload's full key count are ranked: a store of 20,000 keys
        reads faster than one of 100,000, so a row run with ``--slow-n`` keys would win (or
        set the bar) on its size, not on its speed.
        """
        full = max(row.n for row in self.rows)
        found = [
            (row, rate)
            for row in self.rows
            if row.runner.family == family
            and row.n == full
            and (rate := row.median(phase)) is not None
        ]
        return max(found, key=lambda item: item[1]) if found else None

    def series_best(self, phase: str, series: str) -> tuple[Row, float] | None:
        found = [
            (row, rate)
            for row in self.rows
            if row.runner.series == series and (rate := row.median(phase)) is not None
        ]
        return max(found, key=lambda item: item[1]) if found else None

    def ratios(self) -> dict[str, dict[str, Any]]:
        """Per phase: aiokv's best mode over the best peer, and over the best floor."""
        result: dict[str, dict[str, Any]] = {}
        for phase in self.phases:
            ours = self.best(phase, AIOKV)
            if ours is None:
                continue
            entry: dict[str, Any] = {"aiokv": ours[0].runner.name, "aiokv_rate": ours[1]}
            for family in (PEER, FLOOR):
                theirs = self.best(phase, family)
                if theirs is not None:
                    entry[family] = theirs[0].runner.name
                    entry[f"{family}_rate"] = theirs[1]
                    entry[f"vs_{family}"] = ours[1] / theirs[1]
            result[phase] = entry
        return result


def run_workload(
    workload: Workload,
    plans: Sequence[tuple[Row, Plan]],
    repeat: int,
    base: Path | None,
) -> None:
    """Run every plan ``repeat`` times, interleaved: each runner once, then each again."""
    print(f"{workload.title}", flush=True)
    for note in workload.notes:
        print(f"  note: {note}")
    for run in range(repeat):
        for row, plan in plans:
            gc.collect()
            with tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=base) as tmp:
                try:
                    rates = plan(Path(tmp) / "store")
                except Exception as exc:
                    raise SystemExit(
                        f"{workload.key}: {row.runner.name} failed on repeat {run + 1}: {exc!r}"
                    ) from exc
            row.runs.append(rates)
            shown = ", ".join(f"{phase} {rate:,.0f}/s" for phase, rate in rates.items())
            print(f"  {run + 1}/{repeat} {row.runner.name:<36} {shown}", flush=True)
    workload.rows = [row for row, _plan in plans]

"""The reports of ``stats`` and ``verify``: tables for people, objects for programs."""

from __future__ import annotations

import dataclasses
import datetime
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

import aiokv
from aiokv.cli.output import stdout_guard
from aiokv.cli.progress import size


def stats_object(stats: aiokv.StoreStats) -> dict[str, Any]:
    """The fields of ``StoreStats`` under their own names; every value is a JSON number
    (``last_compaction``: Unix seconds) or null."""
    return dataclasses.asdict(stats)


def print_stats_table(stats: aiokv.StoreStats, path: str, max_size: int) -> None:
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # a long path folds rather than losing its end
    table.add_row("store", path)
    table.add_row("live keys", f"{stats.live_keys:,}")
    table.add_row("live bytes", size(stats.live_bytes))
    table.add_row("dead bytes", f"{size(stats.dead_bytes)} (compact reclaims them)")
    table.add_row("disk use", _disk_use(stats.disk_bytes, max_size))
    table.add_row("data files", f"{stats.segment_count:,}")
    table.add_row("last compaction", _when(stats.last_compaction))
    _print(table)


BAR_WIDTH = 20


def _disk_use(disk_bytes: int, max_size: int) -> str:
    share = min(disk_bytes / max_size, 1.0)
    # Drawn in characters, not as rich's bar, which is colour alone and so blank in a pipe.
    filled = round(share * BAR_WIDTH)
    bar = "█" * filled + "░" * (BAR_WIDTH - filled)
    return f"{bar} {size(disk_bytes)} of {size(max_size)} ({share:.1%})"


def _when(seconds: float | None) -> str:
    if seconds is None:
        # The store counts from its opening, which for a command is just now.
        return "none while this command ran"
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc).astimezone()
    return moment.isoformat(timespec="seconds")


def verify_object(report: aiokv.VerifyReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "files": report.files,
        "records": report.records,
        "bytes_checked": report.bytes_checked,
        "problems": [
            {"file": str(problem.file), "offset": problem.offset, "what": problem.what}
            for problem in report.problems
        ],
    }


def print_problems_table(report: aiokv.VerifyReport) -> None:
    if not report.problems:
        return
    table = Table("file", "offset", "problem", box=None, padding=(0, 2, 0, 0))
    table.columns[0].overflow = "fold"
    for problem in report.problems:
        table.add_row(str(problem.file), str(problem.offset), problem.what)
    _print(table)


def _print(table: Table) -> None:
    # Out of a terminal (--human in a pipe) rich draws without colours, 80 columns wide.
    console = Console(file=sys.stdout)
    with console.capture() as captured:
        console.print(table)
    # rich pads every line to the table's width: spaces nobody wants in a file or a diff.
    lines = [line.rstrip() for line in captured.get().splitlines()]
    with stdout_guard():
        sys.stdout.write("".join(line + "\n" for line in lines))

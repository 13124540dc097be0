"""The chart: median operations per second of each workload and phase, aiokv's best mode next
to each peer, a grouped bar chart on a log scale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _bench.machine import machine_line
from _bench.peers.results import Workload
from _bench.peers.runners import AIOKV

CHART_SERIES = (
    AIOKV,
    "lmdb",
    "lmdb sync=False",
    "rocksdict",
    "diskcache",
    "sqlite3",
    "sqlitedict",
    "aiosqlite",
    "raw floor",
    "asyncio floor",
)
FLOORS = ("raw floor", "asyncio floor")
LABELS = {"1kb": "1 KB", "16kb": "16 KB", "mixed": "90/10 mix", "fsync": "fsync"}

Group = tuple[str, dict[str, float]]  # the label under a group, and each series' bar


def chart_groups(found: dict[str, Workload]) -> list[Group]:
    """A group per workload and phase: the best median of each series, and aiokv's best mode
    named in the label."""
    groups: list[Group] = []
    for key in ("1kb", "16kb", "mixed", "fsync"):
        workload = found.get(key)
        if workload is None:
            continue
        for phase in workload.phases:
            bars: dict[str, float] = {}
            for series in CHART_SERIES:
                best = workload.series_best(phase, series)
                if best is not None:
                    bars[series] = best[1]
            ours = workload.best(phase, AIOKV)
            mode = ours[0].runner.name.removeprefix("aiokv ").replace("fsync ", "") if ours else ""
            mode = mode.replace(" [", "\n[")  # the loop, if not asyncio's, on a line of its own
            title = LABELS[key] if key in ("mixed", "fsync") else f"{LABELS[key]} {phase}"
            groups.append((f"{title}\n({mode})", bars))
    return groups


def write_chart(path: Path, found: dict[str, Workload], info: dict[str, Any]) -> bool:
    """Draw the chart of the workloads ``found`` into ``path``; False if none was drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed: no chart")
        return False
    groups = chart_groups(found)
    if not groups:
        return False
    present = [s for s in CHART_SERIES if any(s in bars for _label, bars in groups)]
    width = 0.8 / len(present)
    figure, axes = plt.subplots(figsize=(max(10, 1.6 * len(groups)), 6))
    for position, series in enumerate(present):
        xs = [g + (position - (len(present) - 1) / 2) * width for g in range(len(groups))]
        heights = [bars.get(series, 0.0) for _label, bars in groups]
        axes.bar(
            xs,
            heights,
            width,
            label="aiokv (best mode)" if series == AIOKV else series,
            color="black" if series == AIOKV else None,
            hatch="//" if series in FLOORS else None,
            edgecolor="white" if series == AIOKV else None,
        )
    axes.set_xticks(range(len(groups)))
    axes.set_xticklabels([label for label, _bars in groups], fontsize=8)
    axes.set_yscale("log")
    axes.set_ylabel("operations per second (median)")
    axes.set_title(f"aiokv and its peers: {machine_line(info)}", fontsize=9)
    axes.legend(fontsize=8, ncols=len(present), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    axes.grid(axis="y", which="both", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True

"""The dataset parts run in order, their tables and their JSON."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from _bench.dataset.backup import run_backup
from _bench.dataset.batch import run_batch
from _bench.dataset.common import PARTS, CheckFailedError, Part, Settings, as_json, fmt_value
from _bench.dataset.iterate import run_iterate
from _bench.dataset.jsonl import run_jsonl
from _bench.text import GE, TIMES, print_table

RUNNERS: dict[str, Callable[[Settings], Part]] = {
    "batch": run_batch,
    "iterate": run_iterate,
    "jsonl": run_jsonl,
    "backup": run_backup,
}
assert tuple(RUNNERS) == PARTS


def run_dataset(settings: Settings) -> list[Part]:
    """Run the parts ``settings`` asks for. Each part's repeats are interleaved among its
    cases; a case whose result is wrong stops the run."""
    parts = []
    for key in settings.parts:
        try:
            parts.append(RUNNERS[key](settings))
        except CheckFailedError as exc:
            raise SystemExit(f"dataset {key}: {exc}; no figure is reported") from exc
        print(flush=True)
    return parts


def print_parts(parts: Sequence[Part], quick: bool) -> None:
    for part in parts:
        print(part.title)
        rows = []
        for figure in part.figures.values():
            summary = figure.span()
            if summary is None:
                continue
            median, low, high = (fmt_value(x, figure.unit) for x in summary)
            rows.append([figure.name, f"{figure.n:,}", f"{median} ({low}-{high})", figure.unit])
        print_table(["case", "keys", "median (min-max)", "unit"], rows)
        for ratio in part.ratios:
            value = part.ratio(ratio)
            if value is None:
                continue
            line = f"  {ratio.ours} / {ratio.theirs}: {value:.2f}{TIMES}"
            if ratio.target is not None:
                verdict = "met" if value >= ratio.target else "not met"
                line += f" (target {GE} {ratio.target:g}{TIMES}: {verdict})"
            print(line)
        for note in part.notes:
            print(f"  note: {note}")
        print()
    if quick and parts:
        print("dataset: quick run, smaller sizes than the targets name: smoke figures only")
        print()


def document(settings: Settings, parts: Sequence[Part]) -> dict[str, Any]:
    return {
        "settings": {
            "parts": list(settings.parts),
            "n": settings.n,
            "batch": settings.batch,
            "read_batch": settings.read_batch,
            "iterate_n": settings.iterate_n,
            "jsonl_n": settings.jsonl_n,
            "backup_bytes": settings.backup_bytes,
            "value_bytes": settings.value_bytes,
            "repeat": settings.repeat,
            "quick": settings.quick,
        },
        "parts": [as_json(part) for part in parts],
    }

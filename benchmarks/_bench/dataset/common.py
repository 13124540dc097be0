"""What the dataset parts share: their settings, their figures and ratios, fresh stores, and
the checks that keep a broken case from posting a figure."""

from __future__ import annotations

import gc
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiokv
from _bench.stats import Span, span
from _bench.text import fmt_rate
from _bench.values import Value, ValueOf

T = TypeVar("T")

PARTS = ("batch", "iterate", "jsonl", "backup")
RECORD_OVERHEAD = 28 + 32  # a record's header and a key of 32 characters, in bytes
MIN_MAX_SIZE = 2**30  # aiokv's default cap; larger stores get room for twice their records
CHECK_CHUNK = 10_000  # keys per read_many of an (untimed) check, to bound its memory
CHECK_SAMPLES = 1_000  # about how many values a sampled check compares


@dataclass(frozen=True)
class Settings:
    """The sizes of the dataset parts, ``--quick`` applied."""

    parts: tuple[str, ...]  # of PARTS, in that order
    n: int  # keys of the batch part
    batch: int  # keys per create_many call
    read_batch: int  # keys per read_many call
    iterate_n: int
    jsonl_n: int
    backup_bytes: int
    value_bytes: int
    repeat: int
    dir: Path | None
    quick: bool


class CheckFailedError(AssertionError):
    """A case's result is not what was written: the case is broken and posts no figure."""


@dataclass
class Figure:
    """One measured quantity of a part, one figure per repeat, in ``unit``."""

    name: str
    unit: str  # "creates/s", "keys/s", "items/s", "MB/s", "GB/s" or "s"
    n: int  # the keys of the store it was measured on
    runs: list[float] = field(default_factory=list)

    def span(self) -> Span | None:
        return span(self.runs)

    def median(self) -> float | None:
        summary = self.span()
        return summary[0] if summary else None


@dataclass(frozen=True)
class Ratio:
    """The median of figure ``ours`` over that of ``theirs``; a ``target`` it must reach."""

    ours: str
    theirs: str
    target: float | None = None


@dataclass
class Part:
    """One part of the dataset section: its figures in the order shown, the ratios between
    them and the notes that qualify them."""

    key: str
    title: str
    repeat: int
    figures: dict[str, Figure] = field(default_factory=dict)
    ratios: list[Ratio] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, unit: str, n: int) -> None:
        self.figures[name] = Figure(name, unit, n)

    def record(self, run: int, name: str, value: float) -> None:
        """Keep repeat ``run``'s figure of ``name`` and show it."""
        figure = self.figures[name]
        figure.runs.append(value)
        print(
            f"  run {run + 1}/{self.repeat} {name:<44} {fmt_value(value, figure.unit)} "
            f"{figure.unit}",
            flush=True,
        )

    def ratio(self, ratio: Ratio) -> float | None:
        ours, theirs = self.figures[ratio.ours].median(), self.figures[ratio.theirs].median()
        if ours is None or not theirs:
            return None
        return ours / theirs


def fmt_value(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3f}"
    if unit in ("MB/s", "GB/s"):
        return f"{value:,.2f}" if value < 10 else f"{value:,.1f}"
    return fmt_rate(value)


def max_size_for(n: int, value_bytes: int) -> int:
    """A cap with room for ``n`` records of ``value_bytes``-byte values twice over."""
    return max(MIN_MAX_SIZE, 2 * n * (value_bytes + RECORD_OVERHEAD))


async def timed(work: Awaitable[T]) -> tuple[float, T]:
    """The seconds ``work`` took, and its result; a full collection first, so that garbage
    left by the case before is not collected on this one's clock."""
    gc.collect()
    started = time.perf_counter()
    result = await work
    return time.perf_counter() - started, result


async def fill(
    store: aiokv.AsyncDataStore,
    keys: Sequence[str],
    value_of: ValueOf,
    batch: int,
) -> None:
    """Create ``value_of(i)`` under each ``keys[i]`` with ``create_many`` calls of ``batch``
    keys, making each batch's values only when it is written (untimed builds of large stores
    never hold all their values at once)."""
    for start in range(0, len(keys), batch):
        stop = min(len(keys), start + batch)
        await store.create_many((keys[i], value_of(i)) for i in range(start, stop))


async def check_store(
    store: aiokv.AsyncDataStore,
    keys: Sequence[str],
    value_of: Callable[[int], Value],
    what: str,
    *,
    every: int = 1,
) -> None:
    """Check that the store holds exactly ``len(keys)`` live keys and that ``keys[i]`` holds
    ``value_of(i)`` for every ``every``-th ``i`` (all of them by default).

    :raises CheckFailedError: a key is missing or holds another value, or the count is wrong.
    """
    live = (await store.stats()).live_keys
    if live != len(keys):
        raise CheckFailedError(f"{what}: {live:,} live keys, {len(keys):,} expected")
    indices = range(0, len(keys), every)
    for start in range(0, len(indices), CHECK_CHUNK):
        chunk = indices[start : start + CHECK_CHUNK]
        found = await store.read_many([keys[i] for i in chunk])
        for i in chunk:
            if found.get(keys[i]) != value_of(i):
                raise CheckFailedError(f"{what}: {keys[i]!r} is missing or not the value written")


def sample_step(n: int) -> int:
    """The step of a sampled check of ``n`` keys: about ``CHECK_SAMPLES`` values compared."""
    return max(1, n // CHECK_SAMPLES)


def as_json(part: Part) -> dict[str, Any]:
    """A part's figures and ratios as the JSON document of a run holds them."""
    figures = []
    for figure in part.figures.values():
        summary = figure.span()
        figures.append(
            {
                "name": figure.name,
                "unit": figure.unit,
                "n": figure.n,
                "runs": figure.runs,
                "median": summary[0] if summary else None,
                "min": summary[1] if summary else None,
                "max": summary[2] if summary else None,
            }
        )
    ratios = []
    for ratio in part.ratios:
        value = part.ratio(ratio)
        met = None if value is None or ratio.target is None else value >= ratio.target
        ratios.append(
            {
                "ours": ratio.ours,
                "theirs": ratio.theirs,
                "ratio": value,
                "target": ratio.target,
                "met": met,
            }
        )
    return {
        "part": part.key,
        "title": part.title,
        "figures": figures,
        "ratios": ratios,
        "notes": part.notes,
    }

"""Summaries of repeated figures: the median with the range, and percentiles."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import TypeVar

Span = tuple[float, float, float]  # median, minimum, maximum
Number = TypeVar("Number", int, float)


def span(figures: Iterable[float]) -> Span | None:
    """The median, minimum and maximum of ``figures``; None when there are none."""
    values = list(figures)
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def span_of(figures: Iterable[float]) -> Span:
    """``span`` of figures that cannot be missing."""
    summary = span(figures)
    if summary is None:
        raise ValueError("no figures to summarise")
    return summary


def span_dict(summary: Span) -> dict[str, float]:
    return dict(zip(("median", "min", "max"), summary, strict=True))


def percentile(ordered: Sequence[Number], q: float) -> Number:
    """Nearest-rank percentile of an already sorted sequence."""
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]

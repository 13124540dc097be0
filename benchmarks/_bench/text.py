"""Text output: aligned tables and figures."""

from __future__ import annotations

from collections.abc import Sequence

TIMES = "\u00d7"
GE = "\u2265"
LE = "\u2264"


def fmt_rate(rate: float) -> str:
    return f"{rate:,.0f}"


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """The first column left-aligned, the others right-aligned, a rule under the header."""
    table = [list(header), *(list(row) for row in rows)]
    widths = [max(len(row[col]) for row in table) for col in range(len(header))]
    for position, row in enumerate(table):
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells).rstrip())
        if position == 0:
            print("  ".join("-" * width for width in widths))

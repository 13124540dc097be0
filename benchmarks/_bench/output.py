"""The end of a run: its command, its total time, its figures saved as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def command() -> list[str]:
    """The command line of this run, interpreter first."""
    return [sys.executable, *sys.argv]


def print_total(elapsed: float) -> None:
    print(f"total time {elapsed:.0f} s; command: {' '.join(command())}")


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {path}")

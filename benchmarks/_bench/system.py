"""This process and its children: resident memory, child interpreters, directory sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiokv


def package_root() -> str:
    """The folder holding the aiokv package measured, for child interpreters to import it."""
    return str(Path(aiokv.__file__).resolve().parent.parent)


def run_json_child(code: str, args: Sequence[str], failure: str) -> dict[str, Any]:
    """Run ``python -c code args...`` and return the JSON object it prints.

    A child that fails stops the run with ``failure`` and the child's standard error.
    """
    child = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise SystemExit(f"{failure}:\n{child.stderr}")
    result: dict[str, Any] = json.loads(child.stdout)
    return result


def proc_status(field_name: str) -> int | None:
    """A ``kB`` figure of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes; None elsewhere."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU time of process ``pid`` so far, where /proc tells it."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def directory_bytes(path: Path) -> int:
    """The size of every file under ``path``, subfolders included."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def scan_directory(path: Path) -> tuple[int, list[str]]:
    """The total size of the files in ``path`` (as ``max_size`` counts them) and their names.

    Background compaction may remove a file between the listing and its ``stat``.
    """
    total = 0
    names = []
    with os.scandir(path) as entries:
        for entry in entries:
            try:
                total += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                continue
            names.append(entry.name)
    return total, names

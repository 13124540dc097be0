"""The machine a run measured, and the aiokv it measured."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import sqlite3
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiokv


def basic() -> dict[str, Any]:
    """The platform, the interpreter, the CPU count and aiokv's version."""
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpus": os.cpu_count(),
        "aiokv": aiokv.__version__,
    }


def detailed(libraries: Sequence[str]) -> dict[str, Any]:
    """The CPUs and their model, the kernel, the interpreter, the load, where aiokv comes from
    and the versions of aiokv, SQLite and ``libraries`` (None for one not installed)."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "aiokv_source": aiokv_source(),
        "versions": {
            "aiokv": aiokv.__version__,
            "sqlite": sqlite3.sqlite_version,
            **{name: version_of(name) for name in libraries},
        },
    }


def machine_line(info: dict[str, Any]) -> str:
    """One line of a ``detailed`` description."""
    revision = info.get("aiokv_source", {}).get("git")
    return (
        f"{info['cpus']} CPUs ({info['cpu_model']}), Linux {info['kernel']}, "
        f"{info['implementation']} {info['python']}, aiokv {info['versions']['aiokv']}"
        + (f" ({revision})" if revision else "")
    )


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version_of(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def aiokv_source() -> dict[str, Any]:
    """Where the aiokv measured comes from: its path, a digest of its modules, and its git
    revision when it has one (``dirty`` when the package's files differ from that revision).

    Child processes import aiokv afresh: comparing the digest at the end of a run with the one
    at the start tells whether they ran the code the rest of the run measured."""
    root = Path(aiokv.__file__).resolve().parent
    digest = hashlib.sha256()
    for module in sorted(root.rglob("*.py")):
        digest.update(str(module.relative_to(root)).encode() + b"\0" + module.read_bytes())
    source: dict[str, Any] = {"path": str(root), "sha256": digest.hexdigest()[:16]}
    try:
        head = _git(root, "rev-parse", "--short", "HEAD")
        changes = _git(root, "status", "--porcelain", "--", ".")
    except (OSError, subprocess.CalledProcessError):
        return source
    source["git"] = head + ("-dirty" if changes else "")
    return source


def _git(where: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(where), *args], capture_output=True, text=True, check=True
    ).stdout.strip()

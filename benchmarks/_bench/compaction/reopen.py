"""``reopen``: a store of small keys built and closed, then opened in fresh interpreters, with
its hint files and without them: the open's wall time and the resident memory it added."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiokv
from _bench.compaction.common import TMP_PREFIX, mib
from _bench.compaction.report import Report
from _bench.stats import span_dict, span_of
from _bench.system import package_root, proc_status, run_json_child, scan_directory

REOPEN_KEYS = 1_000_000
REOPEN_BATCH = 1000
REOPEN_REPEAT = 3

# Runs in a fresh interpreter so that its resident memory holds the store alone. argv: the
# directory holding the aiokv package under test, the store path.
REOPEN_CHILD = r"""
import asyncio, json, sys, time
sys.path.insert(0, sys.argv[1])
import aiokv

def status(name):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    return None

after_import = status("VmRSS")

async def main(path):
    store = aiokv.AsyncDataStore(path)
    started = time.perf_counter()
    await store.open()
    seconds = time.perf_counter() - started
    after_open = status("VmRSS")
    stats = await store.stats()
    await store.close()
    print(json.dumps({
        "seconds": seconds,
        "rss_after_import": after_import,
        "rss_after_open": after_open,
        "peak_rss": status("VmHWM"),
        "live_keys": stats.live_keys,
        "aiokv": aiokv.__file__,
    }))

asyncio.run(main(sys.argv[2]))
"""


async def _build_small(path: Path, n: int) -> None:
    async with aiokv.AsyncDataStore(path) as store:
        for start in range(0, n, REOPEN_BATCH):
            stop = min(n, start + REOPEN_BATCH)
            await asyncio.gather(
                *(store.create(f"key:{i:07d}", {"i": i}) for i in range(start, stop))
            )


def _reopen_child(root: str, path: Path, n: int, report: Report) -> dict[str, Any]:
    """Open the store in a fresh interpreter; its timing and memory figures."""
    result = run_json_child(REOPEN_CHILD, [root, str(path)], "reopen: the child process failed")
    if result["live_keys"] != n:
        report.check("reopen: every key back", False, f"{result['live_keys']:,} of {n:,} keys")
    if result["rss_after_open"] is not None:
        result["rss_bytes_per_key"] = (result["rss_after_open"] - result["rss_after_import"]) / n
    return result


def run_reopen(base: Path | None, n: int, repeat: int, report: Report) -> None:
    print(f"reopen: a store of {n:,} keys of {{'i': n}}, opened {repeat} times", flush=True)
    root = package_root()
    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=base) as tmp:
        path = Path(tmp) / "store"
        rss_before = proc_status("VmRSS")
        started = time.perf_counter()
        asyncio.run(_build_small(path, n))
        build_s = time.perf_counter() - started
        rss_built = proc_status("VmRSS")
        dir_bytes, names = scan_directory(path)
        print(
            f"  built in {build_s:.1f} s ({n / build_s:,.0f} creates/s): {dir_bytes:,} bytes "
            f"in {sum(name.endswith('.data') for name in names)} data file(s)",
            flush=True,
        )
        runs = _open_runs(root, path, n, repeat, report)
        scans = _open_runs_without_hints(root, path, n, repeat, report)
    result = {
        "keys": n,
        "build_seconds": build_s,
        "dir_bytes": dir_bytes,
        "open_seconds": _seconds([r["seconds"] for r in runs]),
        **_memory(runs, rss_before, rss_built, n),
        "hints": any(name.endswith(".hint") for name in names),
        "open_seconds_without_hints": _seconds(scans),
    }
    report.results["reopen"] = result
    if result["parent_rss_bytes_per_key"] is not None:
        print(
            f"  this process: RSS {mib(rss_before or 0)} before building, "
            f"{mib(rss_built or 0)} after building and closing "
            f"({result['parent_rss_bytes_per_key']:,.0f} bytes/key kept by the allocator)"
        )


def _open_runs(root: str, path: Path, n: int, repeat: int, report: Report) -> list[dict[str, Any]]:
    runs = []
    for run in range(repeat):
        result = _reopen_child(root, path, n, report)
        runs.append(result)
        print(
            f"  run {run + 1}/{repeat}: open {result['seconds']:.2f} s, RSS "
            f"{mib(result['rss_after_import'] or 0)} after import -> "
            f"{mib(result['rss_after_open'] or 0)} after open "
            f"({result.get('rss_bytes_per_key', float('nan')):,.0f} bytes/key), "
            f"peak {mib(result['peak_rss'] or 0)}",
            flush=True,
        )
    return runs


def _open_runs_without_hints(
    root: str, path: Path, n: int, repeat: int, report: Report
) -> list[float]:
    """The same store with its hint files removed before each open: every segment is scanned
    (and the open writes the hints again)."""
    scans = []
    for run in range(repeat):
        for hint in path.glob("*.hint"):
            hint.unlink()
        result = _reopen_child(root, path, n, report)
        scans.append(result["seconds"])
        print(f"  run {run + 1}/{repeat} without hints: open {result['seconds']:.2f} s")
    return scans


def _seconds(times: list[float]) -> dict[str, Any]:
    return {**span_dict(span_of(times)), "runs": times}


def _memory(
    runs: list[dict[str, Any]], rss_before: int | None, rss_built: int | None, n: int
) -> dict[str, Any]:
    """The children's resident memory per key and peak, and what the building process kept."""
    per_key = [r["rss_bytes_per_key"] for r in runs if "rss_bytes_per_key" in r]
    return {
        "child_rss_bytes_per_key": statistics.median(per_key) if per_key else None,
        "child_peak_rss": max((r["peak_rss"] or 0) for r in runs),
        "child_runs": runs,
        "parent_rss_before_build": rss_before,
        "parent_rss_after_build_and_close": rss_built,
        "parent_rss_bytes_per_key": (
            (rss_built - rss_before) / n if rss_before is not None and rss_built else None
        ),
    }

"""The ``reopen`` workload: each large store opened in fresh interpreters, its open time and
the resident memory the open added, per key.

Its keys are 32 characters long (``values.long_key_of``): the reopen target is set for keys of
that length, and an open's work grows with the keys it reads back. So its stores are built for
it, never taken over from the latency workload, whose keys are 12 characters long.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _bench.peers.config import REOPEN_READS, SEED, TMP_PREFIX
from _bench.peers.latency import store_dir
from _bench.peers.runners import AIOKV, Runner, latency_runners
from _bench.stats import Span, span
from _bench.stores import (
    aiokv_store,
    aiosqlite_store,
    diskcache_store,
    lmdb_store,
    raw_floor,
    rocksdict_store,
    sqlite_store,
    sqlitedict_store,
)
from _bench.system import directory_bytes, run_json_child
from _bench.values import LONG_KEY_CHARS, make_long_keys, small_value

# The child process: import the library, open the store, read REOPEN_READS random keys.
# argv: store path, key count, seed. Each library fills in IMPORT, OPEN (defining read(key) and
# close()); resident memory is read from /proc/self/status after each step: all of it (VmRSS)
# and its anonymous part (RssAnon: the process's own memory, without the pages of files it maps,
# which are the page cache's).
REOPEN_CHILD = """
import json, os, random, sys, time
path, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def status(name):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None

{import_}
after_import, anon_after_import = status("VmRSS"), status("RssAnon")
started = time.perf_counter()
{open_}
seconds = time.perf_counter() - started
after_open, anon_after_open = status("VmRSS"), status("RssAnon")
for i in random.Random(seed).sample(range(n), min(n, {reads})):
    key = ("key:%08d" % i).ljust({key_chars}, "-")
    if read(key) != {{"i": i}}:
        raise SystemExit("wrong value for " + key)
after_reads = status("VmRSS")
close()
print(json.dumps({{
    "seconds": seconds,
    "rss_after_import": after_import,
    "rss_after_open": after_open,
    "rss_after_reads": after_reads,
    "anon_after_import": anon_after_import,
    "anon_after_open": anon_after_open,
    "peak_rss": status("VmHWM"),
}}))
"""

# Each series' module: its REOPEN_IMPORT and REOPEN_OPEN go into the child.
REOPEN_MODULES = {
    AIOKV: aiokv_store,
    "lmdb": lmdb_store,
    "rocksdict": rocksdict_store,
    "diskcache": diskcache_store,
    "sqlite3": sqlite_store,
    "sqlitedict": sqlitedict_store,
    "aiosqlite": aiosqlite_store,
    "raw floor": raw_floor,
}


def reopen_child_code(series: str) -> str:
    module = REOPEN_MODULES[series]
    return REOPEN_CHILD.format(
        import_=module.REOPEN_IMPORT,
        open_=module.REOPEN_OPEN,
        reads=REOPEN_READS,
        key_chars=LONG_KEY_CHARS,
    )


@dataclass
class ReopenRow:
    series: str
    keys: int
    disk_bytes: int
    runs: list[dict[str, Any]] = field(default_factory=list)

    def span(self, name: str) -> Span | None:
        return span(run[name] for run in self.runs if run.get(name) is not None)


def reopen_workload(
    n: int, runs: int, base: Path | None, stores: dict[str, Path], skipped: Sequence[str]
) -> list[ReopenRow]:
    """Open each ``n``-key store in fresh interpreters; build the stores not built already."""
    runners, _notes = latency_runners()
    print(
        f"reopen: each {n:,}-key store ({LONG_KEY_CHARS}-character keys) opened in {runs} fresh "
        f"processes: open time and resident memory per key, then {REOPEN_READS:,} random reads",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=base) as tmp:
        rows = build_stores(runners, n, Path(tmp), stores, skipped)
        for run in range(runs):
            for row in rows:
                result = reopen_child(row.series, stores[row.series], n, SEED + run)
                row.runs.append(result)
                print(
                    f"  {run + 1}/{runs} {row.series:<16} open {result['seconds']:.3f} s, "
                    f"{result.get('bytes_per_key', float('nan')):,.1f} B/key after open "
                    f"({result.get('anon_bytes_per_key', float('nan')):,.1f} anonymous), "
                    f"{result.get('bytes_per_key_after_reads', float('nan')):,.1f} B/key after "
                    f"{REOPEN_READS:,} reads",
                    flush=True,
                )
    return rows


def build_stores(
    runners: Sequence[Runner],
    n: int,
    where: Path,
    stores: dict[str, Path],
    skipped: Sequence[str],
) -> list[ReopenRow]:
    """A row per runner not ``skipped`` (too slow to build at the latency workload's largest
    size), its store of ``n`` long keys built in ``where`` and listed in ``stores``. The
    stores ``stores`` holds already are the latency workload's, of shorter keys: not used."""
    rows: list[ReopenRow] = []
    keys: list[str] | None = None
    for runner in runners:
        if runner.name in skipped:
            print(f"  note: {runner.name}: skipped (its {n:,}-key store was not built)")
            continue
        keys = keys if keys is not None else make_long_keys(n)
        path = store_dir(where, runner.series)
        started = time.perf_counter()
        runner.load(path, keys, small_value)
        print(f"  {runner.name}: built in {time.perf_counter() - started:.1f} s", flush=True)
        stores[runner.series] = path
        rows.append(ReopenRow(runner.series, n, directory_bytes(path)))
    return rows


def reopen_child(series: str, path: Path, n: int, seed: int) -> dict[str, Any]:
    """One open of the ``n``-key store at ``path`` in a fresh interpreter, and its figures."""
    result = run_json_child(
        reopen_child_code(series),
        [str(path), str(n), str(seed)],
        f"reopen: {series}: the child failed",
    )
    if result["rss_after_open"] is not None and result["rss_after_import"]:
        result["bytes_per_key"] = (result["rss_after_open"] - result["rss_after_import"]) / n
        result["bytes_per_key_after_reads"] = (
            result["rss_after_reads"] - result["rss_after_import"]
        ) / n
    if result["anon_after_open"] is not None and result["anon_after_import"]:
        result["anon_bytes_per_key"] = (result["anon_after_open"] - result["anon_after_import"]) / n
    return result

"""Compaction under load: the size cap during churn, reopen time and memory, read latency.

Three measurements, each on a fresh store in a new temporary directory:

* ``churn``: 1,000,000 creates of 1000-byte JSON values into a store capped at 256 MiB (16 MiB
  segments), at most 50,000 keys live at once. Variant ``delete``: before each batch of 100
  creates, the oldest keys are deleted so that no more than 50,000 stay live. Variant ``ttl``:
  no deletes; every key has ``ttl=10`` and a ``ManualClock`` moves 1 s per 5,000 creates, so
  about 50,000 are live. After every batch the directory's size is summed and checked against
  ``max_size``; no create may fail with ``StoreFullError``, and at the end the store must hold
  ``disk_bytes <= 1.5 * live_bytes + segment size``. Every key still live is then read back.
* ``reopen``: a store of 1,000,000 small keys (``{"i": n}``) is built and closed, then opened
  three times, each in a fresh Python process: the wall time of ``await store.open()`` and the
  resident memory it added, per key.
* ``latency``: 300,000 keys of 1000-byte values in 64 MiB segments, every other key deleted,
  background compaction off. Reads of random live keys, one at a time from one task, are timed
  first with nothing else running, then while ``store.compact()`` runs in another task. The
  target: p99 during compaction at most 5 ms.

``--quick`` makes every count, ``max_size`` and segment size ten times smaller. Run from the
repository root::

    python benchmarks/bench_compaction.py                      # the full run, about 5 minutes
    python benchmarks/bench_compaction.py --quick              # a smoke test, about 30 s
    python benchmarks/bench_compaction.py --only latency       # one measurement
    python benchmarks/bench_compaction.py --json results.json  # also write every figure

The exit status is 1 if any check fails (a ``StoreFullError``, the cap crossed, a lost key, the
size bound or the latency target missed).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _bench.compaction.churn import (
    CHURN_BATCH,
    CHURN_CREATES,
    CHURN_LIVE,
    CHURN_MAX_SIZE,
    CHURN_TTL_S,
    ChurnSettings,
    run_churn,
)
from _bench.compaction.common import describe
from _bench.compaction.latency import (
    BASELINE_READS,
    LATENCY_KEYS,
    LATENCY_SEGMENT_BYTES,
    run_latency,
)
from _bench.compaction.reopen import REOPEN_KEYS, REOPEN_REPEAT, run_reopen
from _bench.compaction.report import Report, print_figures, summary_rows
from _bench.output import command, print_total, write_json

MEASUREMENTS = ("churn", "reopen", "latency")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        action="append",
        choices=MEASUREMENTS,
        help="run this measurement only (may be given more than once; default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="every count ten times smaller")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument("--dir", type=Path, help="where the temporary stores go (default: TMPDIR)")
    return parser.parse_args(argv)


def run(only: list[str], scale: int, base: Path | None, report: Report) -> None:
    """The measurements asked for, every count divided by ``scale``."""
    if "churn" in only:
        settings = ChurnSettings(
            creates=CHURN_CREATES // scale,
            live=CHURN_LIVE // scale,
            batch=CHURN_BATCH,
            max_size=CHURN_MAX_SIZE // scale,
            ttl_s=CHURN_TTL_S,
        )
        run_churn(base, settings, report)
        print()
    if "reopen" in only:
        run_reopen(base, REOPEN_KEYS // scale, REOPEN_REPEAT, report)
        print()
    if "latency" in only:
        run_latency(
            base,
            LATENCY_KEYS // scale,
            LATENCY_SEGMENT_BYTES // scale,
            BASELINE_READS // scale,
            report,
        )
        print()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    only = args.only or list(MEASUREMENTS)
    scale = 10 if args.quick else 1

    info = describe()
    print(
        f"aiokv {info['aiokv']} ({info['aiokv_path']}) on {info['platform']}, "
        f"{info['implementation']} {info['python']}, {info['cpus']} CPUs"
    )
    print(f"stores in {args.dir or tempfile.gettempdir()}; scale 1/{scale}")
    print()

    report = Report()
    started = time.perf_counter()
    run(only, scale, args.dir, report)
    elapsed = time.perf_counter() - started

    print(
        f"summary: {info['platform']}, {info['cpus']} CPUs, {info['implementation']} "
        f"{info['python']}, aiokv {info['aiokv']}"
    )
    print()
    print_figures(summary_rows(report))
    print()
    for check in report.checks:
        print(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
    print()
    print_total(elapsed)

    if args.json is not None:
        document = {
            "machine": info,
            "command": command(),
            "quick": args.quick,
            "scale": scale,
            "elapsed_s": elapsed,
            "results": report.results,
            "checks": [
                {"name": c.name, "passed": c.passed, "detail": c.detail} for c in report.checks
            ],
        }
        write_json(args.json, document)
    return 0 if all(check.passed for check in report.checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())

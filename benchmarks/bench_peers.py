"""aiokv against its peers: the same workloads, the same JSON values, one process tree.

aiokv runs through its public API only, in the ways an application uses it: ``await`` from one
task, ``await`` from 100 concurrent tasks, creates in ``asyncio.gather`` batches of 100 fresh
coroutines (each on asyncio's default event loop and, where it is installed, on uvloop's: the
rows marked ``[uvloop]``), ``DataStore`` from one thread and from 4 threads. The peers are lmdb
(``sync=True``, its default, and ``sync=False``), rocksdict (``Rdict``), diskcache (``Cache``),
sqlite3 (WAL, ``synchronous=NORMAL``, one ``key TEXT PRIMARY KEY, value TEXT`` table),
sqlitedict and aiosqlite. Every peer stores the compact JSON of the same dict values and
decodes it on read with ``json.loads``, so all of them pay the serialisation aiokv pays inside.
Two floors, not stores, bound what a store can do:

* the raw floor: an append-only file read back with ``os.pread`` through a dict of ``key ->
  (offset, size)``, the least any log-structured store can do;
* the asyncio floor, for creates only: 100 tasks each queue an ``orjson``-encoded record with
  its CRC-32 and await a future; one writer task joins the queue into one ``os.write`` and
  resolves the futures, the least a one-writer asyncio store can do (on both loops).

Workloads, each on a fresh store in a temporary directory under ``--dir``:

* ``1kb``: create, then read in random order, then delete ``--n`` keys (100,000) of 1,000-byte
  values (``{"i": i, "pad": ...}``), each phase timed on its own; then, on a fresh store, the
  creates of the same keys with nested values of 1,000 bytes (an id, a 50-int array, 30 short
  fields, bools and nulls): aiokv's 100-task modes, the asyncio floor and rocksdict;
* ``16kb``: create, read and delete ``--n / 5`` keys (20,000) of 16,000-byte flat values;
* ``mixed``: ``--n`` keys pre-loaded, then ``--n`` operations, 90% reads of random keys and
  10% creates of new ones, split among 4 threads (aiokv: one shared ``DataStore``);
* ``fsync``: ``--n / 5`` creates, each acknowledged only after an fsync: aiokv with
  ``durability="fsync"`` against lmdb ``sync=True`` (one writer), sqlite3 ``synchronous=FULL``
  and the raw floor with an fsync per append;
* ``latency``: p50 and p99 of single reads (``time.perf_counter_ns`` around each call) of
  random keys in stores of 10,000, 100,000 and 1,000,000 small keys (``{"i": n}``); a peer
  whose load would take more than about two minutes at the largest size is skipped there;
* ``reopen``: a store of 1,000,000 keys of 32 characters per library is opened in a fresh
  interpreter; the open time and the resident memory the open added, per key, in all and its
  anonymous part (``RssAnon``: without the mapped file pages, which are page cache); median of
  3 child processes.

Every read is checked against the value written and every error is fatal, so a broken runner
cannot post a good figure. Repeats are interleaved across runners. The summary gives, for each
workload, the median of the repeats with the range, the ratio of aiokv's best mode to the best
peer and to the best floor, and the targets the store is built to meet. Run from the repository
root, with the ``bench`` extra installed::

    python benchmarks/bench_peers.py                      # the full run, about 20 minutes
    python benchmarks/bench_peers.py --quick              # a smoke test, well under a minute
    python benchmarks/bench_peers.py --only 1kb --only latency
    python benchmarks/bench_peers.py --json benchmarks/results/peers.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _bench.peers import config
from _bench.peers.config import Settings
from _bench.peers.session import run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--n",
        type=int,
        default=100_000,
        help="keys of the 1kb and mixed workloads; the 16kb and fsync ones use n/5 "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--slow-n",
        type=int,
        default=config.SLOW_N,
        help="keys of the 1kb workload for the runners doing a few thousand ops/s: DataStore, "
        "lmdb sync=True, sqlitedict, aiosqlite (default: %(default)s)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each runner (default: %(default)s)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=config.WORKLOADS,
        help="run this workload only (may be given more than once; default: all)",
    )
    parser.add_argument(
        "--latency-reads",
        type=int,
        default=config.LATENCY_READS,
        help="timed reads per runner, store size and repeat (default: %(default)s)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure here")
    parser.add_argument(
        "--chart",
        type=Path,
        metavar="PATH",
        default=Path("docs/bench_peers.png"),
        help="where the chart goes (default: %(default)s)",
    )
    parser.add_argument("--no-chart", action="store_true", help="do not write the chart")
    parser.add_argument("--dir", type=Path, help="where the temporary stores go (default: TMPDIR)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test: n 5,000, latency at 1,000/5,000/20,000 keys, reopen of 20,000, "
        "one run each",
    )
    return parser


def parse_settings(argv: list[str] | None) -> Settings:
    """The command line, ``--quick`` applied and the figures checked."""
    parser = build_parser()
    args = parser.parse_args(argv)
    sizes = config.LATENCY_SIZES
    reopen_keys = config.REOPEN_KEYS
    reopen_runs = config.REOPEN_RUNS
    if args.quick:
        args.n = min(args.n, config.QUICK_N)
        args.slow_n = min(args.slow_n, config.QUICK_SLOW_N)
        args.repeat = 1
        args.latency_reads = min(args.latency_reads, config.QUICK_LATENCY_READS)
        sizes = config.QUICK_LATENCY_SIZES
        reopen_keys = config.QUICK_REOPEN_KEYS
        reopen_runs = 1
    if min(args.n // 5, args.slow_n, args.repeat, args.latency_reads) < 1:
        parser.error("--n must be at least 5, --slow-n, --repeat and --latency-reads at least 1")
    if args.n // 5 < config.ASYNC_TASKS:
        parser.error(f"--n must be at least {5 * config.ASYNC_TASKS}")
    return Settings(
        n=args.n,
        slow_n=args.slow_n,
        repeat=args.repeat,
        only=tuple(args.only or config.WORKLOADS),
        latency_reads=args.latency_reads,
        json=args.json,
        chart=None if args.no_chart else args.chart,
        dir=args.dir,
        quick=args.quick,
        latency_sizes=sizes,
        reopen_keys=reopen_keys,
        reopen_runs=reopen_runs,
    )


def main(argv: list[str] | None = None) -> int:
    return run(parse_settings(argv))


if __name__ == "__main__":
    raise SystemExit(main())

"""Throughput of the core operations: creates, reads and deletes per second.

Every measurement runs against a fresh store in a new temporary directory, with values whose
compact JSON is ``--value-bytes`` long (1000 by default) and keys of 12 characters:

* ``async, 1 task``: one coroutine awaiting each call in turn;
* ``async, 100 tasks``: the keys split among 100 coroutines running at once;
* ``sync, 1 thread`` / ``sync, 4 threads``: ``DataStore`` called from plain threads;
* ``fsync, 1 task`` / ``fsync, 100 tasks``: creates with ``durability="fsync"``.

Each phase (all creates, then all reads, then all deletes, in key order) is timed on its own,
without the store's open and close. Each case is repeated ``--repeat`` times; the table shows
the median and the range.

Then the dataset section, the calls that move many keys at once, on keys of 32 characters:

* ``batch``: ``create_many`` of ``--batch`` keys (10,000) per call against the 100-task
  ``await create`` on the same ``--n`` keys and values, and ``read_many`` of ``--read-batch``
  keys (1,000) per call against ``await read`` from one task; flat and nested values;
* ``iterate``: ``keys()`` and ``items()`` over ``--iterate-n`` keys (1,000,000) of small
  values, against an lmdb cursor over the same data (when lmdb is installed);
* ``jsonl``: ``export_jsonl`` and ``import_jsonl`` of ``--jsonl-n`` keys (200,000), MB/s;
* ``backup``: ``backup`` of a store of ``--backup-bytes`` of values (1 GB) on the same
  file system: seconds and GB/s.

``--only`` picks the core cases (``core``), the dataset section (``dataset``) or one of its
parts. Run from the repository root::

    python benchmarks/bench_core.py                     # the full run, a few minutes
    python benchmarks/bench_core.py --quick             # a smoke test, seconds
    python benchmarks/bench_core.py --only dataset      # the dataset section only
    python benchmarks/bench_core.py --json results.json # also write every figure as JSON
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _bench import machine
from _bench.core import (
    ASYNC_TASKS,
    PHASES,
    Case,
    Run,
    document,
    measure_size,
    print_cases,
    run_async,
    run_cases,
    run_sync,
)
from _bench.dataset import report as dataset_report
from _bench.dataset.common import PARTS
from _bench.dataset.common import Settings as DatasetSettings
from _bench.output import print_total, write_json
from _bench.values import ID_OVERHEAD, Value, id_pad, id_value, make_keys

SYNC_THREADS = 4
SIZE_KEYS = 100_000  # the store whose directory size is reported
SECTIONS = ("core", "dataset", *PARTS)  # what --only picks: "dataset" is every part

# The dataset section's sizes, and what --quick makes of them.
BATCH, QUICK_BATCH = 10_000, 1_000  # keys per create_many call
READ_BATCH = 1_000  # keys per read_many call
ITERATE_N, QUICK_ITERATE_N = 1_000_000, 20_000
JSONL_N, QUICK_JSONL_N = 200_000, 5_000
BACKUP_BYTES, QUICK_BACKUP_BYTES = 10**9, 20 * 10**6


def make_values(n: int, value_bytes: int) -> list[Value]:
    """``n`` distinct dicts whose compact JSON is exactly ``value_bytes`` long."""
    if value_bytes < ID_OVERHEAD:
        raise SystemExit(f"--value-bytes must be at least {ID_OVERHEAD}")
    pad = id_pad(value_bytes)  # one string shared by every value
    return [id_value(i, pad) for i in range(n)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--n", type=int, default=100_000, help="keys per AsyncDataStore run (default: %(default)s)"
    )
    parser.add_argument(
        "--sync-n", type=int, default=20_000, help="keys per DataStore run (default: %(default)s)"
    )
    parser.add_argument(
        "--fsync-n",
        type=int,
        default=20_000,
        help='keys per durability="fsync" run (default: %(default)s)',
    )
    parser.add_argument(
        "--value-bytes",
        type=int,
        default=1000,
        help="size of each value's compact JSON (default: %(default)s)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each case (default: %(default)s)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        help="run this only: the core cases, the dataset section or one of its parts "
        "(may be given more than once; default: core and dataset)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=BATCH,
        help="keys per create_many call (default: %(default)s)",
    )
    parser.add_argument(
        "--read-batch",
        type=int,
        default=READ_BATCH,
        help="keys per read_many call (default: %(default)s)",
    )
    parser.add_argument(
        "--iterate-n",
        type=int,
        default=ITERATE_N,
        help="keys of the store iterated (default: %(default)s)",
    )
    parser.add_argument(
        "--jsonl-n",
        type=int,
        default=JSONL_N,
        help="keys exported and imported (default: %(default)s)",
    )
    parser.add_argument(
        "--backup-bytes",
        type=int,
        default=BACKUP_BYTES,
        help="bytes of values in the store backed up (default: %(default)s)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument("--dir", type=Path, help="where the temporary stores go (default: TMPDIR)")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke test: small n, one run of each case"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.n = min(args.n, 5_000)
        args.sync_n = min(args.sync_n, 2_000)
        args.fsync_n = min(args.fsync_n, 1_000)
        args.repeat = 1
        args.batch = min(args.batch, QUICK_BATCH)
        args.iterate_n = min(args.iterate_n, QUICK_ITERATE_N)
        args.jsonl_n = min(args.jsonl_n, QUICK_JSONL_N)
        args.backup_bytes = min(args.backup_bytes, QUICK_BACKUP_BYTES)
    args.size_keys = SIZE_KEYS if not args.quick else args.n
    only = set(args.only or ("core", "dataset"))
    args.core = "core" in only
    args.parts = tuple(part for part in PARTS if part in only or "dataset" in only)
    sizes = (args.n, args.sync_n, args.fsync_n, args.repeat, args.batch, args.read_batch)
    if min(*sizes, args.iterate_n, args.jsonl_n, args.backup_bytes) < 1:
        parser.error(
            "--n, --sync-n, --fsync-n, --repeat, --batch, --read-batch, --iterate-n, "
            "--jsonl-n and --backup-bytes must be at least 1"
        )
    if args.n < ASYNC_TASKS or args.fsync_n < ASYNC_TASKS:
        parser.error(f"--n and --fsync-n must be at least {ASYNC_TASKS}")
    return args


def dataset_settings(args: argparse.Namespace) -> DatasetSettings:
    return DatasetSettings(
        parts=args.parts,
        n=args.n,
        batch=args.batch,
        read_batch=args.read_batch,
        iterate_n=args.iterate_n,
        jsonl_n=args.jsonl_n,
        backup_bytes=args.backup_bytes,
        value_bytes=args.value_bytes,
        repeat=args.repeat,
        dir=args.dir,
        quick=args.quick,
    )


def print_header(args: argparse.Namespace, info: dict[str, Any]) -> None:
    print(
        f"aiokv {info['aiokv']} on {info['platform']}, {info['implementation']} "
        f"{info['python']}, {info['cpus']} CPUs"
    )
    print(
        f"values: {args.value_bytes} bytes of JSON; {args.repeat} run(s) per case, each on a "
        f"fresh store in {args.dir or tempfile.gettempdir()}"
    )
    if args.core:
        print(
            f"core cases: keys of 12 characters; n: {args.n:,} keys for AsyncDataStore, "
            f"{args.sync_n:,} for DataStore (each call is a cross-thread hop, so fewer keys "
            f'keep the run short), {args.fsync_n:,} for "fsync"'
        )
    if args.parts:
        print(
            f"dataset: {', '.join(args.parts)}; keys of 32 characters; create_many of "
            f"{args.batch:,} per call, read_many of {args.read_batch:,}; {args.n:,} keys in "
            f"batch, {args.iterate_n:,} iterated, {args.jsonl_n:,} exported, "
            f"{args.backup_bytes:,} bytes of values backed up"
        )
    print()


def make_plans(
    args: argparse.Namespace, all_keys: Sequence[str], all_values: Sequence[Value]
) -> list[tuple[Case, Run]]:
    """Every case, with the run that measures it once."""

    def plan(
        name: str, n: int, phases: tuple[str, ...], run: Callable[..., dict[str, float]]
    ) -> tuple[Case, Run]:
        keys, values = all_keys[:n], all_values[:n]
        return Case(name, n, phases), lambda: run(keys, values, phases)

    base = args.dir
    create = ("create",)
    on_uvloop = []
    if importlib.util.find_spec("uvloop") is not None:  # the same cases on uvloop's loop
        on_uvloop = [
            plan(
                f"uvloop, {tasks} task{'s' if tasks > 1 else ''}",
                args.n,
                PHASES,
                lambda *a, tasks=tasks: run_async(base, *a, tasks=tasks, loop="uvloop"),
            )
            for tasks in (1, ASYNC_TASKS)
        ]
    return [
        plan("async, 1 task", args.n, PHASES, lambda *a: run_async(base, *a, tasks=1)),
        plan(
            f"async, {ASYNC_TASKS} tasks",
            args.n,
            PHASES,
            lambda *a: run_async(base, *a, tasks=ASYNC_TASKS),
        ),
        *on_uvloop,
        plan("sync, 1 thread", args.sync_n, PHASES, lambda *a: run_sync(base, *a, threads=1)),
        plan(
            f"sync, {SYNC_THREADS} threads",
            args.sync_n,
            PHASES,
            lambda *a: run_sync(base, *a, threads=SYNC_THREADS),
        ),
        plan(
            "fsync, 1 task",
            args.fsync_n,
            create,
            lambda *a: run_async(base, *a, tasks=1, durability="fsync"),
        ),
        plan(
            f"fsync, {ASYNC_TASKS} tasks",
            args.fsync_n,
            create,
            lambda *a: run_async(base, *a, tasks=ASYNC_TASKS, durability="fsync"),
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine.basic()
    print_header(args, info)
    size_keys = args.size_keys
    started = time.perf_counter()
    cases: list[Case] = []
    size: int | None = None
    if args.core:
        biggest = max(args.n, args.sync_n, args.fsync_n, size_keys)
        all_keys = make_keys(biggest)
        all_values = make_values(biggest, args.value_bytes)
        cases = run_cases(make_plans(args, all_keys, all_values), args.repeat)
        size = measure_size(args.dir, all_keys[:size_keys], all_values[:size_keys])
        print()
    settings = dataset_settings(args)
    parts = dataset_report.run_dataset(settings)
    elapsed = time.perf_counter() - started

    if size is not None:
        print_cases(cases)
        print()
        print(
            f"store directory after {size_keys:,} creates of {args.value_bytes}-byte values: "
            f"{size:,} bytes ({size / size_keys:,.1f} bytes per key; a record is a 28-byte "
            f"header, the key and the value)"
        )
        print()
    dataset_report.print_parts(parts, args.quick)
    print_total(elapsed)
    if args.json is not None:
        doc = document(
            info,
            args.value_bytes,
            args.repeat,
            cases,
            None if size is None else (size_keys, size),
        )
        doc["dataset"] = dataset_report.document(settings, parts)
        write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

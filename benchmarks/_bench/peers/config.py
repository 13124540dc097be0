"""The sizes and counts of the workloads, and the settings of one run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

WORKLOADS = ("1kb", "16kb", "mixed", "fsync", "latency", "reopen")
SMALL_VALUE_BYTES = 1_000
LARGE_VALUE_BYTES = 16_000  # under aiokv.MAX_VALUE_BYTES (16,384)
NESTED = "create nested"  # the 1kb workload's phase of creates of nested values
ASYNC_TASKS = 100
BATCH = 10_000  # keys per call of the 1kb workload's batch rows (create_many, WriteBatch)
THREADS = 4
MIXED_CREATE_SHARE = 0.1
LATENCY_SIZES = (10_000, 100_000, 1_000_000)
LATENCY_READS = 20_000  # timed reads per runner, size and repeat
LOAD_LIMIT_S = 120.0  # a peer whose load of the largest latency store would take longer skips it
REOPEN_KEYS = 1_000_000
REOPEN_RUNS = 3
REOPEN_READS = 1_000
SLOW_N = 20_000  # keys for the runners that do a few thousand operations per second
SEED = 20_260_401
TMP_PREFIX = "aiokv-peers-"

# What ``--quick`` runs: n, slow-n and latency reads at most these, latency and reopen smaller.
QUICK_N = 5_000
QUICK_SLOW_N = 2_000
QUICK_LATENCY_READS = 2_000
QUICK_LATENCY_SIZES = (1_000, 5_000, 20_000)
QUICK_REOPEN_KEYS = 20_000


@dataclass(frozen=True)
class Settings:
    """One run's command line, ``--quick`` applied."""

    n: int
    slow_n: int
    repeat: int
    only: tuple[str, ...]
    latency_reads: int
    json: Path | None
    chart: Path | None  # None: no chart
    dir: Path | None
    quick: bool
    latency_sizes: tuple[int, ...] = LATENCY_SIZES
    reopen_keys: int = REOPEN_KEYS
    reopen_runs: int = REOPEN_RUNS

"""Where the time of aiokv's hot paths goes: cProfile over reads, creates and an open.

Each path runs on a fresh store in a temporary directory, under :mod:`cProfile`, and the
functions that took the most time of their own are printed with their share of the total.
cProfile adds a fixed cost to every Python call, so the shares of small functions are
overstated; what it shows reliably is which steps there are and how they rank. For absolute
rates use ``bench_core.py`` and ``bench_peers.py``.

    python benchmarks/profile_paths.py                 # every path, about a minute
    python benchmarks/profile_paths.py --only read --top 25
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiokv

VALUE = {"name": "x" * 960, "n": 1}  # about 1,000 bytes of JSON


def keys_for(n: int) -> list[str]:
    return [f"key{i:09d}" for i in range(n)]


async def fill(path: Path, keys: list[str], value: dict[str, Any]) -> None:
    async with aiokv.AsyncDataStore(path) as store:
        for start in range(0, len(keys), 1000):
            await asyncio.gather(*(store.create(k, value) for k in keys[start : start + 1000]))


def profile_read(path: Path, n: int) -> cProfile.Profile:
    keys = keys_for(n)
    asyncio.run(fill(path, keys, VALUE))
    order = random.Random(1).sample(keys, len(keys))
    profiler = cProfile.Profile()

    async def run() -> None:
        async with aiokv.AsyncDataStore(path) as store:
            profiler.enable()
            for key in order:
                await store.read(key)
            profiler.disable()

    asyncio.run(run())
    return profiler


def profile_create(path: Path, n: int, tasks: int = 100) -> cProfile.Profile:
    keys = keys_for(n)
    profiler = cProfile.Profile()

    async def run() -> None:
        async with aiokv.AsyncDataStore(path) as store:

            async def worker(part: list[str]) -> None:
                for key in part:
                    await store.create(key, VALUE)

            profiler.enable()
            await asyncio.gather(*(worker(keys[i::tasks]) for i in range(tasks)))
            profiler.disable()

    asyncio.run(run())
    return profiler


def profile_sync_read(path: Path, n: int) -> cProfile.Profile:
    keys = keys_for(n)
    asyncio.run(fill(path, keys, VALUE))
    order = random.Random(1).sample(keys, len(keys))
    profiler = cProfile.Profile()
    with aiokv.DataStore(path) as store:
        profiler.enable()
        for key in order:
            store.read(key)
        profiler.disable()
    return profiler


def profile_sync_create(path: Path, n: int) -> cProfile.Profile:
    keys = keys_for(n)
    profiler = cProfile.Profile()
    with aiokv.DataStore(path) as store:
        # The loop thread's share shows only if it is profiled too: threading.setprofile
        # reaches threads started later, so the store's own thread is not covered; the
        # calling thread's side is what is shown.
        profiler.enable()
        for key in keys:
            store.create(key, VALUE)
        profiler.disable()
    return profiler


def profile_open(path: Path, n: int) -> cProfile.Profile:
    keys = keys_for(n)

    async def build() -> None:
        async with aiokv.AsyncDataStore(path) as store:
            for start in range(0, n, 1000):
                await asyncio.gather(
                    *(store.create(k, {"i": i}) for i, k in enumerate(keys[start : start + 1000]))
                )

    asyncio.run(build())
    profiler = cProfile.Profile()

    async def run() -> None:
        store = aiokv.AsyncDataStore(path)
        open_files = store._open_files

        def profiled() -> Any:  # the open's work, in the worker thread that runs it
            profiler.enable()
            try:
                return open_files()
            finally:
                profiler.disable()

        store._open_files = profiled  # type: ignore[method-assign]
        await store.open()
        await store.close()

    asyncio.run(run())
    return profiler


PATHS: dict[str, tuple[str, Callable[[Path, int], cProfile.Profile], int]] = {
    "read": ("await store.read(), 1 task, random keys", profile_read, 100_000),
    "create": ("await store.create(), 100 tasks", profile_create, 100_000),
    "sync-read": ("DataStore.read(), 1 thread, random keys", profile_sync_read, 100_000),
    "sync-create": (
        "DataStore.create(), 1 thread (calling thread only)",
        profile_sync_create,
        20_000,
    ),
    "open": ("open() of 1,000,000 small keys", profile_open, 1_000_000),
}


def report(title: str, n: int, profiler: cProfile.Profile, top: int) -> None:
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"\n== {title}: {n:,} operations, {total:.2f} s under the profiler")
    print(f"{'own s':>8} {'share':>6} {'calls':>10}  function")
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    for (filename, line, name), (_cc, calls, tottime, _cum, _callers) in rows[:top]:
        where = f"{Path(filename).name}:{line}" if line else filename
        print(f"{tottime:8.3f} {tottime / total:6.1%} {calls:10,}  {name} ({where})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=PATHS, help="profile this path only")
    parser.add_argument("--top", type=int, default=15, help="functions shown per path")
    parser.add_argument("--dir", type=Path, help="where the temporary stores go (default: TMPDIR)")
    args = parser.parse_args(argv)
    for name in args.only or list(PATHS):
        title, profile, n = PATHS[name]
        with tempfile.TemporaryDirectory(prefix="aiokv-profile-", dir=args.dir) as tmp:
            report(title, n, profile(Path(tmp) / "store", n), args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""One DataStore shared by the threads of a ThreadPoolExecutor.

``DataStore`` is thread-safe: every call is handed to the store's own event-loop thread, so
threads can share one store without a lock of their own. Racing creates of one key are decided
by the store, and exactly one of them wins.

    python examples/threaded.py            # a fresh store in a temporary directory
    python examples/threaded.py data/kv    # or a store directory of your choosing
"""

from __future__ import annotations

import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiokv

THREADS = 8
JOBS = 200


def job(store: aiokv.DataStore, n: int, run: str) -> None:
    key = f"{run}:job:{n}"
    store.create(key, {"job": n, "squares": [i * i for i in range(10)]})
    assert store.read(key)["job"] == n
    store.delete(key)


def claim(store: aiokv.DataStore, key: str, thread_no: int) -> bool:
    """Try to claim ``key``; True for the one thread whose create won."""
    try:
        store.create(key, {"owner": thread_no}, ttl=300)
    except aiokv.KeyExistsError:
        return False
    return True


def run(path: Path) -> None:
    run_id = f"r{time.time_ns() % 10**9}"
    with aiokv.DataStore(path) as store, ThreadPoolExecutor(THREADS) as pool:
        print(f"opened {store!r}")
        started = time.perf_counter()
        # list() re-raises the first exception a job raised, if any.
        list(pool.map(lambda n: job(store, n, run_id), range(JOBS)))
        elapsed = time.perf_counter() - started
        print(f"{THREADS} threads ran {JOBS} create/read/delete jobs in {elapsed:.2f} s")

        lock_key = f"{run_id}:lock"
        wins = list(pool.map(lambda t: claim(store, lock_key, t), range(THREADS)))
        owner = store.read(lock_key)["owner"]
        print(f"{THREADS} threads raced to create {lock_key!r}: {sum(wins)} won (thread {owner})")
        store.delete(lock_key)
        print(f"done: {store!r}")


def main() -> None:
    if len(sys.argv) > 1:
        run(Path(sys.argv[1]))
        return
    with tempfile.TemporaryDirectory(prefix="aiokv-example-") as tmp:
        run(Path(tmp) / "store")


if __name__ == "__main__":
    main()

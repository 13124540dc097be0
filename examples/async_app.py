"""Many asyncio tasks sharing one AsyncDataStore.

100 workers each create, read back and delete their own keys, all against one store; then a
key with a one-second TTL expires on the real clock.

    python examples/async_app.py            # a fresh store in a temporary directory
    python examples/async_app.py data/kv    # or a store directory of your choosing
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiokv

WORKERS = 100
KEYS_PER_WORKER = 50


async def worker(store: aiokv.AsyncDataStore, worker_id: int, run: str) -> int:
    """Create, read back and delete this worker's keys; return how many round trips it made."""
    done = 0
    for n in range(KEYS_PER_WORKER):
        key = f"{run}:w{worker_id}:{n}"  # at most 32 characters
        value = {"worker": worker_id, "n": n, "tags": ["demo", "async"]}
        await store.create(key, value)
        assert await store.read(key) == value
        await store.delete(key)
        done += 1
    return done


async def ttl_demo(store: aiokv.AsyncDataStore, run: str) -> None:
    key = f"{run}:session"
    await store.create(key, {"token": "abc123"}, ttl=1)
    print(f"created {key!r} with ttl=1: {await store.read(key)}")
    await asyncio.sleep(1.1)
    try:
        await store.read(key)
    except aiokv.KeyNotFoundError:
        print(f"after 1.1 s {key!r} has expired")
    # An expired key may be created again.
    await store.create(key, {"token": "def456"}, ttl=60)
    print(f"created {key!r} again: {await store.read(key)}")
    await store.delete(key)


async def run(path: Path) -> None:
    # A run id keeps keys apart if the same store is used again (at most 32 chars per key).
    run_id = f"r{time.time_ns() % 10**9}"
    async with aiokv.AsyncDataStore(path) as store:
        print(f"opened {store!r}")
        started = time.perf_counter()
        counts = await asyncio.gather(*(worker(store, i, run_id) for i in range(WORKERS)))
        elapsed = time.perf_counter() - started
        total = sum(counts)
        print(
            f"{WORKERS} tasks made {total} create/read/delete round trips "
            f"({3 * total} operations) in {elapsed:.2f} s"
        )
        await ttl_demo(store, run_id)
        print(f"done: {store!r}")


def main() -> None:
    if len(sys.argv) > 1:
        asyncio.run(run(Path(sys.argv[1])))
        return
    with tempfile.TemporaryDirectory(prefix="aiokv-example-") as tmp:
        asyncio.run(run(Path(tmp) / "store"))


if __name__ == "__main__":
    main()

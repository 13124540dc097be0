"""aiokv through its public API: ``AsyncDataStore`` from tasks, ``DataStore`` from threads."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import aiokv
from _bench.stores.base import AsyncHandle, AsyncOps, SyncHandle, SyncOps
from _bench.system import package_root
from _bench.values import ValueOf

AIOKV_MAX_SIZE = 2**30  # aiokv's default cap: 20,000 x 16 KB (330 MB) fits


class AiokvAsync(AsyncHandle):
    def __init__(self, store: aiokv.AsyncDataStore) -> None:
        self.store = store

    @classmethod
    async def open(cls, path: Path, durability: str = "flush") -> AiokvAsync:
        store = aiokv.AsyncDataStore(
            path,
            max_size=AIOKV_MAX_SIZE,
            durability=durability,  # type: ignore[arg-type]
        )
        await store.open()
        return cls(store)

    def ops(self) -> AsyncOps:
        # The store's own bound methods: aiokv is measured without glue of any kind.
        store = self.store
        return AsyncOps(store.create, store.read, store.delete, store.create_many)

    async def close(self) -> None:
        await self.store.close()


class AiokvSync(SyncHandle):
    def __init__(self, path: Path) -> None:
        self.store = aiokv.DataStore(path, max_size=AIOKV_MAX_SIZE)

    def ops(self) -> SyncOps:
        return SyncOps(self.store.create, self.store.read, self.store.delete)

    def close(self) -> None:
        self.store.close()


def aiokv_load(path: Path, keys: Sequence[str], value: ValueOf) -> None:
    """Build an aiokv store with the async API: a pre-load through ``DataStore`` would pay a
    cross-thread hop per key and take longer than the measurement that follows it."""

    async def build() -> None:
        handle = await AiokvAsync.open(path)
        try:
            await handle.bulk_load(keys, value)
        finally:
            await handle.close()

    asyncio.run(build())


REOPEN_IMPORT = (
    f"import asyncio\nsys.path.insert(0, {package_root()!r})\nimport aiokv\n"
    "loop = asyncio.new_event_loop()"
)
REOPEN_OPEN = (
    f"store = aiokv.AsyncDataStore(path, max_size={AIOKV_MAX_SIZE})\n"
    "loop.run_until_complete(store.open())\n"
    "def read(key):\n    return loop.run_until_complete(store.read(key))\n"
    "def close():\n    loop.run_until_complete(store.close())\n    loop.close()"
)

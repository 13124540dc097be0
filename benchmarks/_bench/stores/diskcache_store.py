"""diskcache: ``Cache`` with no size limit in reach."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from _bench.stores.base import LOAD_BATCH, KeyExistsError, SyncHandle, SyncOps, optional
from _bench.values import DECODE, ENCODE, Value, ValueOf

diskcache = optional("diskcache")

DISKCACHE_SIZE_LIMIT = 2**40  # no culling: every key written must stay readable


class DiskcacheStore(SyncHandle):
    """``diskcache.Cache``: ``add`` creates (it refuses a present key), values as bytes.

    One ``Cache`` serves every thread: it keeps a SQLite connection per thread itself."""

    def __init__(self, path: Path) -> None:
        assert diskcache is not None
        self.cache = diskcache.Cache(str(path), size_limit=DISKCACHE_SIZE_LIMIT)

    def create(self, key: str, value: Value) -> None:
        if not self.cache.add(key, ENCODE(value).encode()):
            raise KeyExistsError(key)

    def read(self, key: str) -> Value:
        data = self.cache.get(key)
        if data is None:
            raise KeyError(key)
        return DECODE(data)  # type: ignore[no-any-return]

    def delete(self, key: str) -> None:
        if not self.cache.delete(key):
            raise KeyError(key)

    def ops(self) -> SyncOps:
        return SyncOps(self.create, self.read, self.delete)

    def bulk_load(self, keys: Sequence[str], value: ValueOf) -> None:
        for start in range(0, len(keys), LOAD_BATCH):
            with self.cache.transact():
                for i in range(start, min(len(keys), start + LOAD_BATCH)):
                    self.cache.set(keys[i], ENCODE(value(i)).encode())

    def close(self) -> None:
        self.cache.close()


REOPEN_IMPORT = "import diskcache"
REOPEN_OPEN = (
    f"cache = diskcache.Cache(path, size_limit={DISKCACHE_SIZE_LIMIT})\n"
    "def read(key):\n    return json.loads(cache[key])\n"
    "def close():\n    cache.close()"
)

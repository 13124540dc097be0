"""lmdb: one environment, a transaction per operation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from _bench.stores.base import LOAD_BATCH, KeyExistsError, SyncHandle, SyncOps, optional
from _bench.values import DECODE, ENCODE, Value, ValueOf

lmdb = optional("lmdb")

LMDB_MAP_SIZE = 4 * 2**30  # a reservation of address space, not of disk


class LmdbStore(SyncHandle):
    """One environment; a transaction per operation, as a caller acknowledging each one needs."""

    def __init__(self, path: Path, *, sync: bool) -> None:
        assert lmdb is not None
        self.env = lmdb.open(str(path), map_size=LMDB_MAP_SIZE, sync=sync)

    def create(self, key: str, value: Value) -> None:
        with self.env.begin(write=True) as txn:
            if not txn.put(key.encode(), ENCODE(value).encode(), overwrite=False):
                raise KeyExistsError(key)

    def read(self, key: str) -> Value:
        with self.env.begin() as txn:
            data = txn.get(key.encode())
        if data is None:
            raise KeyError(key)
        return DECODE(data)  # type: ignore[no-any-return]

    def delete(self, key: str) -> None:
        with self.env.begin(write=True) as txn:
            if not txn.delete(key.encode()):
                raise KeyError(key)

    def ops(self) -> SyncOps:
        return SyncOps(self.create, self.read, self.delete)

    def bulk_load(self, keys: Sequence[str], value: ValueOf) -> None:
        for start in range(0, len(keys), LOAD_BATCH):
            with self.env.begin(write=True) as txn:
                for i in range(start, min(len(keys), start + LOAD_BATCH)):
                    txn.put(keys[i].encode(), ENCODE(value(i)).encode())

    def close(self) -> None:
        self.env.close()


def lmdb_synced(path: Path) -> LmdbStore:
    """lmdb's default: each commit synced."""
    return LmdbStore(path, sync=True)


def lmdb_unsynced(path: Path) -> LmdbStore:
    """``sync=False``: commits left to the OS, like aiokv's default ``durability="flush"``."""
    return LmdbStore(path, sync=False)


REOPEN_IMPORT = "import lmdb"
REOPEN_OPEN = (
    f"env = lmdb.open(path, map_size={LMDB_MAP_SIZE})\n"
    "def read(key):\n    with env.begin() as txn:\n"
    "        return json.loads(txn.get(key.encode()))\n"
    "def close():\n    env.close()"
)

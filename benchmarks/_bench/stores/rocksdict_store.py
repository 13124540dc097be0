"""rocksdict: RocksDB's ``Rdict`` with its default options."""

from __future__ import annotations

from pathlib import Path

from _bench.stores.base import Pairs, SyncHandle, SyncOps, optional
from _bench.values import DECODE, ENCODE, Value

rocksdict = optional("rocksdict")


class RocksStore(SyncHandle):
    """``Rdict`` with its default options (the write-ahead log written, not synced, per put).

    RocksDB has no insert-if-absent, so a create is a put and a delete does not say whether
    the key was there; reads are still checked. A batch of creates is one ``WriteBatch`` of
    puts, written by one ``Rdict.write`` (one write-ahead log record)."""

    def __init__(self, path: Path) -> None:
        assert rocksdict is not None
        self.db = rocksdict.Rdict(str(path))

    def create(self, key: str, value: Value) -> None:
        self.db[key] = ENCODE(value).encode()

    def read(self, key: str) -> Value:
        return DECODE(self.db[key])  # type: ignore[no-any-return]

    def delete(self, key: str) -> None:
        del self.db[key]

    def create_many(self, pairs: Pairs) -> None:
        assert rocksdict is not None
        batch = rocksdict.WriteBatch()
        put = batch.put
        for key, value in pairs:
            put(key, ENCODE(value).encode())
        self.db.write(batch)

    def ops(self) -> SyncOps:
        return SyncOps(self.create, self.read, self.delete, create_many=self.create_many)

    def close(self) -> None:
        self.db.close()


REOPEN_IMPORT = "from rocksdict import Rdict"
REOPEN_OPEN = (
    "db = Rdict(path)\ndef read(key):\n    return json.loads(db[key])\ndef close():\n    db.close()"
)

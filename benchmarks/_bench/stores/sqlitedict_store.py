"""sqlitedict: ``SqliteDict`` in WAL mode, JSON text in place of pickles."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from _bench.stores.base import LOAD_BATCH, SyncHandle, SyncOps, optional
from _bench.stores.sqlite_store import SQLITE_FILE
from _bench.values import DECODE, ENCODE, Value, ValueOf

sqlitedict = optional("sqlitedict")


def _same(text: str) -> str:
    return text


class SqlitedictStore(SyncHandle):
    """``SqliteDict`` in WAL mode with ``autocommit=True``, JSON text in place of pickles.

    SqliteDict hands every statement to a worker thread of its own and returns from a write at
    once; ``drain`` (a blocking commit) waits for the queue at the end of each write phase."""

    def __init__(self, path: Path) -> None:
        assert sqlitedict is not None
        path.mkdir(exist_ok=True)
        self.db = sqlitedict.SqliteDict(
            str(path / SQLITE_FILE),
            tablename="kv",
            autocommit=True,
            journal_mode="WAL",
            encode=_same,
            decode=_same,
        )

    def create(self, key: str, value: Value) -> None:
        self.db[key] = ENCODE(value)

    def read(self, key: str) -> Value:
        return DECODE(self.db[key])  # type: ignore[no-any-return]

    def delete(self, key: str) -> None:
        del self.db[key]

    def drain(self) -> None:
        self.db.commit(blocking=True)

    def ops(self) -> SyncOps:
        return SyncOps(self.create, self.read, self.delete, self.drain)

    def bulk_load(self, keys: Sequence[str], value: ValueOf) -> None:
        for start in range(0, len(keys), LOAD_BATCH):
            stop = min(len(keys), start + LOAD_BATCH)
            self.db.update((keys[i], ENCODE(value(i))) for i in range(start, stop))
        self.drain()

    def close(self) -> None:
        self.db.close()


REOPEN_IMPORT = "from sqlitedict import SqliteDict"
REOPEN_OPEN = (
    f"db = SqliteDict(os.path.join(path, {SQLITE_FILE!r}), tablename='kv', autocommit=True,\n"
    "                journal_mode='WAL', encode=str, decode=str)\n"
    "def read(key):\n    return json.loads(db[key])\n"
    "def close():\n    db.close()"
)

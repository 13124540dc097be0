"""sqlite3: WAL, autocommit, one ``key TEXT PRIMARY KEY, value TEXT`` table.

Its file name and statements are shared with ``sqlitedict_store`` and ``aiosqlite_store``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from _bench.stores.base import LOAD_BATCH, SyncHandle, SyncOps
from _bench.values import DECODE, ENCODE, Value, ValueOf

SQLITE_FILE = "kv.sqlite"
SQLITE_TABLE = "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
SQLITE_INSERT = "INSERT INTO kv (key, value) VALUES (?, ?)"
SQLITE_SELECT = "SELECT value FROM kv WHERE key = ?"
SQLITE_DELETE = "DELETE FROM kv WHERE key = ?"


def sqlite_connect(path: Path, synchronous: str) -> sqlite3.Connection:
    """An autocommit connection (each statement its own transaction) in WAL mode."""
    conn = sqlite3.connect(path / SQLITE_FILE, isolation_level=None, timeout=60.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(SQLITE_TABLE)
    return conn


class SqliteStore(SyncHandle):
    """sqlite3 with a connection per thread, as the module requires."""

    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        path.mkdir(exist_ok=True)
        self.path = path
        self.synchronous = synchronous
        self.conn = sqlite_connect(path, synchronous)

    def create(self, key: str, value: Value) -> None:
        self.conn.execute(SQLITE_INSERT, (key, ENCODE(value)))

    def read(self, key: str) -> Value:
        row = self.conn.execute(SQLITE_SELECT, (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return DECODE(row[0])  # type: ignore[no-any-return]

    def delete(self, key: str) -> None:
        if self.conn.execute(SQLITE_DELETE, (key,)).rowcount != 1:
            raise KeyError(key)

    def ops(self) -> SyncOps:
        return SyncOps(self.create, self.read, self.delete)

    def for_thread(self) -> SyncHandle:
        return SqliteStore(self.path, synchronous=self.synchronous)

    def close_thread(self) -> None:
        self.conn.close()

    def bulk_load(self, keys: Sequence[str], value: ValueOf) -> None:
        for start in range(0, len(keys), LOAD_BATCH):
            stop = min(len(keys), start + LOAD_BATCH)
            self.conn.execute("BEGIN")
            self.conn.executemany(
                SQLITE_INSERT, ((keys[i], ENCODE(value(i))) for i in range(start, stop))
            )
            self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


def sqlite_full(path: Path) -> SqliteStore:
    """``synchronous=FULL``: each commit synced before it returns."""
    return SqliteStore(path, synchronous="FULL")


REOPEN_IMPORT = "import sqlite3"
REOPEN_OPEN = (
    f"conn = sqlite3.connect(os.path.join(path, {SQLITE_FILE!r}), isolation_level=None)\n"
    "conn.execute('PRAGMA journal_mode=WAL')\n"
    "conn.execute('PRAGMA synchronous=NORMAL')\n"
    "def read(key):\n"
    f"    return json.loads(conn.execute({SQLITE_SELECT!r}, (key,)).fetchone()[0])\n"
    "def close():\n    conn.close()"
)

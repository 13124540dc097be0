"""aiosqlite: sqlite3's settings, each call one hop to its connection's thread."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any

from _bench.stores.base import LOAD_BATCH, AsyncHandle, AsyncOps, optional
from _bench.stores.sqlite_store import (
    SQLITE_DELETE,
    SQLITE_FILE,
    SQLITE_INSERT,
    SQLITE_SELECT,
    SQLITE_TABLE,
)
from _bench.values import DECODE, ENCODE, Value, ValueOf

aiosqlite = optional("aiosqlite")


class AiosqliteStore(AsyncHandle):
    """aiosqlite with sqlite3's settings: each call is one hop to its connection's thread."""

    def __init__(self, db: Any) -> None:
        self.db = db

    @classmethod
    async def open(cls, path: Path) -> AiosqliteStore:
        assert aiosqlite is not None
        db = await aiosqlite.connect(path / SQLITE_FILE, isolation_level=None, timeout=60.0)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute(SQLITE_TABLE)
        return cls(db)

    async def create(self, key: str, value: Value) -> None:
        await self.db.execute(SQLITE_INSERT, (key, ENCODE(value)))

    async def read(self, key: str) -> Value:
        rows = await self.db.execute_fetchall(SQLITE_SELECT, (key,))
        if not rows:
            raise KeyError(key)
        return DECODE(rows[0][0])  # type: ignore[no-any-return]

    async def delete(self, key: str) -> None:
        cursor = await self.db.execute(SQLITE_DELETE, (key,))
        if cursor.rowcount != 1:
            raise KeyError(key)

    def ops(self) -> AsyncOps:
        return AsyncOps(self.create, self.read, self.delete)

    async def bulk_load(self, keys: Sequence[str], value: ValueOf) -> None:
        for start in range(0, len(keys), LOAD_BATCH):
            stop = min(len(keys), start + LOAD_BATCH)
            await self.db.execute("BEGIN")
            await self.db.executemany(
                SQLITE_INSERT, [(keys[i], ENCODE(value(i))) for i in range(start, stop)]
            )
            await self.db.execute("COMMIT")

    async def close(self) -> None:
        await self.db.close()


def open_aiosqlite(path: Path) -> Awaitable[AsyncHandle]:
    path.mkdir(exist_ok=True)
    return AiosqliteStore.open(path)


REOPEN_IMPORT = "import asyncio, aiosqlite\nloop = asyncio.new_event_loop()"
REOPEN_OPEN = (
    "async def connect():\n"
    f"    db = await aiosqlite.connect(os.path.join(path, {SQLITE_FILE!r}), "
    "isolation_level=None)\n"
    "    await db.execute('PRAGMA journal_mode=WAL')\n"
    "    await db.execute('PRAGMA synchronous=NORMAL')\n"
    "    return db\n"
    "db = loop.run_until_complete(connect())\n"
    "async def fetch(key):\n"
    f"    rows = await db.execute_fetchall({SQLITE_SELECT!r}, (key,))\n"
    "    return json.loads(rows[0][0])\n"
    "def read(key):\n    return loop.run_until_complete(fetch(key))\n"
    "def close():\n    loop.run_until_complete(db.close())\n    loop.close()"
)

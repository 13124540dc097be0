"""aiokv against its peers: the same workloads, the same JSON values, one process tree.

aiokv runs through its public API only, in the ways an application uses it: ``await`` from one
task, ``await`` from 100 concurrent tasks, ``DataStore`` from one thread and from 4 threads. The
peers are lmdb (``sync=True``, its default, and ``sync=False``), rocksdict (``Rdict``),
diskcache (``Cache``), sqlite3 (WAL, ``synchronous=NORMAL``, one ``key TEXT PRIMARY KEY,
value TEXT`` table), sqlitedict and aiosqlite, plus a raw floor: an append-only file read back
with ``os.pread`` through a dict of ``key -> (offset, size)``, the least any log-structured
store can do. Every peer stores the compact JSON of the same dict values and decodes it on
read with ``json.loads``, so all of them pay the serialisation aiokv pays inside.

Workloads, each on a fresh store in a temporary directory under ``--dir``:

* ``1kb``: create, then read in random order, then delete ``--n`` keys (100,000) of 1,000-byte
  values, each phase timed on its own;
* ``16kb``: the same with ``--n / 5`` keys (20,000) of 16,000-byte values;
* ``mixed``: ``--n`` keys pre-loaded, then ``--n`` operations, 90% reads of random keys and
  10% creates of new ones, split among 4 threads (aiokv: one shared ``DataStore``);
* ``fsync``: ``--n / 5`` creates, each acknowledged only after an fsync: aiokv with
  ``durability="fsync"`` against lmdb ``sync=True`` (one writer), sqlite3 ``synchronous=FULL``
  and the raw floor with an fsync per append;
* ``latency``: p50 and p99 of single reads (``time.perf_counter_ns`` around each call) of
  random keys in stores of 10,000, 100,000 and 1,000,000 small keys (``{"i": n}``); a peer
  whose load would take more than about two minutes at the largest size is skipped there;
* ``reopen``: each 1,000,000-key store is opened in a fresh interpreter; the open time and the
  resident memory the open added, per key (median of 3 child processes).

Every read is checked against the value written and every error is fatal, so a broken runner
cannot post a good figure. Repeats are interleaved across runners. The summary gives, for each
workload, the median of the repeats with the range, the ratio of aiokv's best mode to the best
peer and to the raw floor, and the targets the store is built to meet. Run from the repository
root, with the ``bench`` extra installed::

    python benchmarks/bench_peers.py                      # the full run, about 15 minutes
    python benchmarks/bench_peers.py --quick              # a smoke test, well under a minute
    python benchmarks/bench_peers.py --only 1kb --only latency
    python benchmarks/bench_peers.py --json benchmarks/results/peers.json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import importlib
import importlib.metadata
import json
import math
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import aiokv


def _optional(name: str) -> ModuleType | None:
    """A peer's module, or None when it is not installed (that peer is then skipped)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


lmdb = _optional("lmdb")
rocksdict = _optional("rocksdict")
diskcache = _optional("diskcache")
sqlitedict = _optional("sqlitedict")
aiosqlite = _optional("aiosqlite")

WORKLOADS = ("1kb", "16kb", "mixed", "fsync", "latency", "reopen")
SMALL_VALUE_BYTES = 1_000
LARGE_VALUE_BYTES = 16_000  # under aiokv.MAX_VALUE_BYTES (16,384)
ASYNC_TASKS = 100
THREADS = 4
MIXED_CREATE_SHARE = 0.1
LATENCY_SIZES = (10_000, 100_000, 1_000_000)
LATENCY_READS = 20_000  # timed reads per runner, size and repeat
LOAD_LIMIT_S = 120.0  # a peer whose load of the largest latency store would take longer skips it
REOPEN_KEYS = 1_000_000
REOPEN_RUNS = 3
REOPEN_READS = 1_000
SLOW_N = 20_000  # keys for the runners that do a few thousand operations per second
AIOKV_MAX_SIZE = 2**30  # aiokv's default cap: 20,000 x 16 KB (330 MB) fits
LMDB_MAP_SIZE = 4 * 2**30  # a reservation of address space, not of disk
DISKCACHE_SIZE_LIMIT = 2**40  # no culling: every key written must stay readable
LOAD_BATCH = 10_000
SEED = 20_260_401
TIMES = "\u00d7"
GE = "\u2265"
LE = "\u2264"

# Every peer pays the same encoding aiokv pays inside: the compact JSON of the dict (one cached
# encoder, as json.dumps keeps one for its defaults) and json.loads on the way back.
ENCODE: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
DECODE: Callable[[str | bytes], Any] = json.loads

Value = dict[str, Any]
ValueOf = Callable[[int], Value]


class WrongValueError(AssertionError):
    """A read returned something other than the value written: the runner is broken."""


class KeyExistsError(KeyError):
    """A peer reported a create of a key that is already there."""


# -- keys and values -------------------------------------------------------------------------


def key_of(i: int) -> str:
    return f"key:{i:08d}"


def make_keys(n: int) -> list[str]:
    return [key_of(i) for i in range(n)]


def sized_values(n: int, value_bytes: int) -> list[Value]:
    """``n`` dicts ``{"i": i, "pad": "x" * k}`` whose compact JSON is exactly ``value_bytes``.

    The padding strings are shared between values of the same digit count, so a list of a
    hundred thousand 1 KB values costs a few megabytes, not a hundred.
    """
    pads: dict[int, str] = {}
    values = []
    for i in range(n):
        digits = len(str(i))
        pad = pads.get(digits)
        if pad is None:
            overhead = len(ENCODE({"i": i, "pad": ""}))
            pad = pads[digits] = "x" * (value_bytes - overhead)
        values.append({"i": i, "pad": pad})
    assert all(len(ENCODE(values[i]).encode()) == value_bytes for i in (0, n - 1))
    return values


def small_value(i: int) -> Value:
    return {"i": i}


def chunks(items: Sequence[int], parts: int) -> list[Sequence[int]]:
    return [items[i::parts] for i in range(parts)]


def shuffled(n: int, seed: int) -> list[int]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


# -- the store interface every runner is driven through ---------------------------------------


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class SyncOps:
    """The three operations of a store opened for plain threads.

    ``read`` raises ``KeyError`` (``aiokv.KeyNotFoundError`` is one) for a missing key.
    ``drain`` waits until every write issued so far is done; it is called inside the timing at
    the end of each write phase, for the peer that queues writes and returns at once.
    """

    create: Callable[[str, Value], object]
    read: Callable[[str], Value]
    delete: Callable[[str], object]
    drain: Callable[[], None] = _nothing


@dataclass(frozen=True)
class AsyncOps:
    create: Callable[[str, Value], Awaitable[object]]
    read: Callable[[str], Awaitable[Value]]
    delete: Callable[[str], Awaitable[object]]


class SyncHandle(ABC):
    """An open store driven from plain threads."""

    @abstractmethod
    def ops(self) -> SyncOps: ...

    def for_thread(self) -> SyncHandle:
        """The handle another thread uses: the store itself, or a connection of its own."""
        return self

    def close_thread(self) -> None:
        """Close what ``for_thread`` opened (in the thread that opened it)."""
        return None

    def bulk_load(self, keys: Sequence[str], value: ValueOf) -> None:
        """Fill the store as fast as the library allows; not timed (pre-loads only)."""
        create = self.ops().create
        for i, key in enumerate(keys):
            create(key, value(i))
        self.ops().drain()

    @abstractmethod
    def close(self) -> None: ...


class AsyncHandle(ABC):
    """An open store driven from asyncio tasks."""

    @abstractmethod
    def ops(self) -> AsyncOps: ...

    @abstractmethod
    async def bulk_load(self, keys: Sequence[str], value: ValueOf) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...


# -- aiokv -------------------------------------------------------------------------------------


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
        return AsyncOps(self.store.create, self.store.read, self.store.delete)

    async def bulk_load(self, keys: Sequence[str], value: ValueOf) -> None:
        create = self.store.create
        for start in range(0, len(keys), 1000):
            stop = min(len(keys), start + 1000)
            await asyncio.gather(*(create(keys[i], value(i)) for i in range(start, stop)))

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


# -- the peers ----------------------------------------------------------------------------------


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


class RocksStore(SyncHandle):
    """``Rdict`` with its default options (the write-ahead log written, not synced, per put).

    RocksDB has no insert-if-absent, so a create is a put and a delete does not say whether
    the key was there; reads are still checked."""

    def __init__(self, path: Path) -> None:
        assert rocksdict is not None
        self.db = rocksdict.Rdict(str(path))

    def create(self, key: str, value: Value) -> None:
        self.db[key] = ENCODE(value).encode()

    def read(self, key: str) -> Value:
        return DECODE(self.db[key])  # type: ignore[no-any-return]

    def delete(self, key: str) -> None:
        del self.db[key]

    def ops(self) -> SyncOps:
        return SyncOps(self.create, self.read, self.delete)

    def close(self) -> None:
        self.db.close()


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


RAW_FILE = "data.log"


class RawFloor(SyncHandle):
    """The floor: one append-only file of ``key TAB json NEWLINE`` lines, a dict of ``key ->
    (offset, size)`` and ``os.pread``. No checksums, no cap, no compaction, no recovery beyond
    rereading the lines; a delete appends ``key TAB NEWLINE``. Appends are serialised by a
    lock so that threads can share it; ``fsync=True`` syncs the file before each write returns.
    """

    def __init__(self, path: Path, *, fsync: bool = False) -> None:
        path.mkdir(exist_ok=True)
        self.fd = os.open(path / RAW_FILE, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self.end = os.fstat(self.fd).st_size
        self.index: dict[str, tuple[int, int]] = {}
        self.lock = threading.Lock()
        self.fsync = fsync
        if self.end:
            self._scan()

    def _scan(self) -> None:
        offset = 0
        with open(self.fd, "rb", closefd=False) as log:
            for line in log:
                tab = line.index(b"\t")
                key = line[:tab].decode()
                if len(line) == tab + 2:
                    self.index.pop(key, None)
                else:
                    self.index[key] = (offset + tab + 1, len(line) - tab - 2)
                offset += len(line)

    def _append(self, record: bytes) -> int:
        offset = self.end
        written = os.write(self.fd, record)
        if written != len(record):
            raise OSError(f"short write: {written} of {len(record)} bytes")
        self.end += written
        if self.fsync:
            os.fsync(self.fd)
        return offset

    def create(self, key: str, value: Value) -> None:
        encoded_key = key.encode()
        body = ENCODE(value).encode()
        with self.lock:
            if key in self.index:
                raise KeyExistsError(key)
            offset = self._append(encoded_key + b"\t" + body + b"\n")
            self.index[key] = (offset + len(encoded_key) + 1, len(body))

    def read(self, key: str) -> Value:
        offset, size = self.index[key]
        data = os.pread(self.fd, size, offset)
        if len(data) != size:
            raise OSError(f"short read at {offset}: {len(data)} of {size} bytes")
        return DECODE(data)  # type: ignore[no-any-return]

    def delete(self, key: str) -> None:
        with self.lock:
            del self.index[key]
            self._append(key.encode() + b"\t\n")

    def ops(self) -> SyncOps:
        return SyncOps(self.create, self.read, self.delete)

    def close(self) -> None:
        os.close(self.fd)


# -- runners -------------------------------------------------------------------------------------

AIOKV, PEER, FLOOR = "aiokv", "peer", "floor"


@dataclass(frozen=True)
class Runner:
    """One way of running a workload: a library, its settings and its concurrency.

    ``series`` names the library (and setting) in the chart and in the targets; ``slow`` ones
    do a few thousand operations per second and run the ``1kb`` workload with ``--slow-n`` keys.
    """

    name: str
    series: str
    family: str
    connect: Callable[[Path], SyncHandle] | None = None
    aconnect: Callable[[Path], Awaitable[AsyncHandle]] | None = None
    workers: int = 1
    slow: bool = False
    loader: Callable[[Path, Sequence[str], ValueOf], None] | None = None

    @property
    def is_async(self) -> bool:
        return self.aconnect is not None

    def load(self, path: Path, keys: Sequence[str], value: ValueOf) -> None:
        """Build the store at ``path`` with ``keys`` and close it (not timed)."""
        if self.loader is not None:
            self.loader(path, keys, value)
        elif self.aconnect is not None:
            aconnect = self.aconnect

            async def build() -> None:
                handle = await aconnect(path)
                try:
                    await handle.bulk_load(keys, value)
                finally:
                    await handle.close()

            asyncio.run(build())
        else:
            assert self.connect is not None
            handle = self.connect(path)
            try:
                handle.bulk_load(keys, value)
            finally:
                handle.close()


def aiokv_async(tasks: int, durability: str = "flush") -> Runner:
    prefix = "aiokv fsync" if durability == "fsync" else "aiokv"
    return Runner(
        name=f"{prefix} await, {tasks} task{'s' if tasks > 1 else ''}",
        series=AIOKV,
        family=AIOKV,
        aconnect=lambda path: AiokvAsync.open(path, durability),
        workers=tasks,
        loader=aiokv_load,
    )


def aiokv_sync(threads: int) -> Runner:
    return Runner(
        name=f"aiokv DataStore, {threads} thread{'s' if threads > 1 else ''}",
        series=AIOKV,
        family=AIOKV,
        connect=AiokvSync,
        workers=threads,
        slow=True,
        loader=aiokv_load,
    )


def peer_runners(workers: int = 1, *, with_async: bool = True) -> tuple[list[Runner], list[str]]:
    """The installed peers and the raw floor, and a note for each peer that is missing."""
    runners: list[Runner] = []
    missing: list[str] = []
    suffix = f", {workers} threads" if workers > 1 else ""
    if lmdb is not None:
        runners += [
            Runner(
                f"lmdb{suffix}",
                "lmdb",
                PEER,
                connect=lambda path: LmdbStore(path, sync=True),
                workers=workers,
                slow=True,
            ),
            Runner(
                f"lmdb sync=False{suffix}",
                "lmdb sync=False",
                PEER,
                connect=lambda path: LmdbStore(path, sync=False),
                workers=workers,
            ),
        ]
    else:
        missing.append("lmdb")
    if rocksdict is not None:
        runners.append(Runner(f"rocksdict{suffix}", "rocksdict", PEER, RocksStore, None, workers))
    else:
        missing.append("rocksdict")
    if diskcache is not None:
        runners.append(
            Runner(f"diskcache{suffix}", "diskcache", PEER, DiskcacheStore, None, workers)
        )
    else:
        missing.append("diskcache")
    runners.append(Runner(f"sqlite3{suffix}", "sqlite3", PEER, SqliteStore, None, workers))
    if sqlitedict is not None:
        runners.append(
            Runner(
                f"sqlitedict{suffix}",
                "sqlitedict",
                PEER,
                SqlitedictStore,
                None,
                workers,
                slow=True,
            )
        )
    else:
        missing.append("sqlitedict")
    if with_async:
        if aiosqlite is not None:
            runners.append(
                Runner(
                    "aiosqlite await, 1 task", "aiosqlite", PEER, None, open_aiosqlite, slow=True
                )
            )
        else:
            missing.append("aiosqlite")
    runners.append(Runner(f"raw floor{suffix}", "raw floor", FLOOR, RawFloor, None, workers))
    return runners, [f"{name} is not installed: skipped" for name in missing]


# -- running a phase ----------------------------------------------------------------------------


def run_threads(
    handle: SyncHandle,
    parts: Sequence[Sequence[Any]],
    work: Callable[[SyncOps, Sequence[Any]], None],
) -> float:
    """Run ``work`` over each part in a thread of its own; return the seconds until all are done.

    The clock starts when every thread is ready and stops when every one has finished its
    part (and the store has drained its queued writes), before the threads close their own
    connections: closing the last one may checkpoint, which is not part of the work.
    """
    if len(parts) == 1:
        ops = handle.ops()
        started = time.perf_counter()
        work(ops, parts[0])
        ops.drain()
        return time.perf_counter() - started
    errors: list[BaseException] = []
    start_gate = threading.Barrier(len(parts) + 1)
    end_gate = threading.Barrier(len(parts) + 1)

    def main(part: Sequence[Any]) -> None:
        own: SyncHandle | None = None
        try:
            own = handle.for_thread()
            start_gate.wait()
            work(own.ops(), part)
            end_gate.wait()
        except threading.BrokenBarrierError:
            pass
        except BaseException as exc:
            errors.append(exc)
            start_gate.abort()  # nobody waits for a thread that failed
            end_gate.abort()
        finally:
            if own is not None and own is not handle:
                own.close_thread()

    threads = [threading.Thread(target=main, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    try:
        start_gate.wait()
        started = time.perf_counter()
        end_gate.wait()
        handle.ops().drain()
    except threading.BrokenBarrierError:
        pass  # a thread failed: its error is raised below, once every thread has stopped
    seconds = time.perf_counter() - started
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return seconds


async def run_tasks(
    parts: Sequence[Sequence[Any]], work: Callable[[Sequence[Any]], Awaitable[None]]
) -> float:
    started = time.perf_counter()
    if len(parts) == 1:
        await work(parts[0])
    else:
        await asyncio.gather(*(work(part) for part in parts))
    return time.perf_counter() - started


def sync_work(
    phase: str, keys: Sequence[str], values: Sequence[Value]
) -> Callable[[SyncOps, Sequence[int]], None]:
    """The loop of one phase over some key indices, with every read checked."""

    def create(ops: SyncOps, part: Sequence[int]) -> None:
        call = ops.create
        for i in part:
            call(keys[i], values[i])

    def read(ops: SyncOps, part: Sequence[int]) -> None:
        call = ops.read
        for i in part:
            if call(keys[i]) != values[i]:
                raise WrongValueError(f"read({keys[i]!r}) is not the value written")

    def delete(ops: SyncOps, part: Sequence[int]) -> None:
        call = ops.delete
        for i in part:
            call(keys[i])

    return {"create": create, "read": read, "delete": delete}[phase]


def async_work(
    ops: AsyncOps, phase: str, keys: Sequence[str], values: Sequence[Value]
) -> Callable[[Sequence[int]], Awaitable[None]]:
    async def create(part: Sequence[int]) -> None:
        call = ops.create
        for i in part:
            await call(keys[i], values[i])

    async def read(part: Sequence[int]) -> None:
        call = ops.read
        for i in part:
            if await call(keys[i]) != values[i]:
                raise WrongValueError(f"read({keys[i]!r}) is not the value written")

    async def delete(part: Sequence[int]) -> None:
        call = ops.delete
        for i in part:
            await call(keys[i])

    return {"create": create, "read": read, "delete": delete}[phase]


def phase_order(phase: str, n: int) -> list[int]:
    """Creates and deletes in key order, reads in a random order."""
    return shuffled(n, SEED + n) if phase == "read" else list(range(n))


def check_gone_sync(ops: SyncOps, keys: Sequence[str]) -> None:
    for key in keys:
        try:
            ops.read(key)
        except KeyError:
            continue
        raise WrongValueError(f"{key!r} is readable after its delete")


async def check_gone_async(ops: AsyncOps, keys: Sequence[str]) -> None:
    for key in keys:
        try:
            await ops.read(key)
        except KeyError:
            continue
        raise WrongValueError(f"{key!r} is readable after its delete")


def run_phases(
    runner: Runner,
    path: Path,
    phases: Sequence[str],
    keys: Sequence[str],
    values: Sequence[Value],
) -> dict[str, float]:
    """Open a fresh store at ``path``, time each phase over every key, check, close.

    After the reads of a create-only run (``fsync``), every key is read back untimed.
    """
    n = len(keys)
    rates: dict[str, float] = {}
    sample = keys[:: max(1, n // 200)]
    if runner.aconnect is not None:
        aconnect = runner.aconnect

        async def run() -> None:
            handle = await aconnect(path)
            try:
                ops = handle.ops()
                for phase in phases:
                    parts = chunks(phase_order(phase, n), runner.workers)
                    seconds = await run_tasks(parts, async_work(ops, phase, keys, values))
                    rates[phase] = n / seconds
                if "read" not in phases:
                    await async_work(ops, "read", keys, values)(range(n))
                if "delete" in phases:
                    await check_gone_async(ops, sample)
            finally:
                await handle.close()

        asyncio.run(run())
        return rates
    assert runner.connect is not None
    handle = runner.connect(path)
    try:
        for phase in phases:
            parts = chunks(phase_order(phase, n), runner.workers)
            rates[phase] = n / run_threads(handle, parts, sync_work(phase, keys, values))
        if "read" not in phases:
            sync_work("read", keys, values)(handle.ops(), range(n))
        if "delete" in phases:
            check_gone_sync(handle.ops(), sample)
    finally:
        handle.close()
    return rates


# -- results ------------------------------------------------------------------------------------


@dataclass
class Row:
    """One runner's repeats in one workload: ops/s per phase, per repeat."""

    runner: Runner
    n: int
    runs: list[dict[str, float]] = field(default_factory=list)

    def summary(self, phase: str) -> tuple[float, float, float] | None:
        rates = [run[phase] for run in self.runs if phase in run]
        if not rates:
            return None
        return statistics.median(rates), min(rates), max(rates)

    def median(self, phase: str) -> float | None:
        summary = self.summary(phase)
        return summary[0] if summary else None


@dataclass
class Workload:
    key: str
    title: str
    phases: tuple[str, ...]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self, name: str) -> Row | None:
        return next((row for row in self.rows if row.runner.name == name), None)

    def best(self, phase: str, family: str) -> tuple[Row, float] | None:
        """The row of ``family`` with the highest median ops/s in ``phase``.

        Only rows run with the workload's full key count are ranked: a store of 20,000 keys
        reads faster than one of 100,000, so a row run with ``--slow-n`` keys would win (or
        set the bar) on its size, not on its speed.
        """
        full = max(row.n for row in self.rows)
        found = [
            (row, rate)
            for row in self.rows
            if row.runner.family == family
            and row.n == full
            and (rate := row.median(phase)) is not None
        ]
        return max(found, key=lambda item: item[1]) if found else None

    def series_best(self, phase: str, series: str) -> tuple[Row, float] | None:
        found = [
            (row, rate)
            for row in self.rows
            if row.runner.series == series and (rate := row.median(phase)) is not None
        ]
        return max(found, key=lambda item: item[1]) if found else None

    def ratios(self) -> dict[str, dict[str, Any]]:
        """Per phase: aiokv's best mode over the best peer, and over the raw floor."""
        result: dict[str, dict[str, Any]] = {}
        for phase in self.phases:
            ours = self.best(phase, AIOKV)
            if ours is None:
                continue
            entry: dict[str, Any] = {"aiokv": ours[0].runner.name, "aiokv_rate": ours[1]}
            for family in (PEER, FLOOR):
                theirs = self.best(phase, family)
                if theirs is not None:
                    entry[family] = theirs[0].runner.name
                    entry[f"{family}_rate"] = theirs[1]
                    entry[f"vs_{family}"] = ours[1] / theirs[1]
            result[phase] = entry
        return result


def run_workload(
    workload: Workload,
    plans: Sequence[tuple[Row, Callable[[Path], dict[str, float]]]],
    repeat: int,
    base: Path | None,
) -> None:
    """Run every plan ``repeat`` times, interleaved: each runner once, then each again."""
    print(f"{workload.title}", flush=True)
    for note in workload.notes:
        print(f"  note: {note}")
    for run in range(repeat):
        for row, plan in plans:
            gc.collect()
            with tempfile.TemporaryDirectory(prefix="aiokv-peers-", dir=base) as tmp:
                try:
                    rates = plan(Path(tmp) / "store")
                except Exception as exc:
                    raise SystemExit(
                        f"{workload.key}: {row.runner.name} failed on repeat {run + 1}: {exc!r}"
                    ) from exc
            row.runs.append(rates)
            shown = ", ".join(f"{phase} {rate:,.0f}/s" for phase, rate in rates.items())
            print(f"  {run + 1}/{repeat} {row.runner.name:<32} {shown}", flush=True)
    workload.rows = [row for row, _plan in plans]


# -- workloads 1 and 2: create, read, delete -------------------------------------------------


def crud_workload(
    key: str,
    n: int,
    slow_n: int,
    value_bytes: int,
    repeat: int,
    base: Path | None,
) -> Workload:
    phases = ("create", "read", "delete")
    workload = Workload(
        key,
        f"{key}: create, random read, delete of {n:,} keys, {value_bytes:,}-byte values",
        phases,
    )
    runners = [aiokv_async(1), aiokv_async(ASYNC_TASKS), aiokv_sync(1), aiokv_sync(THREADS)]
    peers, missing = peer_runners()
    runners += peers
    workload.notes += missing
    keys = make_keys(n)
    values = sized_values(n, value_bytes)
    plans = []
    for runner in runners:
        count = min(n, slow_n) if runner.slow else n
        plans.append(
            (
                Row(runner, count),
                lambda path, r=runner, c=count: run_phases(r, path, phases, keys[:c], values[:c]),
            )
        )
    reduced = sorted({row.runner.name for row, _plan in plans if row.n < n})
    if reduced:
        workload.notes.append(
            f"{', '.join(reduced)}: {min(n, slow_n):,} keys (--slow-n), a few thousand "
            f"operations per second each; their rates are per operation all the same, but "
            f"the best-mode and best-peer ratios rank only the rows of {n:,} keys"
        )
    run_workload(workload, plans, repeat, base)
    return workload


# -- workload 3: 90% reads, 10% creates, 4 threads ------------------------------------------


def mixed_plans(n: int, ops_total: int, threads: int) -> list[list[tuple[bool, int]]]:
    """Each thread's share of the operations: (is_create, key index).

    Reads pick random pre-loaded keys; creates take new keys, thread ``t`` the indices
    ``n + t``, ``n + t + threads``, ... so that no two threads create the same key.
    """
    plans = []
    for t in range(threads):
        rng = random.Random(SEED + t)
        share = ops_total // threads + (1 if t < ops_total % threads else 0)
        fresh = n + t
        plan = []
        for _ in range(share):
            if rng.random() < MIXED_CREATE_SHARE:
                plan.append((True, fresh))
                fresh += threads
            else:
                plan.append((False, rng.randrange(n)))
        plans.append(plan)
    return plans


def run_mixed(
    runner: Runner,
    path: Path,
    keys: Sequence[str],
    values: Sequence[Value],
    n: int,
    plans: Sequence[Sequence[tuple[bool, int]]],
) -> dict[str, float]:
    runner.load(path, keys[:n], values.__getitem__)
    assert runner.connect is not None
    handle = runner.connect(path)

    def work(ops: SyncOps, plan: Sequence[tuple[bool, int]]) -> None:
        create, read = ops.create, ops.read
        for is_create, i in plan:
            if is_create:
                create(keys[i], values[i])
            elif read(keys[i]) != values[i]:
                raise WrongValueError(f"read({keys[i]!r}) is not the value written")

    try:
        seconds = run_threads(handle, plans, work)
        created = [i for plan in plans for is_create, i in plan if is_create]
        sync_work("read", keys, values)(handle.ops(), created)  # every create landed
    finally:
        handle.close()
    return {"mixed": sum(len(plan) for plan in plans) / seconds}


def mixed_workload(n: int, repeat: int, base: Path | None) -> Workload:
    workload = Workload(
        "mixed",
        f"mixed: {n:,} keys pre-loaded, then {n:,} operations (90% reads, 10% creates, "
        f"{SMALL_VALUE_BYTES:,}-byte values) split among {THREADS} threads",
        ("mixed",),
    )
    runners = [aiokv_sync(THREADS)]
    peers, missing = peer_runners(THREADS, with_async=False)
    runners += peers
    workload.notes += missing
    workload.notes.append(
        "aiokv: one DataStore shared by the threads; lmdb: one environment, a transaction per "
        "operation; rocksdict, diskcache, sqlitedict, raw floor: one store shared; sqlite3: a "
        "connection per thread; aiosqlite is asyncio-only and not run here"
    )
    thread_plans = mixed_plans(n, n, THREADS)
    top = max(i for plan in thread_plans for _c, i in plan) + 1
    keys = make_keys(top)
    values = sized_values(top, SMALL_VALUE_BYTES)
    plans = [
        (
            Row(runner, n),
            lambda path, r=runner: run_mixed(r, path, keys, values, n, thread_plans),
        )
        for runner in runners
    ]
    run_workload(workload, plans, repeat, base)
    return workload


# -- workload 4: durable creates ----------------------------------------------------------------


def fsync_workload(n: int, repeat: int, base: Path | None) -> Workload:
    workload = Workload(
        "fsync",
        f"fsync: {n:,} creates of {SMALL_VALUE_BYTES:,}-byte values, each synced to disk "
        "before it returns",
        ("create",),
    )
    runners = [aiokv_async(1, "fsync"), aiokv_async(ASYNC_TASKS, "fsync")]
    if lmdb is not None:
        runners.append(
            Runner(
                "lmdb (sync=True), 1 writer",
                "lmdb",
                PEER,
                lambda path: LmdbStore(path, sync=True),
            )
        )
    else:
        workload.notes.append("lmdb is not installed: skipped")
    runners.append(
        Runner(
            "sqlite3 synchronous=FULL",
            "sqlite3",
            PEER,
            lambda path: SqliteStore(path, synchronous="FULL"),
        )
    )
    runners.append(
        Runner("raw floor + fsync", "raw floor", FLOOR, lambda path: RawFloor(path, fsync=True))
    )
    keys = make_keys(n)
    values = sized_values(n, SMALL_VALUE_BYTES)
    plans = [
        (
            Row(runner, n),
            lambda path, r=runner: run_phases(r, path, ("create",), keys, values),
        )
        for runner in runners
    ]
    run_workload(workload, plans, repeat, base)
    return workload


# -- workload 5: read latency --------------------------------------------------------------------


def percentile(ordered: Sequence[int], q: float) -> int:
    """Nearest-rank percentile of an already sorted sequence."""
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def timed_reads_sync(ops: SyncOps, keys: Sequence[str], order: Sequence[int]) -> list[int]:
    clock = time.perf_counter_ns
    read = ops.read
    samples = []
    for i in order:
        key = keys[i]
        started = clock()
        value = read(key)
        samples.append(clock() - started)
        if value != {"i": i}:
            raise WrongValueError(f"read({key!r}) is not the value written")
    return samples


async def timed_reads_async(ops: AsyncOps, keys: Sequence[str], order: Sequence[int]) -> list[int]:
    clock = time.perf_counter_ns
    read = ops.read
    samples = []
    for i in order:
        key = keys[i]
        started = clock()
        value = await read(key)
        samples.append(clock() - started)
        if value != {"i": i}:
            raise WrongValueError(f"read({key!r}) is not the value written")
    return samples


@dataclass
class LatencyRow:
    runner: Runner
    size: int
    path: Path
    load_seconds: float
    runs: list[dict[str, float]] = field(default_factory=list)  # p50_us, p99_us, reads_per_s

    def median(self, name: str) -> float:
        return statistics.median(run[name] for run in self.runs)

    def span(self, name: str) -> tuple[float, float, float]:
        figures = [run[name] for run in self.runs]
        return statistics.median(figures), min(figures), max(figures)


def latency_runners() -> tuple[list[Runner], list[str]]:
    peers, missing = peer_runners()
    # Reads do not depend on lmdb's sync setting: one lmdb row, with its default settings.
    peers = [runner for runner in peers if runner.series != "lmdb sync=False"]
    return [aiokv_async(1), *peers], missing


def latency_workload(
    sizes: Sequence[int],
    reads: int,
    repeat: int,
    base: Path | None,
    keep: dict[str, Path],
    keep_size: int,
    keep_dir: Path | None,
) -> tuple[list[LatencyRow], list[str]]:
    """Load each runner's store at each size, then time single reads, repeats interleaved.

    The stores of size ``keep_size`` are built in ``keep_dir`` and listed in ``keep`` (for the
    reopen measurement) instead of being deleted.
    """
    runners, notes = latency_runners()
    rows: list[LatencyRow] = []
    skipped: set[str] = set()
    previous: dict[str, tuple[int, float]] = {}  # runner -> (size, load seconds)
    print(
        f"latency: p50/p99 of single reads of random keys, values {{'i': n}}, "
        f"{reads:,} timed reads per runner and repeat, sizes {', '.join(f'{s:,}' for s in sizes)}",
        flush=True,
    )
    for note in notes:
        print(f"  note: {note}")
    for size in sizes:
        keys = make_keys(size)
        with tempfile.TemporaryDirectory(prefix="aiokv-peers-", dir=base) as tmp:
            where = keep_dir if size == keep_size and keep_dir is not None else Path(tmp)
            size_rows: list[LatencyRow] = []
            for runner in runners:
                if runner.name in skipped:
                    continue
                if runner.name in previous:
                    before_size, before_s = previous[runner.name]
                    estimate = before_s * size / before_size
                    if estimate > LOAD_LIMIT_S:
                        skipped.add(runner.name)
                        note = (
                            f"{runner.name}: skipped at {size:,} keys and above: its load would "
                            f"take about {estimate:,.0f} s ({before_size / before_s:,.0f} keys/s "
                            f"at {before_size:,})"
                        )
                        notes.append(note)
                        print(f"  note: {note}", flush=True)
                        continue
                path = where / runner.series.replace(" ", "-").replace("=", "-")
                started = time.perf_counter()
                try:
                    runner.load(path, keys, small_value)
                except Exception as exc:
                    raise SystemExit(f"latency: {runner.name} failed to load: {exc!r}") from exc
                load_s = time.perf_counter() - started
                previous[runner.name] = (size, load_s)
                if size == keep_size:
                    keep[runner.series] = path
                print(f"  {size:,} keys: {runner.name} loaded in {load_s:.1f} s", flush=True)
                size_rows.append(LatencyRow(runner, size, path, load_s))
            run_latency_passes(size_rows, keys, reads, repeat)
            rows += size_rows
    return rows, notes


def run_latency_passes(
    rows: Sequence[LatencyRow], keys: Sequence[str], reads: int, repeat: int
) -> None:
    """Open every store of one size, then run ``repeat`` passes of timed reads over them."""
    loop = asyncio.new_event_loop()
    handles: list[SyncHandle | AsyncHandle] = []
    try:
        for row in rows:
            runner = row.runner
            if runner.aconnect is not None:
                handles.append(loop.run_until_complete(runner.aconnect(row.path)))
            else:
                assert runner.connect is not None
                handles.append(runner.connect(row.path))
        for run in range(repeat):
            rng = random.Random(SEED + run)
            order = [rng.randrange(len(keys)) for _ in range(reads)]
            for row, handle in zip(rows, handles, strict=True):
                gc.collect()
                started = time.perf_counter()
                try:
                    if isinstance(handle, AsyncHandle):
                        samples = loop.run_until_complete(
                            timed_reads_async(handle.ops(), keys, order)
                        )
                    else:
                        samples = timed_reads_sync(handle.ops(), keys, order)
                except Exception as exc:
                    raise SystemExit(f"latency: {row.runner.name} failed: {exc!r}") from exc
                seconds = time.perf_counter() - started
                samples.sort()
                figures = {
                    "p50_us": percentile(samples, 50) / 1e3,
                    "p99_us": percentile(samples, 99) / 1e3,
                    "reads_per_s": reads / seconds,
                }
                row.runs.append(figures)
                print(
                    f"  {len(keys):,} keys {run + 1}/{repeat} {row.runner.name:<24} p50 "
                    f"{figures['p50_us']:.1f} us, p99 {figures['p99_us']:.1f} us, "
                    f"{figures['reads_per_s']:,.0f} reads/s",
                    flush=True,
                )
    finally:
        for handle in handles:
            if isinstance(handle, AsyncHandle):
                loop.run_until_complete(handle.close())
            else:
                handle.close()
        loop.close()


# -- workload 6: reopen and memory -----------------------------------------------------------

# The child process: import the library, open the store, read REOPEN_READS random keys.
# argv: store path, key count, seed. Each library fills in IMPORT, OPEN (defining read(key) and
# close()); resident memory is read from /proc/self/status after each step.
REOPEN_CHILD = """
import json, os, random, sys, time
path, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def status(name):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None

{import_}
after_import = status("VmRSS")
started = time.perf_counter()
{open_}
seconds = time.perf_counter() - started
after_open = status("VmRSS")
for i in random.Random(seed).sample(range(n), min(n, {reads})):
    key = "key:%08d" % i
    if read(key) != {{"i": i}}:
        raise SystemExit("wrong value for " + key)
after_reads = status("VmRSS")
close()
print(json.dumps({{
    "seconds": seconds,
    "rss_after_import": after_import,
    "rss_after_open": after_open,
    "rss_after_reads": after_reads,
    "peak_rss": status("VmHWM"),
}}))
"""

REOPEN_CODE: dict[str, tuple[str, str]] = {
    AIOKV: (
        "import asyncio\nsys.path.insert(0, {package_root!r})\nimport aiokv\n"
        "loop = asyncio.new_event_loop()",
        "store = aiokv.AsyncDataStore(path, max_size={max_size})\n"
        "loop.run_until_complete(store.open())\n"
        "def read(key):\n    return loop.run_until_complete(store.read(key))\n"
        "def close():\n    loop.run_until_complete(store.close())\n    loop.close()",
    ),
    "lmdb": (
        "import lmdb",
        "env = lmdb.open(path, map_size={map_size})\n"
        "def read(key):\n    with env.begin() as txn:\n"
        "        return json.loads(txn.get(key.encode()))\n"
        "def close():\n    env.close()",
    ),
    "rocksdict": (
        "from rocksdict import Rdict",
        "db = Rdict(path)\n"
        "def read(key):\n    return json.loads(db[key])\n"
        "def close():\n    db.close()",
    ),
    "diskcache": (
        "import diskcache",
        "cache = diskcache.Cache(path, size_limit={size_limit})\n"
        "def read(key):\n    return json.loads(cache[key])\n"
        "def close():\n    cache.close()",
    ),
    "sqlite3": (
        "import sqlite3",
        "conn = sqlite3.connect(os.path.join(path, {sqlite_file!r}), isolation_level=None)\n"
        "conn.execute('PRAGMA journal_mode=WAL')\n"
        "conn.execute('PRAGMA synchronous=NORMAL')\n"
        "def read(key):\n"
        "    return json.loads(conn.execute({select!r}, (key,)).fetchone()[0])\n"
        "def close():\n    conn.close()",
    ),
    "sqlitedict": (
        "from sqlitedict import SqliteDict",
        "db = SqliteDict(os.path.join(path, {sqlite_file!r}), tablename='kv', autocommit=True,\n"
        "                journal_mode='WAL', encode=str, decode=str)\n"
        "def read(key):\n    return json.loads(db[key])\n"
        "def close():\n    db.close()",
    ),
    "aiosqlite": (
        "import asyncio, aiosqlite\nloop = asyncio.new_event_loop()",
        "async def connect():\n"
        "    db = await aiosqlite.connect(os.path.join(path, {sqlite_file!r}), "
        "isolation_level=None)\n"
        "    await db.execute('PRAGMA journal_mode=WAL')\n"
        "    await db.execute('PRAGMA synchronous=NORMAL')\n"
        "    return db\n"
        "db = loop.run_until_complete(connect())\n"
        "async def fetch(key):\n"
        "    rows = await db.execute_fetchall({select!r}, (key,))\n"
        "    return json.loads(rows[0][0])\n"
        "def read(key):\n    return loop.run_until_complete(fetch(key))\n"
        "def close():\n    loop.run_until_complete(db.close())\n    loop.close()",
    ),
    "raw floor": (
        "",
        "index = {{}}\noffset = 0\n"
        "with open(os.path.join(path, {raw_file!r}), 'rb') as log:\n"
        "    for line in log:\n"
        "        tab = line.index(b'\\t')\n"
        "        key = line[:tab].decode()\n"
        "        if len(line) == tab + 2:\n"
        "            index.pop(key, None)\n"
        "        else:\n"
        "            index[key] = (offset + tab + 1, len(line) - tab - 2)\n"
        "        offset += len(line)\n"
        "fd = os.open(os.path.join(path, {raw_file!r}), os.O_RDONLY)\n"
        "def read(key):\n"
        "    offset, size = index[key]\n"
        "    return json.loads(os.pread(fd, size, offset))\n"
        "def close():\n    os.close(fd)",
    ),
}


def reopen_child_code(series: str) -> str:
    import_, open_ = REOPEN_CODE[series]
    fill = {
        "package_root": str(Path(aiokv.__file__).resolve().parent.parent),
        "max_size": AIOKV_MAX_SIZE,
        "map_size": LMDB_MAP_SIZE,
        "size_limit": DISKCACHE_SIZE_LIMIT,
        "sqlite_file": SQLITE_FILE,
        "select": SQLITE_SELECT,
        "raw_file": RAW_FILE,
    }
    return REOPEN_CHILD.format(
        import_=import_.format(**fill), open_=open_.format(**fill), reads=REOPEN_READS
    )


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@dataclass
class ReopenRow:
    series: str
    keys: int
    disk_bytes: int
    runs: list[dict[str, Any]] = field(default_factory=list)

    def span(self, name: str) -> tuple[float, float, float] | None:
        figures = [run[name] for run in self.runs if run.get(name) is not None]
        if not figures:
            return None
        return statistics.median(figures), min(figures), max(figures)


def reopen_workload(
    n: int, runs: int, base: Path | None, stores: dict[str, Path], skipped: Sequence[str]
) -> list[ReopenRow]:
    """Open each ``n``-key store in fresh interpreters; build the stores not built already."""
    runners, _notes = latency_runners()
    print(
        f"reopen: each {n:,}-key store opened in {runs} fresh processes: open time and resident "
        f"memory per key, then {REOPEN_READS:,} random reads",
        flush=True,
    )
    rows: list[ReopenRow] = []
    with tempfile.TemporaryDirectory(prefix="aiokv-peers-", dir=base) as tmp:
        keys: list[str] | None = None
        for runner in runners:
            if runner.name in skipped:
                print(f"  note: {runner.name}: skipped (its {n:,}-key store was not built)")
                continue
            path = stores.get(runner.series)
            if path is None:
                keys = keys if keys is not None else make_keys(n)
                path = Path(tmp) / runner.series.replace(" ", "-").replace("=", "-")
                started = time.perf_counter()
                runner.load(path, keys, small_value)
                print(
                    f"  {runner.name}: built in {time.perf_counter() - started:.1f} s", flush=True
                )
                stores[runner.series] = path
            rows.append(ReopenRow(runner.series, n, directory_bytes(path)))
        for run in range(runs):
            for row in rows:
                child = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        reopen_child_code(row.series),
                        str(stores[row.series]),
                        str(n),
                        str(SEED + run),
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if child.returncode != 0:
                    raise SystemExit(f"reopen: {row.series}: the child failed:\n{child.stderr}")
                result: dict[str, Any] = json.loads(child.stdout)
                if result["rss_after_open"] is not None and result["rss_after_import"]:
                    result["bytes_per_key"] = (
                        result["rss_after_open"] - result["rss_after_import"]
                    ) / n
                    result["bytes_per_key_after_reads"] = (
                        result["rss_after_reads"] - result["rss_after_import"]
                    ) / n
                row.runs.append(result)
                print(
                    f"  {run + 1}/{runs} {row.series:<16} open {result['seconds']:.3f} s, "
                    f"{result.get('bytes_per_key', float('nan')):,.1f} B/key after open, "
                    f"{result.get('bytes_per_key_after_reads', float('nan')):,.1f} B/key after "
                    f"{REOPEN_READS:,} reads",
                    flush=True,
                )
    return rows


# -- the report ------------------------------------------------------------------------------


def fmt_rate(rate: float) -> str:
    return f"{rate:,.0f}"


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    table = [list(header), *(list(row) for row in rows)]
    widths = [max(len(row[col]) for row in table) for col in range(len(header))]
    for position, row in enumerate(table):
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells).rstrip())
        if position == 0:
            print("  ".join("-" * width for width in widths))


def print_workload(workload: Workload) -> None:
    print(workload.title)
    header = ["runner", "n", *(f"{phase}/s median (min-max)" for phase in workload.phases)]
    rows = []
    for row in workload.rows:
        cells = [row.runner.name, f"{row.n:,}"]
        for phase in workload.phases:
            summary = row.summary(phase)
            cells.append(
                "-"
                if summary is None
                else f"{fmt_rate(summary[0])} ({fmt_rate(summary[1])}-{fmt_rate(summary[2])})"
            )
        rows.append(cells)
    print_table(header, rows)
    for phase, entry in workload.ratios().items():
        parts = [f"  {phase}: aiokv best ({entry['aiokv']}) {fmt_rate(entry['aiokv_rate'])}/s"]
        if PEER in entry:
            parts.append(f"{entry['vs_peer']:.2f}{TIMES} best peer ({entry['peer']})")
        if FLOOR in entry:
            parts.append(f"{entry['vs_floor']:.2f}{TIMES} raw floor")
        print(", ".join(parts))
    for note in workload.notes:
        print(f"  note: {note}")
    print()


def print_latency(rows: Sequence[LatencyRow], notes: Sequence[str]) -> None:
    print("latency: single reads of random keys, microseconds, median of the repeats (min-max)")
    table = []
    for row in rows:
        p50, p99, rate = row.span("p50_us"), row.span("p99_us"), row.span("reads_per_s")
        table.append(
            [
                row.runner.name,
                f"{row.size:,}",
                f"{p50[0]:.1f} ({p50[1]:.1f}-{p50[2]:.1f})",
                f"{p99[0]:.1f} ({p99[1]:.1f}-{p99[2]:.1f})",
                fmt_rate(rate[0]),
                f"{row.load_seconds:.1f}",
            ]
        )
    print_table(["runner", "keys", "p50 us", "p99 us", "reads/s", "load s"], table)
    for size in sorted({row.size for row in rows}):
        at = [row for row in rows if row.size == size]
        ours = next((row for row in at if row.runner.family == AIOKV), None)
        peers = [row for row in at if row.runner.family == PEER]
        floor = next((row for row in at if row.runner.family == FLOOR), None)
        if ours is None:
            continue
        parts = [f"  {size:,} keys: aiokv p50 {ours.median('p50_us'):.1f} us"]
        if peers:
            best = min(peers, key=lambda row: row.median("p50_us"))
            parts.append(
                f"best peer {best.runner.name} {best.median('p50_us'):.1f} us "
                f"(aiokv {ours.median('p50_us') / best.median('p50_us'):.2f}{TIMES} its latency)"
            )
        if floor is not None:
            parts.append(
                f"raw floor {floor.median('p50_us'):.1f} us "
                f"({ours.median('p50_us') / floor.median('p50_us'):.2f}{TIMES})"
            )
        print(", ".join(parts))
    for note in notes:
        print(f"  note: {note}")
    print()


def print_reopen(rows: Sequence[ReopenRow]) -> None:
    if not rows:
        return
    print(
        f"reopen: {rows[0].keys:,} small keys, each open in a fresh process; median of the "
        "child runs (min-max)"
    )
    table = []
    for row in rows:
        seconds = row.span("seconds")
        per_key = row.span("bytes_per_key")
        after_reads = row.span("bytes_per_key_after_reads")
        table.append(
            [
                row.series,
                f"{row.disk_bytes:,}",
                f"{seconds[0]:.3f} ({seconds[1]:.3f}-{seconds[2]:.3f})" if seconds else "-",
                f"{per_key[0]:,.1f} ({per_key[1]:,.1f}-{per_key[2]:,.1f})" if per_key else "-",
                f"{after_reads[0]:,.1f}" if after_reads else "-",
            ]
        )
    print_table(
        [
            "store",
            "disk bytes",
            "open s",
            "RSS B/key after open",
            f"after {REOPEN_READS:,} reads",
        ],
        table,
    )
    print()


@dataclass
class Target:
    name: str
    threshold: float
    value: float | None
    detail: str
    at_most: bool = False  # the figure must stay at or under the threshold

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value <= self.threshold if self.at_most else self.value >= self.threshold

    def line(self) -> str:
        if self.value is None:
            return f"{self.name}: n/a ({self.detail})"
        verdict = "met" if self.met else "not met"
        return f"{self.name}: {self.detail} \u2014 {verdict}"


def rate_of(workload: Workload | None, name: str, phase: str) -> float | None:
    if workload is None:
        return None
    row = workload.row(name)
    return row.median(phase) if row is not None else None


def ratio_target(
    name: str, threshold: float, ours: float | None, theirs: float | None, what: str
) -> Target:
    if ours is None or theirs is None:
        return Target(name, threshold, None, f"not measured: {what}")
    ratio = ours / theirs
    return Target(
        name,
        threshold,
        ratio,
        f"{ratio:.2f}{TIMES} ({fmt_rate(ours)} vs {fmt_rate(theirs)} ops/s)",
    )


def best_lmdb(workload: Workload | None, phase: str, against: str) -> float | None:
    """The faster of lmdb's two settings, among the rows run with as many keys as the aiokv
    row ``against``: a target against lmdb is met only if both are beaten on the same size."""
    if workload is None or (ours := workload.row(against)) is None:
        return None
    rates = [
        rate
        for row in workload.rows
        if row.runner.series in ("lmdb", "lmdb sync=False")
        and row.n == ours.n
        and (rate := row.median(phase)) is not None
    ]
    return max(rates) if rates else None


def targets(
    found: dict[str, Workload],
    latency: Sequence[LatencyRow],
    reopen: Sequence[ReopenRow],
) -> list[Target]:
    """The targets of the store's performance work, against the figures of this run."""
    small, large = found.get("1kb"), found.get("16kb")
    mixed, durable = found.get("mixed"), found.get("fsync")
    one_task, many_tasks = "aiokv await, 1 task", f"aiokv await, {ASYNC_TASKS} tasks"
    result = [
        ratio_target(
            f"await read 1 KB {GE} 1.5{TIMES} lmdb",
            1.5,
            rate_of(small, one_task, "read"),
            best_lmdb(small, "read", one_task),
            "the 1kb workload",
        ),
        ratio_target(
            f"DataStore 1-thread read 1 KB {GE} 1.5{TIMES} lmdb",
            1.5,
            rate_of(small, "aiokv DataStore, 1 thread", "read"),
            best_lmdb(small, "read", "aiokv DataStore, 1 thread"),
            "the 1kb workload",
        ),
        ratio_target(
            f"DataStore {THREADS}-thread 90/10 mix {GE} 1.2{TIMES} lmdb",
            1.2,
            rate_of(mixed, f"aiokv DataStore, {THREADS} threads", "mixed"),
            best_lmdb(mixed, "mixed", f"aiokv DataStore, {THREADS} threads"),
            "the mixed workload",
        ),
        ratio_target(
            f"await create 1 KB, {ASYNC_TASKS} tasks {GE} 1.5{TIMES} rocksdict put",
            1.5,
            rate_of(small, many_tasks, "create"),
            rate_of(small, "rocksdict", "create"),
            "the 1kb workload with rocksdict",
        ),
        ratio_target(
            f"await create 1 KB, 1 task {GE} 3{TIMES} diskcache add",
            3.0,
            rate_of(small, one_task, "create"),
            rate_of(small, "diskcache", "create"),
            "the 1kb workload with diskcache",
        ),
        ratio_target(
            f"fsync create, {ASYNC_TASKS} tasks {GE} 10{TIMES} lmdb sync=True",
            10.0,
            rate_of(durable, f"aiokv fsync await, {ASYNC_TASKS} tasks", "create"),
            rate_of(durable, "lmdb (sync=True), 1 writer", "create"),
            "the fsync workload with lmdb",
        ),
    ]
    for phase in ("create", "read"):
        ours = large.best(phase, AIOKV) if large else None
        theirs = large.best(phase, PEER) if large else None
        target = ratio_target(
            f"16 KB {phase} {GE} 1.5{TIMES} best peer",
            1.5,
            ours[1] if ours else None,
            theirs[1] if theirs else None,
            "the 16kb workload",
        )
        if ours and theirs:
            target.detail += f"; {ours[0].runner.name} vs {theirs[0].runner.name}"
        result.append(target)
    ours_reopen = next((row for row in reopen if row.series == AIOKV), None)
    per_key = ours_reopen.span("bytes_per_key") if ours_reopen else None
    seconds = ours_reopen.span("seconds") if ours_reopen else None
    keys = f"{ours_reopen.keys:,} keys" if ours_reopen else "the reopen workload"
    result.append(
        Target(
            f"memory after reopen {LE} 32 B/key",
            32.0,
            per_key[0] if per_key else None,
            f"{per_key[0]:,.1f} B/key ({keys})" if per_key else "not measured: reopen",
            at_most=True,
        )
    )
    result.append(
        Target(
            f"reopen {LE} 0.5 s",
            0.5,
            seconds[0] if seconds else None,
            f"{seconds[0]:.3f} s ({keys})" if seconds else "not measured: reopen",
            at_most=True,
        )
    )
    ours_latency = sorted(
        (row for row in latency if row.runner.family == AIOKV), key=lambda row: row.size
    )
    if len(ours_latency) >= 2:
        low, high = ours_latency[0], ours_latency[-1]
        ratio = high.median("p50_us") / low.median("p50_us")
        result.append(
            Target(
                f"read p50 at {high.size:,} keys {LE} 1.3{TIMES} p50 at {low.size:,}",
                1.3,
                ratio,
                f"{ratio:.2f}{TIMES} ({high.median('p50_us'):.1f} vs "
                f"{low.median('p50_us'):.1f} us)",
                at_most=True,
            )
        )
    else:
        result.append(Target("read p50 at 1M keys within 1.3x of 10k", 1.3, None, "not measured"))
    return result


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version_of(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def aiokv_source() -> dict[str, Any]:
    """Where the aiokv measured comes from: its path, a digest of its modules, and its git
    revision when it has one (``dirty`` when the package's files differ from that revision).

    The reopen children import aiokv afresh: comparing the digest at the end with the one at
    the start tells whether they ran the code the rest of the run measured."""
    root = Path(aiokv.__file__).resolve().parent
    digest = hashlib.sha256()
    for module in sorted(root.glob("*.py")):
        digest.update(module.name.encode() + b"\0" + module.read_bytes())
    source: dict[str, Any] = {"path": str(root), "sha256": digest.hexdigest()[:16]}
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return source
    source["git"] = head + ("-dirty" if changes else "")
    return source


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "aiokv_source": aiokv_source(),
        "versions": {
            "aiokv": aiokv.__version__,
            "sqlite": sqlite3.sqlite_version,
            **{
                name: version_of(name)
                for name in ("lmdb", "rocksdict", "diskcache", "sqlitedict", "aiosqlite")
            },
            "matplotlib": version_of("matplotlib"),
        },
    }


def machine_line(info: dict[str, Any]) -> str:
    revision = info.get("aiokv_source", {}).get("git")
    return (
        f"{info['cpus']} CPUs ({info['cpu_model']}), Linux {info['kernel']}, "
        f"{info['implementation']} {info['python']}, aiokv {info['versions']['aiokv']}"
        + (f" ({revision})" if revision else "")
    )


CHART_SERIES = (
    AIOKV,
    "lmdb",
    "lmdb sync=False",
    "rocksdict",
    "diskcache",
    "sqlite3",
    "sqlitedict",
    "aiosqlite",
    "raw floor",
)


def write_chart(path: Path, found: dict[str, Workload], info: dict[str, Any]) -> bool:
    """A grouped bar chart of median ops/s: one group per workload and phase, aiokv's best
    mode (named under the group) next to each peer; a log scale, as rates span decades."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed: no chart")
        return False
    groups: list[tuple[str, dict[str, float]]] = []
    labels = {"1kb": "1 KB", "16kb": "16 KB", "mixed": "90/10 mix", "fsync": "fsync"}
    for key in ("1kb", "16kb", "mixed", "fsync"):
        workload = found.get(key)
        if workload is None:
            continue
        for phase in workload.phases:
            bars: dict[str, float] = {}
            for series in CHART_SERIES:
                best = workload.series_best(phase, series)
                if best is not None:
                    bars[series] = best[1]
            ours = workload.best(phase, AIOKV)
            mode = ours[0].runner.name.removeprefix("aiokv ").replace("fsync ", "") if ours else ""
            title = labels[key] if key in ("mixed", "fsync") else f"{labels[key]} {phase}"
            groups.append((f"{title}\n({mode})", bars))
    if not groups:
        return False
    present = [s for s in CHART_SERIES if any(s in bars for _label, bars in groups)]
    width = 0.8 / len(present)
    figure, axes = plt.subplots(figsize=(max(10, 1.6 * len(groups)), 6))
    for position, series in enumerate(present):
        xs = [g + (position - (len(present) - 1) / 2) * width for g in range(len(groups))]
        heights = [bars.get(series, 0.0) for _label, bars in groups]
        axes.bar(
            xs,
            heights,
            width,
            label="aiokv (best mode)" if series == AIOKV else series,
            color="black" if series == AIOKV else None,
            hatch="//" if series == "raw floor" else None,
            edgecolor="white" if series == AIOKV else None,
        )
    axes.set_xticks(range(len(groups)))
    axes.set_xticklabels([label for label, _bars in groups], fontsize=8)
    axes.set_yscale("log")
    axes.set_ylabel("operations per second (median)")
    axes.set_title(f"aiokv and its peers: {machine_line(info)}", fontsize=9)
    axes.legend(fontsize=8, ncols=len(present), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    axes.grid(axis="y", which="both", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--n",
        type=int,
        default=100_000,
        help="keys of the 1kb and mixed workloads; the 16kb and fsync ones use n/5 "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--slow-n",
        type=int,
        default=SLOW_N,
        help="keys of the 1kb workload for the runners doing a few thousand ops/s: DataStore, "
        "lmdb sync=True, sqlitedict, aiosqlite (default: %(default)s)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each runner (default: %(default)s)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=WORKLOADS,
        help="run this workload only (may be given more than once; default: all)",
    )
    parser.add_argument(
        "--latency-reads",
        type=int,
        default=LATENCY_READS,
        help="timed reads per runner, store size and repeat (default: %(default)s)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure here")
    parser.add_argument(
        "--chart",
        type=Path,
        metavar="PATH",
        default=Path("docs/bench_peers.png"),
        help="where the chart goes (default: %(default)s)",
    )
    parser.add_argument("--no-chart", action="store_true", help="do not write the chart")
    parser.add_argument("--dir", type=Path, help="where the temporary stores go (default: TMPDIR)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test: n 5,000, latency at 1,000/5,000/20,000 keys, reopen of 20,000, "
        "one run each",
    )
    args = parser.parse_args(argv)
    sizes: tuple[int, ...] = LATENCY_SIZES
    reopen_n = REOPEN_KEYS
    reopen_runs = REOPEN_RUNS
    if args.quick:
        args.n = min(args.n, 5_000)
        args.slow_n = min(args.slow_n, 2_000)
        args.repeat = 1
        args.latency_reads = min(args.latency_reads, 2_000)
        sizes = (1_000, 5_000, 20_000)
        reopen_n = 20_000
        reopen_runs = 1
    if min(args.n // 5, args.slow_n, args.repeat, args.latency_reads) < 1:
        parser.error("--n must be at least 5, --slow-n, --repeat and --latency-reads at least 1")
    if args.n // 5 < ASYNC_TASKS:
        parser.error(f"--n must be at least {5 * ASYNC_TASKS}")
    only = args.only or list(WORKLOADS)

    info = machine()
    print(f"aiokv against its peers on {machine_line(info)}")
    versions = ", ".join(f"{name} {v}" for name, v in info["versions"].items() if v)
    print(f"versions: {versions}")
    source = info["aiokv_source"]
    print(f"aiokv from {source['path']}" + (f" (git {source['git']})" if "git" in source else ""))
    print(
        f"load average at start: {', '.join(f'{x:.2f}' for x in info['load_average'] or [])}; "
        f"stores in {args.dir or tempfile.gettempdir()}; {args.repeat} run(s) per runner"
    )
    print()

    started = time.perf_counter()
    found: dict[str, Workload] = {}
    if "1kb" in only:
        found["1kb"] = crud_workload(
            "1kb", args.n, args.slow_n, SMALL_VALUE_BYTES, args.repeat, args.dir
        )
        print()
    if "16kb" in only:
        found["16kb"] = crud_workload(
            "16kb", args.n // 5, args.slow_n, LARGE_VALUE_BYTES, args.repeat, args.dir
        )
        print()
    if "mixed" in only:
        found["mixed"] = mixed_workload(args.n, args.repeat, args.dir)
        print()
    if "fsync" in only:
        found["fsync"] = fsync_workload(args.n // 5, args.repeat, args.dir)
        print()

    latency_rows: list[LatencyRow] = []
    latency_notes: list[str] = []
    reopen_rows: list[ReopenRow] = []
    with tempfile.TemporaryDirectory(prefix="aiokv-peers-", dir=args.dir) as kept:
        stores: dict[str, Path] = {}
        skipped: list[str] = []
        if "latency" in only:
            latency_rows, latency_notes = latency_workload(
                sizes,
                args.latency_reads,
                args.repeat,
                args.dir,
                stores,
                reopen_n if "reopen" in only else -1,
                Path(kept),
            )
            built = {row.runner.name for row in latency_rows if row.size == max(sizes)}
            skipped = [r.name for r in latency_runners()[0] if r.name not in built]
            if reopen_n != max(sizes):
                stores.clear()
                skipped = []
            print()
        if "reopen" in only:
            reopen_rows = reopen_workload(reopen_n, reopen_runs, args.dir, stores, skipped)
            print()
    elapsed = time.perf_counter() - started
    source_at_end = aiokv_source()
    changed = ""
    if source_at_end["sha256"] != info["aiokv_source"]["sha256"]:
        info["aiokv_source_at_end"] = source_at_end
        changed = (
            f"note: aiokv's modules changed during the run "
            f"({info['aiokv_source'].get('git', '?')} -> {source_at_end.get('git', '?')}): the "
            "workloads ran the code imported at the start, the reopen children (if any) the code "
            "on disk when they started"
        )

    print("=" * 100)
    print(f"summary: {machine_line(info)}")
    print(f"versions: {versions}")
    if changed:
        print(changed)
    print()
    for workload in found.values():
        print_workload(workload)
    if latency_rows:
        print_latency(latency_rows, latency_notes)
    print_reopen(reopen_rows)
    goals = targets(found, latency_rows, reopen_rows)
    print("targets" + (" (quick run: smaller sizes than the targets name)" if args.quick else ""))
    for goal in goals:
        print(f"  {goal.line()}")
    print()
    chart_written = False
    if not args.no_chart:
        chart_written = write_chart(args.chart, found, info)
        if chart_written:
            print(f"wrote {args.chart}")
    print(f"total time {elapsed:.0f} s; command: {' '.join([sys.executable, *sys.argv])}")

    if args.json is not None:
        document = {
            "machine": info,
            "command": [sys.executable, *sys.argv],
            "settings": {
                "n": args.n,
                "slow_n": args.slow_n,
                "repeat": args.repeat,
                "quick": args.quick,
                "latency_sizes": list(sizes),
                "latency_reads": args.latency_reads,
                "reopen_keys": reopen_n,
                "reopen_runs": reopen_runs,
                "value_bytes": {"1kb": SMALL_VALUE_BYTES, "16kb": LARGE_VALUE_BYTES},
            },
            "elapsed_s": elapsed,
            "workloads": {
                key: {
                    "title": workload.title,
                    "phases": list(workload.phases),
                    "notes": workload.notes,
                    "runners": [
                        {
                            "name": row.runner.name,
                            "library": row.runner.series,
                            "family": row.runner.family,
                            "workers": row.runner.workers,
                            "n": row.n,
                            "runs": row.runs,
                            "summary": {
                                phase: dict(zip(("median", "min", "max"), summary, strict=True))
                                for phase in workload.phases
                                if (summary := row.summary(phase)) is not None
                            },
                        }
                        for row in workload.rows
                    ],
                    "ratios": workload.ratios(),
                }
                for key, workload in found.items()
            },
            "latency": {
                "notes": latency_notes,
                "rows": [
                    {
                        "name": row.runner.name,
                        "library": row.runner.series,
                        "keys": row.size,
                        "load_seconds": row.load_seconds,
                        "runs": row.runs,
                        "median": {
                            name: row.median(name) for name in ("p50_us", "p99_us", "reads_per_s")
                        },
                    }
                    for row in latency_rows
                ],
            },
            "reopen": [
                {
                    "library": row.series,
                    "keys": row.keys,
                    "disk_bytes": row.disk_bytes,
                    "runs": row.runs,
                    "median": {
                        name: span[0]
                        for name in ("seconds", "bytes_per_key", "bytes_per_key_after_reads")
                        if (span := row.span(name)) is not None
                    },
                }
                for row in reopen_rows
            ],
            "targets": [
                {
                    "name": goal.name,
                    "threshold": goal.threshold,
                    "at_most": goal.at_most,
                    "value": goal.value,
                    "met": goal.met,
                    "line": goal.line(),
                }
                for goal in goals
            ],
            "chart": str(args.chart) if chart_written else None,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

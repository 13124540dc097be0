"""The runners: each way of running a workload, a store with its settings and concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from _bench.stores import (
    aiosqlite_store,
    diskcache_store,
    lmdb_store,
    rocksdict_store,
    sqlitedict_store,
)
from _bench.stores.aiokv_store import AiokvAsync, AiokvSync, aiokv_load
from _bench.stores.aiosqlite_store import open_aiosqlite
from _bench.stores.asyncio_floor import AsyncioFloor
from _bench.stores.base import AsyncHandle, SyncHandle, optional
from _bench.stores.diskcache_store import DiskcacheStore
from _bench.stores.lmdb_store import lmdb_synced, lmdb_unsynced
from _bench.stores.raw_floor import RawFloor, raw_floor_fsync
from _bench.stores.rocksdict_store import RocksStore
from _bench.stores.sqlite_store import SqliteStore, sqlite_full
from _bench.stores.sqlitedict_store import SqlitedictStore
from _bench.values import ValueOf

AIOKV, PEER, FLOOR = "aiokv", "peer", "floor"
# The rows of batch writes: a batch is not one operation, so these rows are ranked with neither
# aiokv's modes nor the peers (a best mode or best peer would be a batch row then) and are
# compared with each other by a target of their own.
BATCH = "batch"
ASYNCIO, UVLOOP = "asyncio", "uvloop"  # the event loops an async runner runs on

uvloop = optional("uvloop")


def event_loops() -> tuple[tuple[str, ...], list[str]]:
    """The event loops the async runners run on, and a note if uvloop is missing."""
    if uvloop is None:
        return (ASYNCIO,), ["uvloop is not installed: the async rows ran on asyncio's loop only"]
    return (ASYNCIO, UVLOOP), []


def on_loop(name: str, loop: str) -> str:
    """A runner's name on ``loop``: as it is on asyncio's default loop, marked on another."""
    return name if loop == ASYNCIO else f"{name} [{loop}]"


@dataclass(frozen=True)
class Runner:
    """One way of running a workload: a library, its settings and its concurrency.

    ``series`` names the library (and setting) in the chart and in the targets; ``slow`` ones
    do a few thousand operations per second and run the ``1kb`` workload with ``--slow-n`` keys.
    An async runner runs on ``loop``; it splits the keys among ``workers`` tasks, each awaiting
    its operations in turn, or with ``gather`` makes each batch of ``workers`` creates one
    ``asyncio.gather`` of fresh coroutines. A ``creates_only`` runner has no read or delete
    worth timing: only the create phases are run (and every key read back, untimed). With
    ``batch``, creates go ``batch`` keys at a time, each batch one call of the store's batch
    write (``create_many`` of its ops), from one thread or task.
    """

    name: str
    series: str
    family: str
    connect: Callable[[Path], SyncHandle] | None = None
    aconnect: Callable[[Path], Awaitable[AsyncHandle]] | None = None
    workers: int = 1
    slow: bool = False
    loader: Callable[[Path, Sequence[str], ValueOf], None] | None = None
    loop: str = ASYNCIO
    gather: bool = False
    creates_only: bool = False
    batch: int = 0

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


def aiokv_async(tasks: int, durability: str = "flush", loop: str = ASYNCIO) -> Runner:
    prefix = "aiokv fsync" if durability == "fsync" else "aiokv"
    return Runner(
        name=on_loop(f"{prefix} await, {tasks} task{'s' if tasks > 1 else ''}", loop),
        series=AIOKV,
        family=AIOKV,
        aconnect=lambda path: AiokvAsync.open(path, durability),
        workers=tasks,
        loader=aiokv_load,
        loop=loop,
    )


def aiokv_gather(batch: int, loop: str = ASYNCIO) -> Runner:
    """aiokv's creates, each ``batch`` of them one ``asyncio.gather`` of fresh coroutines.

    Creates only: reads and deletes gathered would time asyncio's making of a task per call
    more than the store, and cost the full run a minute.
    """
    return Runner(
        name=on_loop(f"aiokv gather, {batch} per batch", loop),
        series=AIOKV,
        family=AIOKV,
        aconnect=AiokvAsync.open,
        workers=batch,
        loader=aiokv_load,
        loop=loop,
        gather=True,
        creates_only=True,
    )


def async_runners(tasks: int, loop: str) -> list[Runner]:
    """aiokv's async modes on ``loop``: one task, ``tasks`` tasks, gathers of ``tasks``."""
    return [aiokv_async(1, loop=loop), aiokv_async(tasks, loop=loop), aiokv_gather(tasks, loop)]


def asyncio_floor(tasks: int, loop: str = ASYNCIO, *, gather: bool = False) -> Runner:
    """The floor of a one-writer asyncio store's creates, from ``tasks`` tasks, or with
    ``gather`` from batches of ``tasks`` gathered coroutines (the most a gathered create can
    reach: asyncio makes a task for each)."""
    mode = f"gather, {tasks} per batch" if gather else f"{tasks} tasks"
    return Runner(
        name=on_loop(f"asyncio floor {mode}" if gather else f"asyncio floor, {mode}", loop),
        series="asyncio floor",
        family=FLOOR,
        aconnect=AsyncioFloor.open,
        workers=tasks,
        loop=loop,
        gather=gather,
        creates_only=True,
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


def aiokv_create_many(batch: int) -> Runner:
    return Runner(
        name=f"aiokv create_many, {batch:,} per call",
        series="aiokv create_many",
        family=BATCH,
        aconnect=AiokvAsync.open,
        loader=aiokv_load,
        creates_only=True,
        batch=batch,
    )


def rocksdict_write_batch(batch: int) -> Runner:
    return Runner(
        name=f"rocksdict WriteBatch, {batch:,} per batch",
        series="rocksdict WriteBatch",
        family=BATCH,
        connect=RocksStore,
        creates_only=True,
        batch=batch,
    )


def batch_runners(batch: int) -> tuple[list[Runner], list[str]]:
    """aiokv's ``create_many`` and rocksdict's ``WriteBatch``, ``batch`` keys per call, creates
    only; and a note if rocksdict is missing."""
    if rocksdict_store.rocksdict is None:
        return [aiokv_create_many(batch)], ["rocksdict is not installed: no WriteBatch row"]
    return [aiokv_create_many(batch), rocksdict_write_batch(batch)], []


def peer_runners(workers: int = 1, *, with_async: bool = True) -> tuple[list[Runner], list[str]]:
    """The installed peers and the raw floor, and a note for each peer that is missing."""
    suffix = f", {workers} threads" if workers > 1 else ""

    def peer(series: str, connect: Callable[[Path], SyncHandle], slow: bool = False) -> Runner:
        return Runner(f"{series}{suffix}", series, PEER, connect, None, workers, slow)

    # (library, installed, its runners), in the order of the tables.
    candidates: list[tuple[str, bool, list[Runner]]] = [
        (
            "lmdb",
            lmdb_store.lmdb is not None,
            [peer("lmdb", lmdb_synced, slow=True), peer("lmdb sync=False", lmdb_unsynced)],
        ),
        ("rocksdict", rocksdict_store.rocksdict is not None, [peer("rocksdict", RocksStore)]),
        ("diskcache", diskcache_store.diskcache is not None, [peer("diskcache", DiskcacheStore)]),
        ("sqlite3", True, [peer("sqlite3", SqliteStore)]),
        (
            "sqlitedict",
            sqlitedict_store.sqlitedict is not None,
            [peer("sqlitedict", SqlitedictStore, slow=True)],
        ),
    ]
    if with_async:
        aiosqlite_runner = Runner(
            "aiosqlite await, 1 task", "aiosqlite", PEER, None, open_aiosqlite, slow=True
        )
        candidates.append(("aiosqlite", aiosqlite_store.aiosqlite is not None, [aiosqlite_runner]))
    runners = [runner for _name, installed, found in candidates if installed for runner in found]
    runners.append(Runner(f"raw floor{suffix}", "raw floor", FLOOR, RawFloor, None, workers))
    missing = [name for name, installed, _found in candidates if not installed]
    return runners, [f"{name} is not installed: skipped" for name in missing]


def latency_runners() -> tuple[list[Runner], list[str]]:
    """aiokv from one task and every peer, with one lmdb row (reads ignore its sync setting)."""
    peers, missing = peer_runners()
    peers = [runner for runner in peers if runner.series != "lmdb sync=False"]
    return [aiokv_async(1), *peers], missing


def fsync_runners(tasks: int) -> tuple[list[Runner], list[str]]:
    """The runners whose creates return only once synced to disk, and a note if lmdb is
    missing: aiokv from 1 and ``tasks`` tasks, lmdb, sqlite3 and the floor."""
    runners = [aiokv_async(1, "fsync"), aiokv_async(tasks, "fsync")]
    notes = []
    if lmdb_store.lmdb is not None:
        runners.append(Runner("lmdb (sync=True), 1 writer", "lmdb", PEER, lmdb_synced))
    else:
        notes.append("lmdb is not installed: skipped")
    runners.append(Runner("sqlite3 synchronous=FULL", "sqlite3", PEER, sqlite_full))
    runners.append(Runner("raw floor + fsync", "raw floor", FLOOR, raw_floor_fsync))
    return runners, notes

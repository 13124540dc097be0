"""Iteration over a large store: ``keys()`` and ``items()`` against an lmdb cursor over the
same keys and values, in the same run."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import orjson

import aiokv
from _bench.core import TMP_PREFIX
from _bench.dataset.common import (
    CheckFailedError,
    Part,
    Ratio,
    Settings,
    fill,
    max_size_for,
    timed,
)
from _bench.stores import lmdb_store
from _bench.stores.lmdb_store import LmdbStore
from _bench.values import ENCODE, LONG_KEY_CHARS, make_long_keys, small_value

SMALL_VALUE_BYTES = len(ENCODE(small_value(0)))  # at least; the ids' digits add to it

AIOKV_KEYS, AIOKV_ITEMS = "aiokv keys()", "aiokv items()"
LMDB_KEYS = "lmdb cursor keys, decoded"
LMDB_ITEMS = "lmdb cursor items, orjson.loads"

Seen = tuple[list[str], int | None]  # the keys yielded; the sum of the values' "i", for items


def run_iterate(settings: Settings) -> Part:
    n = settings.iterate_n
    part = Part(
        "iterate",
        f"iterate: every key, then every item, of a store of {n:,} keys of {LONG_KEY_CHARS} "
        f"characters with small values ({{'i': i}}), aiokv against an lmdb cursor",
        settings.repeat,
    )
    part.add(AIOKV_KEYS, "keys/s", n)
    part.add(AIOKV_ITEMS, "items/s", n)
    if lmdb_store.lmdb is None:
        part.notes.append(
            "lmdb is not installed (pip install -e '.[bench]'): its rows and the ratios skipped"
        )
    else:
        part.add(LMDB_KEYS, "keys/s", n)
        part.add(LMDB_ITEMS, "items/s", n)
        part.ratios += [Ratio(AIOKV_KEYS, LMDB_KEYS), Ratio(AIOKV_ITEMS, LMDB_ITEMS)]
    part.notes += [
        f"aiokv's store built by create_many calls of {min(settings.batch, n):,} keys, lmdb's "
        "by transactions of 10,000 puts of the same compact JSON (sync=False); both built once, "
        "untimed, then iterated in turn on each repeat",
        "every loop keeps each key (lmdb's decoded from bytes, as aiokv yields str) and adds up "
        "each value's 'i'; afterwards the keys must be exactly the keys written, the count and "
        "the sum those written. lmdb's values are decoded with orjson.loads, aiokv's own "
        "decoder and the faster of the two (json.loads would slow lmdb's row down)",
    ]
    print(part.title, flush=True)
    keys = make_long_keys(n)
    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=settings.dir) as tmp:
        lmdb_env = None
        if lmdb_store.lmdb is not None:
            lmdb_env = LmdbStore(Path(tmp) / "lmdb", sync=False)
            lmdb_env.bulk_load(keys, small_value)
        try:
            asyncio.run(iterate_runs(part, settings, Path(tmp) / "aiokv", keys, lmdb_env))
        finally:
            if lmdb_env is not None:
                lmdb_env.close()
    return part


async def iterate_runs(
    part: Part,
    settings: Settings,
    path: Path,
    keys: Sequence[str],
    lmdb_env: LmdbStore | None,
) -> None:
    n = len(keys)
    async with aiokv.AsyncDataStore(path, max_size=max_size_for(n, SMALL_VALUE_BYTES)) as store:
        await fill(store, keys, small_value, settings.batch)
        cases: list[tuple[str, Callable[[], Awaitable[Seen]]]] = [
            (AIOKV_KEYS, lambda: aiokv_keys(store)),
            (AIOKV_ITEMS, lambda: aiokv_items(store)),
        ]
        if lmdb_env is not None:
            cases += [
                (LMDB_KEYS, lambda: as_awaitable(lmdb_keys, lmdb_env)),
                (LMDB_ITEMS, lambda: as_awaitable(lmdb_items, lmdb_env)),
            ]
        for run in range(settings.repeat):
            # aiokv first on every other repeat, lmdb on the others.
            for name, work in cases if run % 2 == 0 else cases[2:] + cases[:2]:
                seconds, (seen, total) = await timed(work())
                check(name, keys, seen, total)
                part.record(run, name, n / seconds)


async def as_awaitable(work: Callable[[LmdbStore], Seen], lmdb_env: LmdbStore) -> Seen:
    """``work(lmdb_env)`` run where it is awaited: lmdb is timed as aiokv is."""
    return work(lmdb_env)


async def aiokv_keys(store: aiokv.AsyncDataStore) -> Seen:
    seen = []
    append = seen.append
    async for key in store.keys():
        append(key)
    return seen, None


async def aiokv_items(store: aiokv.AsyncDataStore) -> Seen:
    seen = []
    append = seen.append
    total = 0
    async for key, value in store.items():
        append(key)
        total += value["i"]
    return seen, total


def lmdb_keys(lmdb_env: LmdbStore) -> Seen:
    seen = []
    append = seen.append
    with lmdb_env.env.begin() as txn:
        for key in txn.cursor().iternext(keys=True, values=False):
            append(key.decode())
    return seen, None


def lmdb_items(lmdb_env: LmdbStore) -> Seen:
    seen = []
    append = seen.append
    total = 0
    loads = orjson.loads
    with lmdb_env.env.begin() as txn:
        cursor: Iterator[tuple[bytes, bytes]] = txn.cursor().iternext(keys=True, values=True)
        for key, data in cursor:
            append(key.decode())
            total += loads(data)["i"]
    return seen, total


def check(what: str, keys: Sequence[str], seen: list[str], total: int | None = None) -> None:
    """``seen`` must be ``keys`` in some order, and ``total`` the sum of their values' ``i``."""
    n = len(keys)
    if len(seen) != n:
        raise CheckFailedError(f"{what}: {len(seen):,} keys yielded, {n:,} written")
    seen.sort()
    if seen != keys:  # make_long_keys gives them in sorted order
        raise CheckFailedError(f"{what}: the keys yielded are not the keys written")
    if total is not None and total != n * (n - 1) // 2:
        raise CheckFailedError(f"{what}: the values yielded are not the values written")

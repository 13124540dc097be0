"""``create_many`` against ``await create`` from 100 tasks, and ``read_many`` against ``await
read`` one key at a time, on the same keys and values, in the same run."""

from __future__ import annotations

import asyncio
import gc
import os
import tempfile
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import orjson

import aiokv
from _bench.core import ASYNC_TASKS, TMP_PREFIX, async_phase
from _bench.dataset.common import (
    CheckFailedError,
    Part,
    Ratio,
    Settings,
    check_store,
    max_size_for,
    timed,
)
from _bench.values import LONG_KEY_CHARS, Value, make_long_keys, nested_values, sized_values

T = TypeVar("T")

CREATE_TARGET = 3.0  # create_many over the 100-task creates, on each shape of value


def names(batch: int, read_batch: int, shape: str) -> tuple[str, str, str, str]:
    """The figures of one shape of value: create_many, its baseline, read_many, its baseline."""
    return (
        f"create_many, {batch:,} per call [{shape}]",
        f"await create, {ASYNC_TASKS} tasks [{shape}]",
        f"read_many, {read_batch:,} per call [{shape}]",
        f"await read, 1 task [{shape}]",
    )


def floor_name(batch: int, shape: str) -> str:
    return f"floor: encode, CRC, write {batch:,} [{shape}]"


def run_batch(settings: Settings) -> Part:
    n, value_bytes = settings.n, settings.value_bytes
    batch, read_batch = min(settings.batch, n), min(settings.read_batch, n)
    part = Part(
        "batch",
        f"batch: {n:,} keys of {LONG_KEY_CHARS} characters, {value_bytes:,}-byte values; "
        f"create_many of {batch:,} keys per call against await create from {ASYNC_TASKS} "
        f"tasks, read_many of {read_batch:,} keys per call against await read from one task",
        settings.repeat,
    )
    keys = make_long_keys(n)
    shapes: dict[str, list[Value]] = {"flat": sized_values(n, value_bytes)}
    try:
        shapes["nested"] = nested_values(n, value_bytes)
    except ValueError as exc:
        part.notes.append(f"nested values skipped: {exc}")
    for shape in shapes:
        many, tasks, read_many, read = names(batch, read_batch, shape)
        floor = floor_name(batch, shape)
        for name in (many, tasks, floor):
            part.add(name, "creates/s", n)
        for name in (read_many, read):
            part.add(name, "keys/s", n)
        part.ratios += [
            Ratio(many, tasks, CREATE_TARGET),
            Ratio(many, floor),
            Ratio(tasks, floor),
            Ratio(read_many, read),
        ]
    part.notes += [
        f"flat: {{'i': i, 'pad': 'x' * k}}; nested: an id, a 50-int array, 30 short fields, "
        f"bools and nulls, padded to {value_bytes:,} bytes",
        "each create run on a fresh store, keys in order; the reads on the store create_many "
        "filled; every value is read back and compared after each create run (untimed)",
        f"floor: the least any store that checksums its records does, in Python: each value "
        f"orjson-encoded, key and value CRC-32'd, {batch:,} records joined and appended to a "
        f"fresh file with one write (no index, no checks, no fsync)",
    ]
    print(part.title, flush=True)
    for run in range(settings.repeat):
        for shape, values in shapes.items():
            cases = (batched_case, awaited_case, floor_case)
            # Each goes first on every other repeat: neither always meets the colder process.
            for case in cases if run % 2 == 0 else cases[::-1]:
                case(part, settings, run, shape, keys, values)
    return part


def batched_case(
    part: Part,
    settings: Settings,
    run: int,
    shape: str,
    keys: Sequence[str],
    values: Sequence[Value],
) -> None:
    """create_many into a fresh store, then read_many and await read on it."""
    batch, read_batch = min(settings.batch, len(keys)), min(settings.read_batch, len(keys))
    many, _tasks, read_many, read = names(batch, read_batch, shape)
    rates = on_fresh_store(
        settings, lambda store: batch_run(store, keys, values, batch, read_batch)
    )
    part.record(run, many, rates["create_many"])
    part.record(run, read_many, rates["read_many"])
    part.record(run, read, rates["read"])


def awaited_case(
    part: Part,
    settings: Settings,
    run: int,
    shape: str,
    keys: Sequence[str],
    values: Sequence[Value],
) -> None:
    """The creates from ``ASYNC_TASKS`` tasks into a fresh store."""
    batch, read_batch = min(settings.batch, len(keys)), min(settings.read_batch, len(keys))
    _many, tasks, _read_many, _read = names(batch, read_batch, shape)
    rate = on_fresh_store(settings, lambda store: tasks_run(store, keys, values))
    part.record(run, tasks, rate)


def floor_case(
    part: Part,
    settings: Settings,
    run: int,
    shape: str,
    keys: Sequence[str],
    values: Sequence[Value],
) -> None:
    """The floor of a batched create: encode, checksum and append, nothing else."""
    batch = min(settings.batch, len(keys))
    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=settings.dir) as tmp:
        gc.collect()  # as timed() does for the store's cases
        rate = floor_run(Path(tmp) / "log", keys, values, batch)
    part.record(run, floor_name(batch, shape), rate)


def floor_run(path: Path, keys: Sequence[str], values: Sequence[Value], batch: int) -> float:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        start = time.perf_counter()
        for first in range(0, len(keys), batch):
            records = []
            for key, value in zip(
                keys[first : first + batch], values[first : first + batch], strict=True
            ):
                record = key.encode() + orjson.dumps(value)
                records.append(zlib.crc32(record).to_bytes(4, "little") + record)
            data = memoryview(b"".join(records))
            while data:
                data = data[os.write(fd, data) :]
        return len(keys) / (time.perf_counter() - start)
    finally:
        os.close(fd)


def on_fresh_store(settings: Settings, work: Callable[[aiokv.AsyncDataStore], Awaitable[T]]) -> T:
    """Run ``work`` on a fresh store in a temporary directory, in a new event loop."""

    async def main(path: Path) -> T:
        async with aiokv.AsyncDataStore(
            path, max_size=max_size_for(settings.n, settings.value_bytes)
        ) as store:
            return await work(store)

    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=settings.dir) as tmp:
        return asyncio.run(main(Path(tmp) / "store"))


async def batch_run(
    store: aiokv.AsyncDataStore,
    keys: Sequence[str],
    values: Sequence[Value],
    batch: int,
    read_batch: int,
) -> dict[str, float]:
    """Time creates by ``create_many`` calls of ``batch`` keys, check every value, then time
    reads by ``read_many`` calls of ``read_batch`` keys and by ``await read`` of each."""
    n = len(keys)
    seconds, _ = await timed(create_batches(store, keys, values, batch))
    rates = {"create_many": n / seconds}
    await check_store(store, keys, values.__getitem__, "create_many")
    seconds, _ = await timed(read_batches(store, keys, read_batch))
    rates["read_many"] = n / seconds
    seconds, _ = await timed(async_phase(store, "read", keys, values, 1))
    rates["read"] = n / seconds
    return rates


async def create_batches(
    store: aiokv.AsyncDataStore, keys: Sequence[str], values: Sequence[Value], batch: int
) -> None:
    # Pairs as an application holds them (two lists zipped): no mapping is built for the call.
    for start in range(0, len(keys), batch):
        stop = start + batch
        await store.create_many(zip(keys[start:stop], values[start:stop], strict=True))


async def read_batches(store: aiokv.AsyncDataStore, keys: Sequence[str], read_batch: int) -> None:
    # Counting what each call found costs nothing next to the call; the values themselves were
    # compared after the creates, through the same read_many.
    for start in range(0, len(keys), read_batch):
        wanted = keys[start : start + read_batch]
        found = await store.read_many(wanted)
        if len(found) != len(wanted):
            raise CheckFailedError(
                f"read_many found {len(found):,} of {len(wanted):,} keys from {wanted[0]!r}"
            )


async def tasks_run(
    store: aiokv.AsyncDataStore, keys: Sequence[str], values: Sequence[Value]
) -> float:
    """Time the creates from ``ASYNC_TASKS`` tasks (``bench_core.py``'s case), then check."""
    seconds, _ = await timed(async_phase(store, "create", keys, values, ASYNC_TASKS))
    await check_store(store, keys, values.__getitem__, f"await create, {ASYNC_TASKS} tasks")
    return len(keys) / seconds

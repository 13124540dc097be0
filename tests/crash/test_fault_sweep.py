"""Fail the N-th file operation, for every N the workload makes, and check what survives.

The faults go through the store's file-system seam (``system.files.fs``): an ``OSError`` (EIO
or ENOSPC) at the N-th operation, once or from then on, or a write cut short at the N-th. The
workload opens a store with small segments, creates (rolling over segments and writing hints),
deletes, compacts and closes. For every N:

- whatever reaches the caller is one of aiokv's errors (``DataStoreError``), never a bare
  ``OSError``, and nothing hangs;
- once a write or an fsync has failed fatally (``StoreIOError``), every later write is refused;
- after the fault is removed, a reopen holds every acknowledged create and none of the
  acknowledged deletes; an operation that failed is there or not, never torn;
- no file descriptor or thread is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _internals import MIN_SEGMENT_MAX_BYTES, FileSystem
from _internals import files as _files

from aiokv import AsyncDataStore, DataStoreError, KeyNotFoundError, StoreIOError

pytestmark = pytest.mark.slow

MAX_SIZE = 2**21
CREATES = 40

# Operations a fault can hit; ``close`` is left out (the descriptor is gone whatever it says).
FAULTABLE = (
    "create",
    "open",
    "write",
    "pread",
    "read_head",
    "read_file",
    "map_file",
    "size",
    "fsync",
    "truncate",
    "replace",
    "unlink",
    "listdir",
    "sync_directory",
)


class FaultyFileSystem(FileSystem):
    """Counts the faultable operations; fails the ``fail_at``-th (and later ones if
    ``persistent``) with ``error``, or, for ``error == 0``, cuts that write short."""

    def __init__(self, fail_at: int, error: int, persistent: bool) -> None:
        self.fail_at = fail_at
        self.error = error
        self.persistent = persistent
        self.count = 0
        self.injected = 0
        for name in FAULTABLE:
            setattr(self, name, self._gated(name, getattr(FileSystem, name)))

    def _gated(self, name: str, real: Any) -> Any:
        def call(*args: Any) -> Any:
            self.count += 1
            due = self.count == self.fail_at or (self.persistent and self.count > self.fail_at)
            if due and self.fail_at:
                self.injected += 1
                if self.error == 0:
                    if name == "write" and len(args[1]) > 1:
                        return real(self, args[0], memoryview(args[1])[: len(args[1]) // 2])
                else:
                    raise OSError(self.error, f"injected at operation {self.count} ({name})")
            return real(self, *args)

        return call


@pytest.fixture
def faulty() -> Iterator[list[FaultyFileSystem]]:
    """Install a fault-injecting file system for one test; the real one comes back after."""
    holder: list[FaultyFileSystem] = []
    real = _files.fs
    try:
        yield holder
    finally:
        _files.fs = real


def value_for(i: int) -> dict[str, Any]:
    return {"i": i, "pad": "p" * (i * 97 % 3000)}


class Outcome:
    def __init__(self) -> None:
        self.model: dict[str, Any] = {}
        self.maybe: dict[str, Any] = {}  # key -> value it may hold (None: may be absent)
        self.fatal = False


async def workload(path: Path, outcome: Outcome, durability: str) -> None:
    store = AsyncDataStore(
        path,
        durability=durability,
        segment_max_bytes=MIN_SEGMENT_MAX_BYTES,
        max_size=MAX_SIZE,
        compact_dead_ratio=None,
    )
    try:
        await store.open()
    except DataStoreError:
        return

    async def attempt(kind: str, key: str, value: Any) -> None:
        try:
            if kind == "create":
                await store.create(key, value)
            else:
                await store.delete(key)
        except DataStoreError as exc:
            error: DataStoreError | None = exc
        else:
            error = None
        if error is not None:
            fatal = isinstance(error, StoreIOError)
            assert fatal or not outcome.fatal, f"a write after a fatal error: {error!r}"
            outcome.fatal |= fatal
            outcome.maybe[key] = value if kind == "create" else None
            return
        assert not outcome.fatal, "a write was accepted after a fatal error"
        if kind == "create":
            outcome.model[key] = value
        else:
            outcome.model.pop(key, None)
        outcome.maybe.pop(key, None)

    try:
        for i in range(CREATES):
            await attempt("create", f"k{i}", value_for(i))
        for i in range(0, CREATES, 3):
            if f"k{i}" in outcome.model:
                await attempt("delete", f"k{i}", None)
        with contextlib.suppress(DataStoreError):
            await store.compact()
    finally:
        with contextlib.suppress(DataStoreError):
            await asyncio.wait_for(store.close(), 30)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def check_reopen(path: Path, outcome: Outcome, context: str) -> None:
    async with AsyncDataStore(path, max_size=MAX_SIZE, compact_dead_ratio=None) as store:
        for i in range(CREATES):
            key = f"k{i}"
            try:
                found: Any = await store.read(key)
            except KeyNotFoundError:
                found = None
            if key in outcome.maybe:
                allowed = [outcome.model.get(key), outcome.maybe[key]]
                assert found in allowed, f"{context}: {key} is {found!r}, not one of {allowed!r}"
            else:
                expected = outcome.model.get(key)
                assert found == expected, f"{context}: {key} is {found!r}, not {expected!r}"


async def run_with_fault(
    tmp_path: Path,
    faulty: list[FaultyFileSystem],
    fail_at: int,
    error: int,
    persistent: bool,
    durability: str,
) -> FaultyFileSystem:
    path = tmp_path / f"s{fail_at}"
    gc.collect()  # the baseline holds no garbage of earlier tests, to be collected mid-run
    fds, threads = open_fds(), threading.active_count()
    fs = FaultyFileSystem(fail_at, error, persistent)
    faulty[:] = [fs]
    _files.fs = fs
    outcome = Outcome()
    try:
        await workload(path, outcome, durability)
    finally:
        _files.fs = FileSystem()
    context = f"fault {os.strerror(error) if error else 'short write'} at op {fail_at}"
    context += " onwards" if persistent else ""
    assert open_fds() == fds, f"{context}: file descriptors leaked"
    if path.exists():
        await check_reopen(path, outcome, context)
    await asyncio.sleep(0)
    assert threading.active_count() <= threads + 2, f"{context}: threads left running"
    return fs


@pytest.mark.parametrize("durability", ["flush", "fsync"])
@pytest.mark.parametrize(
    ("error", "persistent"),
    [(errno.EIO, False), (errno.EIO, True), (errno.ENOSPC, False), (0, False)],
    ids=["eio-once", "eio-persistent", "enospc-once", "short-write"],
)
async def test_every_operation_failing_keeps_acknowledged_data(
    tmp_path: Path,
    faulty: list[FaultyFileSystem],
    error: int,
    persistent: bool,
    durability: str,
) -> None:
    clean = await run_with_fault(tmp_path / "clean", faulty, 0, error, persistent, durability)
    total = clean.count
    assert total > 80  # the workload really opens, writes, rolls, compacts and closes
    injected = 0
    for fail_at in range(1, total + 1):
        fs = await run_with_fault(tmp_path, faulty, fail_at, error, persistent, durability)
        injected += fs.injected
    print(f"\n{total} file operations failed in turn, {injected} faults injected")
    assert injected >= total

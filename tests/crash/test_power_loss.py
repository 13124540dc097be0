"""A power loss after any file operation leaves a store that opens and holds an acknowledged
state: every create and delete acknowledged (``durability="fsync"``) before the loss, and at
most the one operation in flight on top.

The workload (creates of varied sizes rolling over small segments, deletes, a compaction, more
creates, re-creates of deleted keys, a clean close) runs once through a recording file system
installed at the store's seam (``system.files.fs``), which logs every mutating operation with
what is needed to replay it. The replay then stops after each operation in turn and builds the
states a power loss there could leave on disk, materialises each as a real directory and opens
it with :class:`aiokv.AsyncDataStore`.

The crash model, after the POSIX guarantees and the "abstract persistence model" of the ALICE
study (Pillai et al., "All File Systems Are Not Created Equal", OSDI 2014):

- a file's content is durable up to its last ``fsync``; what was written (or truncated) since
  is volatile, and may be lost, kept in part, or read back as zeros or garbage of the same
  length (blocks allocated but never written);
- a directory entry made or removed by ``create``, ``rename`` or ``unlink`` is durable only
  once its directory has been fsynced since: ``fsync`` on a file persists its data, not its
  name, and ALICE found the missing directory fsync after creating or renaming a file to be
  the most common crash bug of the applications it studied. A volatile create may be undone
  (the file is absent), a volatile unlink undone (the file is back with its durable content),
  a volatile rename undone (the old name holds the file, the new name what it held before).
  Each volatile directory operation is kept or undone on its own.

Per operation, the states checked are: only what is durable; everything (what a killed
process leaves); and random mixtures of the above from a seeded generator, deduplicated.

A torn, zeroed or garbage tail is only possible in a segment with unsynced writes; the store
fsyncs a log segment before it creates the next one, so that only the newest log segment can
have one, and recovery reports a bad record anywhere else as corruption. The replay checks the
first part against the recording at every operation (it is what makes ``CorruptionError`` on
any modelled state a failure).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _internals import (
    FILE_LOG,
    MIN_SEGMENT_MAX_BYTES,
    BadRecord,
    FileSystem,
    decode_file_header,
    parse_segment_name,
)
from _internals import files as _files

from aiokv import AsyncDataStore, KeyNotFoundError

pytestmark = pytest.mark.slow

Value = dict[str, Any]
Model = dict[str, Value]

SEED = 2024
"""Seeds the damaged states: the states of crash point ``i`` come from ``Random(f"{SEED}:{i}")``."""

# The workload: value sizes cycle through these, from tiny to near the 16 KiB limit, so that
# the ~33 KiB segments roll over every few records.
SIZES = (40, 3_000, 120, 9_000, 700, 15_000, 1, 5_000, 250, 12_000, 60, 2_000)
FIRST_CREATES = 40
LATER_CREATES = 15
RECREATED = (0, 3)  # deleted keys created again, with new values, after the compaction
KEYS = [f"k{n}" for n in range(FIRST_CREATES + LATER_CREATES)]

RANDOM_STATES = 12
"""Random mixtures per crash point at CI size, besides "durable only" and "everything"."""
MAX_POINTS = 400
"""Crash points replayed at CI size; a longer recording is sampled."""

TAILS = ("drop", "keep", "prefix", "zeros", "garbage", "prefix+zeros", "prefix+garbage")


@dataclass(frozen=True)
class FileOp:
    """One mutating file operation, as recorded. ``inode`` names the file it acts on (for
    ``syncdir``: none, 0); ``name`` the directory entry (for ``replace``: the source)."""

    kind: str  # create, write, fsync, truncate, replace, unlink, syncdir
    inode: int = 0
    name: str = ""
    offset: int = 0
    data: bytes = b""
    size: int = 0  # truncate: the new size
    target: str = ""  # replace: the new name

    def __str__(self) -> str:
        if self.kind == "write":
            return f"write {self.name} @{self.offset} +{len(self.data)}"
        if self.kind == "replace":
            return f"replace {self.name} -> {self.target}"
        if self.kind == "truncate":
            return f"truncate {self.name} to {self.size}"
        return f"{self.kind} {self.name}".rstrip()


@dataclass
class Recording:
    """The operations in order, and each acknowledgement: (its position, the model then)."""

    ops: list[FileOp] = field(default_factory=list)
    acks: list[tuple[int, Model]] = field(default_factory=list)


class Recorder(FileSystem):
    """The real file system, logging every mutating operation on the store's directory.

    Files are tracked as inodes (a name can be renamed over, a descriptor outlives a rename),
    and descriptors mapped to them. Operations are logged after they succeed, under a lock:
    the store calls the seam from the event loop and from worker threads.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.recording = Recording()
        self._names: dict[str, int] = {}  # directory entry -> inode
        self._fds: dict[int, int] = {}  # descriptor -> inode
        self._inodes = 0
        self._lock = threading.Lock()

    def _log(self, op: FileOp) -> None:
        self.recording.ops.append(op)

    def _name(self, path: Path) -> str:
        assert path.parent == self.directory, f"a file outside the store: {path}"
        return path.name

    def _inode_name(self, inode: int) -> str:
        return next((n for n, i in self._names.items() if i == inode), f"<inode {inode}>")

    def acknowledge(self, model: Model) -> None:
        with self._lock:
            self.recording.acks.append((len(self.recording.ops), dict(model)))

    def create(self, path: Path) -> int:
        with self._lock:
            fd = super().create(path)
            self._inodes += 1
            self._names[self._name(path)] = self._fds[fd] = self._inodes
            self._log(FileOp("create", self._inodes, path.name))
            return fd

    def open(self, path: Path) -> int:
        with self._lock:
            fd = super().open(path)
            self._fds[fd] = self._names[self._name(path)]
            return fd

    def write(self, fd: int, data: bytes | bytearray | memoryview) -> int:
        with self._lock:
            offset = super().size(fd)  # O_APPEND: the write lands at the end
            written = super().write(fd, data)
            inode = self._fds[fd]
            chunk = bytes(memoryview(data)[:written])
            self._log(FileOp("write", inode, self._inode_name(inode), offset, chunk))
            return written

    def fsync(self, fd: int) -> None:
        with self._lock:
            super().fsync(fd)
            inode = self._fds[fd]
            self._log(FileOp("fsync", inode, self._inode_name(inode)))

    def truncate(self, fd: int, size: int) -> None:
        with self._lock:
            super().truncate(fd, size)
            inode = self._fds[fd]
            self._log(FileOp("truncate", inode, self._inode_name(inode), size=size))

    def close(self, fd: int) -> None:
        with self._lock:
            super().close(fd)
            del self._fds[fd]

    def replace(self, source: Path, target: Path) -> None:
        with self._lock:
            super().replace(source, target)
            inode = self._names.pop(self._name(source))
            self._names[self._name(target)] = inode
            self._log(FileOp("replace", inode, source.name, target=target.name))

    def unlink(self, path: Path) -> None:
        with self._lock:
            super().unlink(path)
            inode = self._names.pop(self._name(path))
            self._log(FileOp("unlink", inode, path.name))

    def sync_directory(self, path: Path) -> None:
        with self._lock:
            super().sync_directory(path)
            if path == self.directory:
                self._log(FileOp("syncdir"))


def value_for(n: int, version: int = 0) -> Value:
    return {"n": n, "v": version, "pad": "v" * SIZES[(n + version) % len(SIZES)]}


def open_store(directory: Path) -> AsyncDataStore:
    return AsyncDataStore(
        directory,
        durability="fsync",
        segment_max_bytes=MIN_SEGMENT_MAX_BYTES,
        compact_dead_ratio=None,
    )


async def run_workload(directory: Path, recorder: Recorder) -> None:
    """Creates, deletes, a compaction, creates again and a clean close; every acknowledged
    operation is marked in the recording with the model after it."""
    model: Model = {}
    store = open_store(directory)
    await store.open()
    try:

        async def create(key: str, value: Value) -> None:
            await store.create(key, value)
            model[key] = value
            recorder.acknowledge(model)

        async def delete(key: str) -> None:
            await store.delete(key)
            del model[key]
            recorder.acknowledge(model)

        for n in range(FIRST_CREATES):
            await create(f"k{n}", value_for(n))
        for n in range(0, FIRST_CREATES, 3):
            await delete(f"k{n}")
        assert await store.compact() > 0
        for n in range(FIRST_CREATES, FIRST_CREATES + LATER_CREATES):
            await create(f"k{n}", value_for(n))
            if n % 5 == 0:
                await delete(f"k{n - 2}")
        for n in RECREATED:
            await create(f"k{n}", value_for(n, version=1))
    finally:
        await store.close()


@pytest.fixture
async def recording(tmp_path: Path) -> Recording:
    """The workload's file operations; the real file system is back in place afterwards."""
    directory = tmp_path / "store"
    directory.mkdir()
    real = _files.fs
    recorder = Recorder(directory)
    _files.fs = recorder
    try:
        await run_workload(directory, recorder)
    finally:
        _files.fs = real
    return recorder.recording


@dataclass
class Inode:
    current: bytearray = field(default_factory=bytearray)
    durable: bytes = b""  # the content at the last fsync


class Disk:
    """The file system's state after a prefix of the recording: what the running system saw
    (``names`` and each inode's ``current``) and what is durable (``durable_names``, each
    inode's ``durable``), with the directory operations made since the last directory fsync."""

    def __init__(self) -> None:
        self.inodes: dict[int, Inode] = {}
        self.names: dict[str, int] = {}
        self.durable_names: dict[str, int] = {}
        self.pending: list[FileOp] = []

    def apply(self, op: FileOp) -> None:
        if op.kind == "create":
            self.inodes[op.inode] = Inode()
            self.names[op.name] = op.inode
            self.pending.append(op)
        elif op.kind == "write":
            content = self.inodes[op.inode].current
            if len(content) < op.offset:
                content.extend(bytes(op.offset - len(content)))
            content[op.offset : op.offset + len(op.data)] = op.data
        elif op.kind == "fsync":
            inode = self.inodes[op.inode]
            inode.durable = bytes(inode.current)
        elif op.kind == "truncate":
            content = self.inodes[op.inode].current
            del content[op.size :]
            content.extend(bytes(op.size - len(content)))
        elif op.kind == "replace":
            del self.names[op.name]
            self.names[op.target] = op.inode
            self.pending.append(op)
        elif op.kind == "unlink":
            del self.names[op.name]
            self.pending.append(op)
        else:
            assert op.kind == "syncdir", op
            self.durable_names = dict(self.names)
            self.pending.clear()

    def volatile(self, inode: int) -> bool:
        entry = self.inodes[inode]
        return bytes(entry.current) != entry.durable

    def check_only_newest_log_volatile(self, context: str) -> None:
        """Only the newest log segment may have unsynced bytes under a segment name.

        What makes a torn tail anywhere else impossible, and a bad record there corruption.
        """
        logs = []
        for name, inode in self.names.items():
            segment_id = parse_segment_name(name)
            if segment_id is None:
                continue
            try:
                header = decode_file_header(bytes(self.inodes[inode].current))
            except BadRecord:
                logs.append(segment_id)  # a segment whose header is being written
                continue
            if header.kind == FILE_LOG:
                logs.append(segment_id)
        for names in (self.names, self.durable_names):
            for name, inode in names.items():
                segment_id = parse_segment_name(name)
                if segment_id is not None and self.volatile(inode):
                    newest = max(logs, default=-1)
                    assert segment_id == newest, (
                        f"{context}: {name} has unsynced bytes, but {newest:08d}.data "
                        "is the newest log segment: it was not fsynced before the next one"
                    )


@dataclass
class State:
    """One damaged directory: file name -> content, and how it was made."""

    files: dict[str, bytes]
    how: list[str]

    def key(self) -> tuple[tuple[str, bytes], ...]:
        return tuple(
            sorted((name, hashlib.blake2b(data).digest()) for name, data in self.files.items())
        )


def damaged_tail(inode: Inode, choice: str, rng: random.Random) -> tuple[bytes, str]:
    durable, current = inode.durable, bytes(inode.current)
    if not current.startswith(durable):  # cut short after its last fsync: one or the other
        return (durable, "drop") if choice == "drop" else (current, "keep")
    tail = current[len(durable) :]
    kept = rng.randint(0, len(tail))
    rest = len(tail) - kept
    contents = {
        "drop": durable,
        "keep": current,
        "prefix": durable + tail[:kept],
        "zeros": durable + bytes(len(tail)),
        "garbage": durable + rng.randbytes(len(tail)),
        "prefix+zeros": durable + tail[:kept] + bytes(rest),
        "prefix+garbage": durable + tail[:kept] + rng.randbytes(rest),
    }
    data = contents[choice]
    return data, f"{choice} ({len(durable)} durable + {len(data) - len(durable)} of {len(tail)})"


def damaged_state(disk: Disk, mode: str, rng: random.Random) -> State:
    """``mode``: "durable" (only what is durable), "everything", or "random"."""
    how: list[str] = []
    if mode == "everything":
        names = dict(disk.names)
    else:
        names = dict(disk.durable_names)
        for op in disk.pending:
            if mode == "durable" or rng.random() < 0.5:
                how.append(f"undone: {op}")
                continue
            if op.kind == "create":
                names[op.name] = op.inode
            elif op.kind == "replace":
                if names.get(op.name) == op.inode:
                    del names[op.name]
                names[op.target] = op.inode
            elif names.get(op.name) == op.inode:  # unlink
                del names[op.name]
    files = {}
    for name, inode in names.items():
        entry = disk.inodes[inode]
        if not disk.volatile(inode):
            files[name] = entry.durable
            continue
        choice = {"durable": "drop", "everything": "keep"}.get(mode) or rng.choice(TAILS)
        files[name], described = damaged_tail(entry, choice, rng)
        how.append(f"{name}: {described}")
    return State(files, how)


def materialise(state: State, directory: Path) -> None:
    """Write the state's files into a fresh ``directory``. No LOCK file: the lock library
    makes its own, outside the seam, and a lock file holds nothing a crash could damage."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir()
    for name, data in state.files.items():
        (directory / name).write_bytes(data)


async def read_all(directory: Path) -> Model:
    found: Model = {}
    async with open_store(directory) as store:
        for key in KEYS:
            with contextlib.suppress(KeyNotFoundError):
                found[key] = await store.read(key)
    return found


def describe(model: Model) -> str:
    return "{" + ", ".join(f"{k}: v{v.get('v')}" for k, v in sorted(model.items())) + "}"


async def check_state(
    state: State, directory: Path, allowed: list[tuple[int, Model]], context: str
) -> str | None:
    """Open the damaged state; return why it fails, or None."""
    materialise(state, directory)
    try:
        found = await read_all(directory)
    except Exception as exc:
        error = f"open or read raised {exc!r}"
    else:
        if any(found == model for _k, model in allowed):
            return None
        error = (
            f"the store holds {describe(found)}, no acknowledged state allowed here "
            f"(acks #{', #'.join(str(k) for k, _m in allowed)}: "
            + "; ".join(describe(model) for _k, model in allowed)
            + ")"
        )
    files = ", ".join(f"{name} ({len(data)} B)" for name, data in sorted(state.files.items()))
    return f"{context}: {error}\n    files: {files}\n    damage: {'; '.join(state.how) or 'none'}"


def crash_points(count: int, soak: int) -> Iterator[int]:
    """Every crash point (after 0 .. count operations), or a sample of a long recording."""
    points = range(count + 1)
    budget = MAX_POINTS * soak
    if len(points) <= budget:
        yield from points
    else:
        yield from sorted(random.Random(f"{SEED}:points").sample(points, budget))


async def test_power_loss_after_any_operation_keeps_an_acknowledged_state(
    recording: Recording, tmp_path: Path, soak: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Every modelled power-loss state after every operation opens (no ``CorruptionError``)
    and holds the model of an acknowledgement made before the loss, or of the one in flight."""
    caplog.set_level(logging.ERROR, logger="aiokv")  # a torn tail cut off per state is expected
    ops, acks = recording.ops, recording.acks
    kinds = {op.kind for op in ops}
    # The workload did what it is for: rolled over segments, wrote hints, compacted.
    assert {"create", "write", "fsync", "replace", "unlink", "syncdir"} <= kinds
    assert sum(op.kind == "syncdir" for op in ops) > 5
    deletes = len(range(0, FIRST_CREATES, 3)) + LATER_CREATES // 5
    assert len(acks) == FIRST_CREATES + LATER_CREATES + len(RECREATED) + deletes
    models = [{}, *(model for _position, model in acks)]
    positions = [position for position, _model in acks]

    disk = Disk()
    applied = 0
    seen: set[tuple[int, tuple[tuple[str, bytes], ...]]] = set()
    checked = 0
    failures: list[str] = []
    directory = tmp_path / "crashed"
    for point in crash_points(len(ops), soak):
        while applied < point:
            disk.apply(ops[applied])
            applied += 1
        last = f"after op {point - 1} ({ops[point - 1]})" if point else "before any op"
        context = f"seed {SEED}, i={point} ({last})"
        disk.check_only_newest_log_volatile(context)
        # Every acknowledgement so far came after its fsync: the store must hold the state of
        # the last one, or of the one operation in flight (the workload awaits each in turn).
        done = sum(position <= point for position in positions)
        allowed = [(k, models[k]) for k in (done, done + 1) if k < len(models)]
        rng = random.Random(f"{SEED}:{point}")
        modes = ["durable", "everything"] + ["random"] * (RANDOM_STATES * soak)
        for number, mode in enumerate(modes):
            state = damaged_state(disk, mode, rng)
            key = (done, state.key())
            if key in seen:
                continue
            seen.add(key)
            checked += 1
            failure = await check_state(
                state, directory, allowed, f"{context}, state {number} ({mode})"
            )
            if failure is not None:
                failures.append(failure)
    shutil.rmtree(directory, ignore_errors=True)
    print(f"{len(ops)} operations recorded, {len(acks)} acknowledged, {checked} states checked")
    assert not failures, f"{len(failures)} of {checked} states failed:\n" + "\n".join(failures[:10])
    assert checked >= 2 * len(ops)

"""A process killed (SIGKILL) at any point of a compaction step loses nothing and leaves no
half-made file: the next open sees exactly the state before the compaction."""

from __future__ import annotations

import json
import os
import random
import signal
from pathlib import Path
from typing import Any

import pytest
from _fs import dir_bytes
from _internals import (
    FILE_COMPACTED,
    FILE_HEADER_SIZE,
    FILE_LOG,
    KIND_PUT,
    decode,
    decode_file_header,
)
from _proc import start_child

from aiokv import DataStore, KeyNotFoundError, ManualClock

pytestmark = pytest.mark.slow

CAP = 2**20
HEADER = 28
CREATED_AT = 1_700_000_000.0
COMPACTED_AT = CREATED_AT + 100  # the short TTLs have run out, the long ones have not

# The child compacts a store the parent made, and kills itself at one point of a step:
# ``func`` is the call it wraps, ``when`` "before" or "after" the real call, ``nth`` which
# matching call. Only the calls compaction makes are matched: the compaction output's
# rename (``*.data.tmp``; ``replace_any``: of any temporary file, such as a hint) and fsync
# (once it holds records), the unlink of a source data file, and every directory fsync
# (nothing else writes meanwhile).
COMPACTOR = """
    import asyncio
    import os
    import signal
    import sys

    import aiokv._bitcask.system.files
    from aiokv import AsyncDataStore, ManualClock
    from aiokv._bitcask.format.record import FILE_HEADER_SIZE

    path, now, func, when, nth = sys.argv[1:6]
    now, nth = float(now), int(nth)
    calls = 0


    def die():
        print(f"crash {func} {when} {nth}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


    def wrap(real, matches):
        def wrapper(*args, **kwargs):
            global calls
            hit = False
            if matches(*args):
                calls += 1
                hit = calls == nth
            if hit and when == "before":
                die()
            result = real(*args, **kwargs)
            if hit and when == "after":
                die()
            return result

        return wrapper


    def is_output(fd):
        # The compaction output: a temporary data file that holds records.
        held = os.fstat(fd)
        if held.st_size <= FILE_HEADER_SIZE:
            return False
        for name in os.listdir(path):
            if name.endswith(".data.tmp"):
                other = os.stat(os.path.join(path, name))
                if (other.st_dev, other.st_ino) == (held.st_dev, held.st_ino):
                    return True
        return False


    def is_data_file(file):
        name = file.name
        return name.endswith(".data") and name[:8].isdigit() and len(name) == 13


    def arm():
        # Wrapped at the store's file-system seam: every file operation goes through it.
        fs = aiokv._bitcask.system.files.fs
        if func == "replace":
            fs.replace = wrap(fs.replace, lambda src, dst: str(src).endswith(".data.tmp"))
        elif func == "replace_any":
            fs.replace = wrap(fs.replace, lambda src, dst: str(src).endswith(".tmp"))
        elif func == "fsync":
            fs.fsync = wrap(fs.fsync, is_output)
        elif func == "unlink":
            fs.unlink = wrap(fs.unlink, is_data_file)
        elif func == "sync_directory":
            fs.sync_directory = wrap(fs.sync_directory, lambda path: True)
        else:
            raise SystemExit(f"unknown crash point {func}")


    async def main():
        store = AsyncDataStore(
            path, max_size=2**20, compact_dead_ratio=None, clock=ManualClock(now)
        )
        await store.open()
        print("open", flush=True)
        arm()
        reclaimed = await store.compact()
        print(f"compacted {reclaimed}", flush=True)
        await store.close()


    asyncio.run(main())
"""


def encoded(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def blob(size: int, tag: object) -> dict[str, Any]:
    value: dict[str, Any] = {"t": tag, "p": ""}
    value["p"] = "x" * (size - len(encoded(value)))
    return value


def put_size(key: str, value: dict[str, Any]) -> int:
    return HEADER + len(key.encode()) + len(encoded(value))


def open_store(path: Path) -> DataStore:
    return DataStore(path, max_size=CAP, compact_dead_ratio=None, clock=ManualClock(COMPACTED_AT))


def prepare(path: Path) -> dict[str, dict[str, Any] | None]:
    """A store of many segments with dead records, tombstones and TTLs; key -> expected value
    (None: deleted or expired) once the clock reads COMPACTED_AT."""
    rng = random.Random(5)
    expected: dict[str, dict[str, Any] | None] = {}
    deleted: list[str] = []
    with DataStore(
        path, max_size=CAP, compact_dead_ratio=None, clock=ManualClock(CREATED_AT)
    ) as store:
        for i in range(360):
            key = f"k{i:03d}"
            value = blob(rng.randrange(400, 3000), i)
            if i % 11 == 0:
                store.create(key, value, ttl=5)
                expected[key] = None
            elif i % 13 == 0:
                store.create(key, value, ttl=10**6)
                expected[key] = value
            else:
                store.create(key, value)
                expected[key] = value
            if i % 3 == 0 and i >= 3:
                victim = f"k{i - 3:03d}"
                store.delete(victim)
                expected[victim] = None
                deleted.append(victim)
            if i % 25 == 24:  # a deleted key comes back
                again = deleted.pop(0)
                expected[again] = blob(rng.randrange(400, 3000), f"again{i}")
                store.create(again, expected[again])
    kinds = [head.kind for head in headers(path).values()]
    assert len(kinds) >= 8
    assert set(kinds) == {FILE_LOG}, "nothing was compacted yet"
    return expected


def headers(path: Path) -> dict[int, Any]:
    found = {}
    for name in os.listdir(path):
        if name.endswith(".data") and name[:8].isdigit():
            with open(path / name, "rb") as file:
                found[int(name[:8])] = decode_file_header(file.read(FILE_HEADER_SIZE))
    return found


def sealed_puts(path: Path) -> list[str]:
    """The keys of every put in a data file other than the active (newest log) one."""
    heads = headers(path)
    active = max(i for i, head in heads.items() if head.kind == FILE_LOG)
    keys = []
    for segment_id in heads:
        if segment_id == active:
            continue
        data = (path / f"{segment_id:08d}.data").read_bytes()
        offset = FILE_HEADER_SIZE
        while offset < len(data):
            record = decode(data, offset)
            if record.kind == KIND_PUT:
                keys.append(record.key.decode())
            offset += record.size
    return keys


def check(store: DataStore, path: Path, expected: dict[str, dict[str, Any] | None]) -> None:
    live = {key: value for key, value in expected.items() if value is not None}
    for key, value in expected.items():
        if value is None:
            with pytest.raises(KeyNotFoundError):
                store.read(key)
        else:
            assert store.read(key) == value, key
    stats = store.stats()
    assert stats.live_keys == len(live)
    assert stats.live_bytes == sum(put_size(key, value) for key, value in live.items())
    assert stats.disk_bytes == dir_bytes(path) <= CAP


# (function, before/after, which call, what the crash must have left behind)
CRASH_POINTS = [
    ("fsync", "before", 1, "temporary output"),
    ("replace", "before", 1, "temporary output"),
    ("replace", "after", 1, "source and output"),
    ("replace_any", "before", 2, "temporary file"),
    ("sync_directory", "after", 1, "source and output"),
    ("unlink", "before", 1, "source and output"),
    ("unlink", "after", 1, None),
    ("sync_directory", "after", 2, None),
    ("fsync", "before", 3, "temporary output"),
    ("replace", "after", 3, "source and output"),
    ("unlink", "before", 3, "source and output"),
]


@pytest.mark.parametrize(
    ("func", "when", "nth", "leftover"),
    CRASH_POINTS,
    ids=[f"{func}-{when}-{nth}" for func, when, nth, _ in CRASH_POINTS],
)
def test_crash_in_a_compaction_step_keeps_the_state(
    tmp_path: Path, func: str, when: str, nth: int, leftover: str | None
) -> None:
    path = tmp_path / "store"
    expected = prepare(path)
    before = headers(path)
    with start_child(COMPACTOR, path, COMPACTED_AT, func, when, nth, workdir=tmp_path) as child:
        child.expect_line("open", timeout=30)
        child.expect_line(f"crash {func} {when} {nth}", timeout=30)
        assert child.wait() == -signal.SIGKILL

    # The crash landed where it was meant to.
    names = os.listdir(path)
    after = headers(path)
    if leftover == "temporary output":
        assert any(name.endswith(".data.tmp") for name in names), names
    elif leftover == "temporary file":
        assert any(name.endswith(".tmp") for name in names), names
    elif leftover == "source and output":
        assert any(
            head.kind == FILE_COMPACTED and head.source in after for head in after.values()
        ), names
    assert len(after) >= len(before) - nth
    assert dir_bytes(path) <= CAP

    live = [key for key, value in expected.items() if value is not None]
    with open_store(path) as store:
        leftovers = [name for name in os.listdir(path) if name.endswith(".tmp")]
        assert not leftovers, f"left after open: {leftovers}"
        check(store, path, expected)
        assert store.compact() > 0
        check(store, path, expected)
        puts = sealed_puts(path)
        assert sorted(set(puts)) == sorted(set(puts) & set(live)), "a dead put was kept"
        assert len(puts) == len(set(puts)), "a live key's record was kept twice"
    with open_store(path) as store:
        check(store, path, expected)

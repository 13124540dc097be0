"""A process that dies at any named step of writing, rolling over, compacting or closing
reopens to exactly what it had acknowledged, with nothing half-made left behind.

Each case runs a child with ``AIOKV_KILL_POINT`` armed; the child ends with ``os._exit`` at
that step (no cleanup runs, as in a crash). The exit code proves the step was reached.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from _fs import dir_bytes
from _internals import KILL_EXIT_CODE, MIN_SEGMENT_MAX_BYTES
from _proc import start_child

import aiokv
from aiokv import AsyncDataStore, DataStore, KeyNotFoundError, ManualClock

pytestmark = pytest.mark.slow

MAX_SIZE = 2**21

# Prints "begin <op> <key>" before each operation and "ok" once it is acknowledged, so the
# parent knows the one operation in flight when the process died.
CHILD = """
    import asyncio
    import json
    import os
    import sys

    path, point, durability, segment_bytes, max_size = sys.argv[1:6]
    os.environ["AIOKV_KILL_POINT"] = point  # read when aiokv is imported

    from aiokv import AsyncDataStore


    def value_for(i):
        return {"i": i, "pad": "v" * (i * 53 % 700)}


    async def main():
        store = AsyncDataStore(
            path,
            durability=durability,
            segment_max_bytes=int(segment_bytes),
            max_size=int(max_size),
            compact_dead_ratio=None,
        )
        await store.open()
        for i in range(150):
            key = f"k{i}"
            print("begin create", key, json.dumps(value_for(i)), flush=True)
            await store.create(key, value_for(i))
            print("ok", flush=True)
        for i in range(0, 150, 2):
            print("begin delete", f"k{i}", flush=True)
            await store.delete(f"k{i}")
            print("ok", flush=True)
        print("begin compact", flush=True)
        await store.compact()
        print("ok", flush=True)
        print("begin close", flush=True)
        await store.close()
        print("ok", flush=True)


    asyncio.run(main())
"""

POINTS = [
    ("write.before", "flush", 1),
    ("write.before", "flush", 40),
    ("write.written", "flush", 7),
    ("write.written", "fsync", 60),
    ("write.synced", "fsync", 1),
    ("write.synced", "fsync", 90),
    ("roll.sealed", "flush", 1),
    ("roll.hint_written", "flush", 1),
    ("roll.hint_written", "fsync", 2),
    ("roll.created", "flush", 1),
    ("roll.created", "fsync", 2),
    ("roll.dir_synced", "flush", 1),
    ("compact.written", "flush", 1),
    ("compact.synced", "flush", 1),
    ("compact.published", "flush", 1),
    ("compact.published", "fsync", 2),
    ("compact.hint_written", "flush", 1),
    ("compact.dir_synced", "flush", 1),
    ("compact.switched", "flush", 1),
    ("compact.source_removed", "flush", 1),
    ("compact.source_removed", "fsync", 2),
    ("compact.hint_removed", "flush", 1),
    ("close.synced", "flush", 1),
    ("close.hint_written", "flush", 1),
]


def replay(lines: list[str]) -> tuple[dict[str, Any], tuple[str, ...] | None]:
    """The model after every acknowledged operation, and the one in flight (if any)."""
    model: dict[str, Any] = {}
    pending: tuple[str, ...] | None = None
    for line in lines:
        if line.startswith("begin "):
            assert pending is None, lines
            pending = tuple(line.split(" ", 3)[1:])
        elif line == "ok":
            assert pending is not None, lines
            if pending[0] == "create":
                model[pending[1]] = json.loads(pending[2])
            elif pending[0] == "delete":
                del model[pending[1]]
            pending = None
    return model, pending


async def contents(path: Path, keys: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    async with AsyncDataStore(path, max_size=MAX_SIZE, compact_dead_ratio=None) as store:
        for key in keys:
            with contextlib.suppress(KeyNotFoundError):
                found[key] = await store.read(key)
    return found


@pytest.mark.parametrize(("point", "durability", "nth"), POINTS)
async def test_death_at_a_kill_point_keeps_every_acknowledged_operation(
    tmp_path: Path, point: str, durability: str, nth: int
) -> None:
    path = tmp_path / "store"
    args = (path, f"{point}:{nth}", durability, MIN_SEGMENT_MAX_BYTES, MAX_SIZE)
    with start_child(CHILD, *args, workdir=tmp_path) as child:
        lines = child.rest_lines(timeout=60)
        status = child.wait()
        stderr = child.stderr_text()
    assert status == KILL_EXIT_CODE, f"the point was never reached: {status}\n{stderr}"
    assert f"aiokv: kill point {point}" in stderr
    model, pending = replay(lines)
    keys = [f"k{i}" for i in range(150)]
    found = await contents(path, keys)
    if pending is not None and pending[0] in ("create", "delete"):
        # The operation in flight is all there or not at all.
        after = dict(model)
        if pending[0] == "create":
            after[pending[1]] = json.loads(pending[2])
        else:
            after.pop(pending[1], None)
        assert found in (model, after), (point, pending, sorted(set(found) ^ set(model)))
    else:
        assert found == model, (point, pending, sorted(set(found) ^ set(model)))
    leftovers = [name for name in os.listdir(path) if name.endswith(".tmp")]
    assert leftovers == [], leftovers
    assert dir_bytes(path) <= MAX_SIZE
    # Recovery is done once: a second open finds the same directory and the same data.
    names = sorted(os.listdir(path))
    assert await contents(path, keys) == found
    assert sorted(os.listdir(path)) == names


def test_every_kill_point_in_the_code_is_exercised() -> None:
    """A new kill point must get a case here; a renamed one must not leave a dead case."""
    package = Path(aiokv.__file__).parent
    named = set()
    for source in package.rglob("*.py"):
        named |= set(re.findall(r'kill_point\("([a-z_.]+)"\)', source.read_text("utf-8")))
    assert named == {point for point, _durability, _nth in POINTS} | ELSEWHERE


ELSEWHERE = {"backup.held", "backup.copied"}
"""Kill points exercised by other modules' tests (tests/api/test_backup.py)."""


SECOND_COMPACTION = """
    import os
    import sys

    os.environ["AIOKV_KILL_POINT"] = "compact.switched"

    from aiokv import DataStore
    from aiokv._bitcask.options import MIN_SEGMENT_MAX_BYTES

    store = DataStore(sys.argv[1], segment_max_bytes=MIN_SEGMENT_MAX_BYTES, compact_dead_ratio=None)
    store.compact()
"""


def test_a_source_left_by_a_crash_is_not_compacted_twice(tmp_path: Path) -> None:
    """A crash after a compacted copy is published but before its source is removed leaves
    both. Compacting the source again made a second, overlapping copy holding an old
    tombstone, and the next open let it hide the newer put of the same key."""
    path = tmp_path / "store"
    options: dict[str, Any] = {
        "segment_max_bytes": MIN_SEGMENT_MAX_BYTES,
        "compact_dead_ratio": None,
    }

    def big(i: int) -> dict[str, Any]:
        return {"i": i, "pad": "p" * 3000}

    with DataStore(path, **options) as store:
        store.create("x", {"v": 1})
        for i in range(11):
            store.create(f"a{i}", big(i))  # fills segment 1
        store.delete("x")  # segment 2: a tombstone naming segment 1
        store.create("x", {"v": 2})  # segment 2: the live put
        for i in range(9):
            store.create(f"d{i}", big(i))
        for i in range(9):
            store.delete(f"d{i}")  # segment 2 is mostly dead: compacted first
        for i in range(10):
            store.create(f"b{i}", big(i))
    with start_child(SECOND_COMPACTION, path, workdir=tmp_path) as child:
        assert child.wait() == KILL_EXIT_CODE, child.stderr_text()
    with DataStore(path, **options) as store:
        assert store.read("x") == {"v": 2}
        store.compact()
        assert store.read("x") == {"v": 2}
    with DataStore(path, **options) as store:
        assert store.read("x") == {"v": 2}


TOUCH_CHILD = """
    import asyncio
    import os
    import sys

    path, point, durability = sys.argv[1:4]
    os.environ["AIOKV_KILL_POINT"] = point

    from aiokv import AsyncDataStore


    async def main():
        store = AsyncDataStore(path, durability=durability, compact_dead_ratio=None)
        await store.open()
        for i in range(20):
            await store.create(f"t{i}", {"i": i, "pad": "x" * 300}, ttl=1000)
        print("created", flush=True)
        for i in range(20):
            print("begin touch", f"t{i}", flush=True)
            await store.touch(f"t{i}", 100_000)
            print("ok", flush=True)


    asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("point", "durability", "nth"),
    [
        ("write.before", "flush", 21),
        ("write.before", "flush", 30),
        ("write.written", "flush", 25),
        ("write.synced", "fsync", 27),
    ],
)
async def test_death_during_touches_keeps_the_old_or_the_new_deadline(
    tmp_path: Path, point: str, durability: str, nth: int
) -> None:
    path = tmp_path / "store"
    with start_child(TOUCH_CHILD, path, f"{point}:{nth}", durability, workdir=tmp_path) as child:
        lines = child.rest_lines(timeout=60)
        status = child.wait()
        stderr = child.stderr_text()
    assert status == KILL_EXIT_CODE, f"the point was never reached: {status}\n{stderr}"
    assert "created" in lines
    touched = {lines[n].split()[2] for n in range(1, len(lines) - 1) if lines[n + 1] == "ok"}
    in_flight = lines[-1].split()[2] if lines[-1].startswith("begin") else None
    keys = [f"t{i}" for i in range(20)]
    value = {f"t{i}": {"i": i, "pad": "x" * 300} for i in range(20)}
    now = time.time()
    # Every key is there now, its value whole: a touch never loses a key.
    assert await contents(path, keys) == value
    # Past the old deadline, only the touched keys are left (and perhaps the one in flight).
    later = ManualClock(now + 5000)
    async with AsyncDataStore(path, clock=later, compact_dead_ratio=None) as store:
        alive = set((await store.read_many(keys)).keys())
    assert touched <= alive <= touched | {in_flight}, (sorted(touched), sorted(alive))


BATCH_CHILD = """
    import asyncio
    import os
    import sys

    path, point, durability, segment_bytes = sys.argv[1:5]
    os.environ["AIOKV_KILL_POINT"] = point

    from aiokv import AsyncDataStore


    async def main():
        store = AsyncDataStore(
            path,
            durability=durability,
            segment_max_bytes=int(segment_bytes),
            compact_dead_ratio=None,
        )
        await store.open()
        for b in range(12):
            print("begin create_many", b, flush=True)
            await store.create_many(
                {f"b{b}-{i}": {"b": b, "i": i, "pad": "x" * (b * 97 % 900)} for i in range(10)}
            )
            print("ok", flush=True)
        for b in range(0, 12, 3):
            print("begin delete_many", b, flush=True)
            await store.delete_many([f"b{b}-{i}" for i in range(10)])
            print("ok", flush=True)


    asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("point", "durability", "nth"),
    [
        ("write.before", "flush", 5),
        ("write.written", "flush", 8),
        ("write.synced", "fsync", 3),
        ("write.before", "flush", 14),  # a delete_many
        ("write.written", "fsync", 15),
        ("roll.sealed", "flush", 1),
        ("roll.created", "flush", 1),
        ("roll.dir_synced", "fsync", 1),
    ],
)
async def test_death_during_batches_keeps_each_batch_whole_or_out(
    tmp_path: Path, point: str, durability: str, nth: int
) -> None:
    path = tmp_path / "store"
    args = (path, f"{point}:{nth}", durability, MIN_SEGMENT_MAX_BYTES)
    with start_child(BATCH_CHILD, *args, workdir=tmp_path) as child:
        lines = child.rest_lines(timeout=60)
        status = child.wait()
        stderr = child.stderr_text()
    assert status == KILL_EXIT_CODE, f"the point was never reached: {status}\n{stderr}"
    keys = [f"b{b}-{i}" for b in range(12) for i in range(10)]
    async with AsyncDataStore(path, compact_dead_ratio=None) as store:
        found = await store.read_many(keys)
    acknowledged: dict[str, set[int]] = {"create_many": set(), "delete_many": set()}
    pending: tuple[str, int] | None = None
    for line in lines:
        if line.startswith("begin "):
            _begin, op, number = line.split()
            pending = (op, int(number))
        elif line == "ok" and pending is not None:
            acknowledged[pending[0]].add(pending[1])
            pending = None
    for b in range(12):
        present = {i for i in range(10) if f"b{b}-{i}" in found}
        assert present in (set(), set(range(10))), (b, sorted(present))  # whole or out
        created = b in acknowledged["create_many"]
        deleted = b in acknowledged["delete_many"]
        if pending in (("create_many", b), ("delete_many", b)):
            continue  # in flight: either outcome
        assert bool(present) == (created and not deleted), (b, created, deleted)

"""A writer killed with SIGKILL mid-stream loses nothing it had acknowledged."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from _proc import start_child

from aiokv import AsyncDataStore, KeyNotFoundError

pytestmark = pytest.mark.slow

ACKED_BEFORE_KILL = 300

WRITER = """
    import asyncio
    import sys
    import time

    from aiokv import AsyncDataStore, DataStoreError

    path, mode, durability = sys.argv[1], sys.argv[2], sys.argv[3]
    concurrent = mode.startswith("gather")
    deletes = mode.endswith("deletes")
    # A small store has small segments, so the stream crosses many segment boundaries.
    max_size = 2**21 if "rolling" in mode else 2**30


    def value_for(i):
        return {"i": i, "pad": "x" * (i * 37 % 3000)}


    async def main():
        # A safety net only: the parent kills the writer long before this.
        deadline = time.monotonic() + 20
        async with AsyncDataStore(path, durability=durability, max_size=max_size) as store:
            print("open", flush=True)

            async def one(i):
                await store.create(f"k{i}", value_for(i))
                print(f"C {i}", flush=True)
                if deletes and i % 3 == 0:
                    try:
                        await store.delete(f"k{i}")
                    except DataStoreError as exc:  # the create above was acknowledged
                        print(f"X {i} {type(exc).__name__}: {exc}", flush=True)
                    else:
                        print(f"D {i}", flush=True)

            i = 0
            while time.monotonic() < deadline:
                if concurrent:
                    await asyncio.gather(*(one(j) for j in range(i, i + 50)))
                    i += 50
                else:
                    await one(i)
                    i += 1
        print("finished", flush=True)


    asyncio.run(main())
"""


def segment_count(path: Path) -> int:
    return len(list(path.glob("*.data")))


def value_for(i: int) -> dict[str, Any]:
    return {"i": i, "pad": "x" * (i * 37 % 3000)}


@pytest.mark.parametrize(
    ("mode", "durability"),
    [
        ("sequential", "flush"),
        ("sequential-deletes", "flush"),
        ("gather", "flush"),
        ("gather-deletes", "flush"),
        ("gather-rolling-deletes", "flush"),
        ("sequential-deletes", "fsync"),
        ("gather", "fsync"),
    ],
)
async def test_acknowledged_writes_survive_sigkill(
    tmp_path: Path, store_path: Path, mode: str, durability: str
) -> None:
    created: set[int] = set()
    deleted: set[int] = set()

    def note(line: str) -> None:
        kind, number = line.split()[:2]
        assert kind in ("C", "D"), f"the writer could not delete a key it had created: {line}"
        (created if kind == "C" else deleted).add(int(number))

    with start_child(WRITER, store_path, mode, durability, workdir=tmp_path, name=mode) as child:
        child.expect_line("open")
        while len(created) < ACKED_BEFORE_KILL:
            line = child.read_line()
            assert line is not None, f"writer ended early; stderr:\n{child.stderr_text()}"
            assert line != "finished", "the writer finished before it could be killed"
            note(line)
        assert child.kill() == -signal.SIGKILL
        # Lines already in the pipe were printed after their operation returned: acknowledged.
        for line in child.rest_lines():
            note(line)

    assert deleted <= created
    deleting = mode.endswith("deletes")
    if deleting:
        assert deleted, "no delete was acknowledged"
    seen_up_to = max(created) + 200  # with a margin for writes in flight at the kill
    # A key whose create was acknowledged but whose delete was not may be either way.
    in_doubt = {i for i in created - deleted if deleting and i % 3 == 0}
    in_doubt |= {i for i in range(seen_up_to) if i not in created}
    kept = created - deleted - in_doubt
    assert len(kept) >= ACKED_BEFORE_KILL // 2
    max_size = 2**21 if "rolling" in mode else 2**30
    async with AsyncDataStore(store_path, max_size=max_size) as store:
        if "rolling" in mode:
            assert segment_count(store_path) >= 3
        for i in sorted(kept):
            assert await store.read(f"k{i}") == value_for(i), i
        for i in sorted(deleted):
            with pytest.raises(KeyNotFoundError):
                await store.read(f"k{i}")
        for i in sorted(in_doubt):
            try:
                value = await store.read(f"k{i}")
            except KeyNotFoundError:
                continue
            assert value == value_for(i), i
        # The reopened store goes on working where the dead writer stopped.
        await store.create("after-crash", {"ok": True})
        for i in sorted(kept)[:20]:
            await store.delete(f"k{i}")
    async with AsyncDataStore(store_path, max_size=max_size) as store:
        assert await store.read("after-crash") == {"ok": True}

"""``backup(dest)``: a copy of the running store, as of the call, that opens on its own.

Sealed segments are hard-linked on the same file system and copied across file systems (a
tmpfs mounted by the test, where it runs as root); a backup cut off by a crash never opens.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest
from _internals import KILL_EXIT_CODE, MIN_SEGMENT_MAX_BYTES, segments_of
from _proc import start_child
from _tmpfs import mounted_tmpfs

from aiokv import AsyncDataStore, DataStore, StoreFullError, StorePathError

OPTIONS: dict[str, Any] = {"segment_max_bytes": MIN_SEGMENT_MAX_BYTES, "compact_dead_ratio": None}


def value(i: int) -> dict[str, Any]:
    return {"i": i, "tags": ["x", "y"], "pad": "p" * 400}


async def filled(path: Path, count: int) -> AsyncDataStore:
    store = AsyncDataStore(path, **OPTIONS)
    await store.open()
    for start in range(0, count, 20):  # batches of 20: many segments
        await store.create_many({f"k{i}": value(i) for i in range(start, min(count, start + 20))})
    for i in range(count, count + 50):
        await store.create(f"k{i}", value(i))
    return store


async def read_all(path: Path, count: int) -> dict[str, Any]:
    async with AsyncDataStore(path, **OPTIONS) as store:
        return await store.read_many([f"k{i}" for i in range(count)])


async def test_a_backup_opens_with_the_keys_of_its_moment(tmp_path: Path) -> None:
    store = await filled(tmp_path / "src", 400)
    try:
        assert len(segments_of(store)) > 3
        await store.delete("k7")
        await store.backup(tmp_path / "copy")
        await store.create("after", {"n": 1})  # not in the copy
        await store.delete("k8")  # still in the copy
        await store.compact()  # removes source segments the copy links
    finally:
        await store.close()
    found = await read_all(tmp_path / "copy", 450)
    assert found == {f"k{i}": value(i) for i in range(450) if i != 7}
    async with AsyncDataStore(tmp_path / "copy", **OPTIONS) as copy:
        assert not await copy.exists("after")
        await copy.create("own", {})  # a store of its own
    assert not (tmp_path / "copy" / "BACKUP-INCOMPLETE").exists()
    for name in os.listdir(tmp_path / "copy"):
        assert os.stat(tmp_path / "copy" / name).st_mode & 0o077 == 0, name  # private files


async def test_writes_go_on_during_a_backup(tmp_path: Path) -> None:
    store = await filled(tmp_path / "src", 800)
    try:
        latencies: list[float] = []

        async def writer() -> None:
            for i in range(200):
                started = time.perf_counter()
                await store.create(f"w{i}", {"i": i})
                latencies.append(time.perf_counter() - started)

        backup = asyncio.ensure_future(store.backup(tmp_path / "copy"))
        await asyncio.gather(writer(), store.compact(), backup)
        assert len(latencies) == 200
    finally:
        await store.close()
    assert await read_all(tmp_path / "copy", 850) == {f"k{i}": value(i) for i in range(850)}
    async with AsyncDataStore(tmp_path / "copy", **OPTIONS) as copy:
        extra = await copy.read_many([f"w{i}" for i in range(200)])
        assert set(extra) == {f"w{i}" for i in range(len(extra))}  # a prefix, in order


@pytest.mark.parametrize("make", ["file", "nonempty", "inside"])
async def test_a_bad_destination_is_refused_and_left_alone(tmp_path: Path, make: str) -> None:
    store = await filled(tmp_path / "src", 10)
    try:
        if make == "file":
            dest = tmp_path / "afile"
            dest.write_text("keep me")
        elif make == "nonempty":
            dest = tmp_path / "full"
            dest.mkdir()
            (dest / "other").write_text("keep me")
        else:
            dest = tmp_path / "src" / "sub"
        before = sorted(os.listdir(tmp_path))
        with pytest.raises(StorePathError):
            await store.backup(dest)
        assert sorted(os.listdir(tmp_path)) == before
        if make != "inside":
            assert (dest if make == "file" else dest / "other").read_text() == "keep me"
        else:
            assert not dest.exists()
    finally:
        await store.close()


async def test_an_empty_directory_is_a_destination(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    store = await filled(tmp_path / "src", 20)
    try:
        await store.backup(tmp_path / "empty")
    finally:
        await store.close()
    assert len(await read_all(tmp_path / "empty", 70)) == 70


async def test_a_backup_across_file_systems_is_copied(tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "other", 32 * 2**20) as other:
        store = await filled(tmp_path / "src", 300)
        try:
            await store.backup(other / "copy")
            await store.compact()
        finally:
            await store.close()
        assert await read_all(other / "copy", 350) == {f"k{i}": value(i) for i in range(350)}
        for name in os.listdir(other / "copy"):
            assert os.stat(other / "copy" / name).st_nlink == 1, name  # copies, not links


async def test_a_backup_onto_a_full_disk_leaves_nothing(tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "small", 256 * 1024) as small:
        store = await filled(tmp_path / "src", 1000)  # about 0.5 MB
        try:
            with pytest.raises(StoreFullError, match="disk is full"):
                await store.backup(small / "copy")
            assert not (small / "copy").exists()
            assert await store.read("k1") == value(1)  # the source goes on
        finally:
            await store.close()


def test_data_store_backup(tmp_path: Path) -> None:
    with DataStore(tmp_path / "src") as store:
        store.create_many({f"k{i}": value(i) for i in range(10)})
        store.backup(tmp_path / "copy")
    with DataStore(tmp_path / "copy") as copy:
        assert copy.read_many([f"k{i}" for i in range(10)]) == {
            f"k{i}": value(i) for i in range(10)
        }


CHILD = """
    import asyncio
    import os
    import sys

    source, dest, point = sys.argv[1:4]
    os.environ["AIOKV_KILL_POINT"] = point

    from aiokv import AsyncDataStore
    from aiokv._bitcask.options import MIN_SEGMENT_MAX_BYTES


    async def main():
        async with AsyncDataStore(source, segment_max_bytes=MIN_SEGMENT_MAX_BYTES) as store:
            await store.create_many({f"k{i}": {"pad": "p" * 400} for i in range(300)})
            print("filled", flush=True)
            await store.backup(dest)


    asyncio.run(main())
"""


@pytest.mark.slow
@pytest.mark.parametrize("point", ["backup.held", "backup.copied"])
async def test_a_backup_cut_off_by_a_crash_does_not_open(tmp_path: Path, point: str) -> None:
    source, dest = tmp_path / "src", tmp_path / "copy"
    with start_child(CHILD, source, dest, f"{point}:1", workdir=tmp_path) as child:
        lines = child.rest_lines(timeout=60)
        status = child.wait()
        stderr = child.stderr_text()
    assert status == KILL_EXIT_CODE, stderr
    assert lines == ["filled"]
    with pytest.raises(StorePathError, match="never finished"):
        async with AsyncDataStore(dest):
            pass
    async with AsyncDataStore(source) as store:  # a new backup there says so too
        with pytest.raises(StorePathError, match="never finished"):
            await store.backup(dest)
    async with AsyncDataStore(source) as store:  # the source is whole
        assert len(await store.read_many([f"k{i}" for i in range(300)])) == 300

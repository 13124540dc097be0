"""Where a store lives: creating its directory, permissions, bad paths, the default path."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aiokv import AsyncDataStore, DataStore, StorePathError

SMALL_MAX_SIZE = 2**20


def listing(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every entry below ``root``: its mode and, for files, its bytes."""
    found: dict[str, tuple[int, bytes | None]] = {}
    for path in sorted(root.rglob("*")):
        mode = path.lstat().st_mode
        found[str(path.relative_to(root))] = (
            mode,
            path.read_bytes() if stat.S_ISREG(mode) else None,
        )
    return found


def mode_of(path: Path) -> int:
    return path.stat().st_mode & 0o777


async def test_missing_path_is_created_with_its_parents(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c" / "store"
    async with AsyncDataStore(path) as store:
        await store.create("k", {"a": 1})
    assert path.is_dir()
    assert (tmp_path / "a" / "b" / "c").is_dir()
    async with AsyncDataStore(path) as store:
        assert await store.read("k") == {"a": 1}


async def test_store_directory_is_0700_and_every_file_0600(tmp_path: Path) -> None:
    path = tmp_path / "parent" / "store"
    payload = {"v": "x" * 1000}
    async with AsyncDataStore(path, max_size=SMALL_MAX_SIZE) as store:
        # About 250 KB: several segments of 64 KiB.
        for i in range(250):
            await store.create(f"key-{i}", payload)
        for i in range(0, 250, 5):
            await store.delete(f"key-{i}")
        assert mode_of(path) == 0o700
        files = sorted(p.name for p in path.iterdir())
        segments = [name for name in files if name.endswith(".data")]
        assert "LOCK" in files
        assert len(segments) >= 3
        for entry in path.iterdir():
            assert entry.is_file(), entry
            assert mode_of(entry) == 0o600, f"{entry.name} is {oct(mode_of(entry))}"
    # The same after close and a reopen.
    async with AsyncDataStore(path, max_size=SMALL_MAX_SIZE) as store:
        assert await store.read("key-1") == payload
        await store.create("after-reopen", payload)
    assert mode_of(path) == 0o700
    for entry in path.iterdir():
        assert mode_of(entry) == 0o600, f"{entry.name} is {oct(mode_of(entry))}"


async def test_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "store"
    path.mkdir(mode=0o750)
    os.chmod(path, 0o750)
    async with AsyncDataStore(path) as store:
        await store.create("k", {"a": 1})
    assert mode_of(path) == 0o750
    for entry in path.iterdir():
        assert mode_of(entry) == 0o600


async def test_path_that_is_a_regular_file_is_refused_and_nothing_created(tmp_path: Path) -> None:
    path = tmp_path / "store"
    path.write_bytes(b"not a store")
    before = listing(tmp_path)
    store = AsyncDataStore(path)
    with pytest.raises(StorePathError, match=r"not a directory"):
        await store.open()
    await store.close()
    with pytest.raises(StorePathError, match=r"not a directory"):
        await asyncio.to_thread(DataStore, path)
    assert listing(tmp_path) == before


@pytest.mark.parametrize("below", ["store", "deeper/store"])
async def test_path_whose_parent_is_a_regular_file_is_refused(tmp_path: Path, below: str) -> None:
    parent = tmp_path / "file"
    parent.write_bytes(b"a file")
    path = parent / below
    before = listing(tmp_path)
    store = AsyncDataStore(path)
    with pytest.raises(StorePathError, match=str(parent)):
        await store.open()
    await store.close()
    with pytest.raises(StorePathError):
        await asyncio.to_thread(DataStore, path)
    assert listing(tmp_path) == before


async def test_refused_path_leaves_store_usable_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    store = AsyncDataStore(tmp_path / "file")
    with pytest.raises(StorePathError):
        await store.open()
    await store.close()
    async with AsyncDataStore(tmp_path / "dir") as good:
        await good.create("k", {"a": 1})
        assert await good.read("k") == {"a": 1}


@pytest.mark.parametrize("kind", [str, Path], ids=["str", "Path"])
async def test_path_as_str_or_pathlib(tmp_path: Path, kind: type) -> None:
    path = tmp_path / "store"
    async with AsyncDataStore(kind(path)) as store:
        assert store.path == path
        assert isinstance(store.path, Path)
        await store.create("k", {"a": 1})
    sync_store = await asyncio.to_thread(DataStore, kind(path))
    try:
        assert sync_store.path == path
        assert await asyncio.to_thread(sync_store.read, "k") == {"a": 1}
    finally:
        await asyncio.to_thread(sync_store.close)


def test_default_path_follows_xdg_data_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    store = AsyncDataStore()
    assert store.path == tmp_path / "xdg" / "aiokv" / "default"
    assert store.path.is_absolute()
    assert not (tmp_path / "xdg").exists()  # nothing is created before open


DEFAULT_PATH_SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    import aiokv

    with aiokv.DataStore() as store:
        if sys.argv[1] == "write":
            store.create("greeting", {"hello": "world"})
            value = None
        else:
            value = store.read("greeting")
        print(json.dumps({"path": str(store.path), "value": value}))
    """
)


def test_default_path_is_shared_across_working_directories(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    first_cwd = tmp_path / "first"
    second_cwd = tmp_path / "second"
    first_cwd.mkdir()
    second_cwd.mkdir()
    script = tmp_path / "default_store.py"
    script.write_text(DEFAULT_PATH_SCRIPT)
    env = {**os.environ, "XDG_DATA_HOME": str(xdg)}

    def run(cwd: Path, action: str) -> dict[str, object]:
        done = subprocess.run(
            [sys.executable, str(script), action],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, object] = json.loads(done.stdout)
        return result

    expected = str(xdg / "aiokv" / "default")
    wrote = run(first_cwd, "write")
    assert wrote["path"] == expected
    read = run(second_cwd, "read")
    assert read == {"path": expected, "value": {"hello": "world"}}
    assert (xdg / "aiokv" / "default" / "LOCK").is_file()
    assert mode_of(xdg / "aiokv" / "default") == 0o700
    assert list(first_cwd.iterdir()) == []
    assert list(second_cwd.iterdir()) == []

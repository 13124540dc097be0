"""``export_jsonl`` and ``import_jsonl``: round trips of every value shape and deadline, and
files that must import nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from _tmpfs import fill, mounted_tmpfs

from aiokv import (
    AsyncDataStore,
    DataStore,
    ImportFileError,
    KeyExistsError,
    ManualClock,
    StoreFullError,
    StorePathError,
)

SHAPES: dict[str, dict[str, Any]] = {
    "flat": {"name": "Ada", "n": 1, "ok": True, "none": None},
    "nested": {"ids": list(range(50)), "meta": {"a": {"b": [1, {"c": "d"}]}}},
    "unicode": {"text": 'é 🙂 \u2028 \\ " \n', "ключ": "значение"},
    "numbers": {"big": 2**70, "neg": -(2**64), "float": 0.1, "tiny": 1e-300, "int": -5},
    "empty": {},
    "deep": {"a": [[[[[[{"b": [None]}]]]]]]},
}
KEYS = {"flat": "user:1", "nested": "doc/ä", "unicode": "🙂🙂", "numbers": "n" * 32}


async def seeded(store: AsyncDataStore) -> dict[str, tuple[dict[str, Any], int | None]]:
    """A key for every value shape, half with a TTL; what was stored."""
    stored = {}
    for i, (shape, value) in enumerate(SHAPES.items()):
        key = KEYS.get(shape, shape)
        ttl = 3600 * (i + 1) if i % 2 else None
        await store.create(key, value, ttl=ttl)
        stored[key] = (value, ttl)
    return stored


async def test_export_then_import_gives_the_same_keys_values_and_deadlines(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with AsyncDataStore(tmp_path / "a", clock=clock) as source:
        stored = await seeded(source)
        assert await source.export_jsonl(tmp_path / "out.jsonl") == len(stored)
    lines = (tmp_path / "out.jsonl").read_bytes().splitlines()
    assert len(lines) == len(stored)
    for line in lines:
        entry = json.loads(line)
        assert set(entry) == {"key", "value", "expires_at"}
        value, ttl = stored[entry["key"]]
        assert entry["value"] == value
        assert entry["expires_at"] == (None if ttl is None else clock.time() + ttl)
    async with AsyncDataStore(tmp_path / "b", clock=clock) as target:
        assert await target.import_jsonl(tmp_path / "out.jsonl") == len(stored)
        assert await target.read_many(list(stored)) == {k: v for k, (v, _t) in stored.items()}
        numbers = await target.read(KEYS["numbers"])
        assert type(numbers["big"]) is int  # exact, not a float
        clock.advance(3600 * 2)  # the first key with a TTL (1 h... 2 h) is gone at 2 h
        gone = [key for key, (_v, ttl) in stored.items() if ttl is not None and ttl <= 7200]
        assert gone
        for key in gone:
            assert not await target.exists(key)
        for key in set(stored) - set(gone):
            assert await target.exists(key)


async def test_export_with_a_prefix(store: AsyncDataStore, tmp_path: Path) -> None:
    await store.create_many({f"user:{i}": {"i": i} for i in range(30)})
    await store.create_many({f"item:{i}": {"i": i} for i in range(30)})
    assert await store.export_jsonl(tmp_path / "users.jsonl", prefix="user:") == 30
    keys = [json.loads(line)["key"] for line in (tmp_path / "users.jsonl").read_text().splitlines()]
    assert sorted(keys) == sorted(f"user:{i}" for i in range(30))
    assert await store.export_jsonl(tmp_path / "none.jsonl", prefix="nobody") == 0
    assert (tmp_path / "none.jsonl").read_bytes() == b""


async def test_export_replaces_its_target_whole(store: AsyncDataStore, tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("old contents\n")
    await store.create("k", {"v": 1})
    assert await store.export_jsonl(target) == 1
    assert json.loads(target.read_text()) == {"key": "k", "value": {"v": 1}, "expires_at": None}
    assert sorted(os.listdir(tmp_path)) == ["out.jsonl", "store"]  # no temporary left
    assert os.stat(target).st_mode & 0o077 == 0


@pytest.mark.parametrize("kind", ["fifo", "directory", "symlink"])
async def test_export_refuses_a_target_that_is_not_a_regular_file(
    store: AsyncDataStore, tmp_path: Path, kind: str
) -> None:
    """The rename that replaces the target whole would replace a device node (as root), a
    FIFO or a link itself: such a target is refused and left as it was."""
    await store.create("k", {"v": 1})
    target = tmp_path / "out"
    kept = tmp_path / "kept.jsonl"
    kept.write_text("mine\n")
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    else:
        target.symlink_to(kept)
    before = os.lstat(target)
    with pytest.raises(StorePathError, match=r"not a regular file.*nothing was written"):
        await store.export_jsonl(target)
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert kept.read_text() == "mine\n"
    assert sorted(os.listdir(tmp_path)) == sorted(["kept.jsonl", "out", "store"])


async def test_export_onto_a_full_disk_leaves_the_old_file(
    store: AsyncDataStore, tmp_path: Path
) -> None:
    await store.create_many({f"k{i}": {"pad": "x" * 1000} for i in range(300)})
    with mounted_tmpfs(tmp_path / "small", 128 * 1024) as small:
        (small / "out.jsonl").write_text("the old export\n")
        fill(small)
        with pytest.raises(StoreFullError, match="disk is full"):
            await store.export_jsonl(small / "out.jsonl")
        assert (small / "out.jsonl").read_text() == "the old export\n"
        assert sorted(os.listdir(small)) == ["ballast", "out.jsonl"]


async def test_import_skips_expired_and_with_skip_existing_live_keys(
    store: AsyncDataStore, tmp_path: Path, clock: ManualClock
) -> None:
    now = clock.time()
    lines = [
        {"key": "past", "value": {}, "expires_at": now - 1},
        {"key": "now", "value": {}, "expires_at": now},
        {"key": "later", "value": {"x": 1}, "expires_at": now + 10},
        {"key": "live", "value": {"new": True}, "expires_at": None},
        {"key": "fresh", "value": {"y": 2}, "expires_at": None},
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    await store.create("live", {"old": True})
    with pytest.raises(KeyExistsError, match="line 4"):
        await store.import_jsonl(path)
    assert not await store.exists("fresh")  # nothing was imported
    assert await store.import_jsonl(path, skip_existing=True) == 2
    assert await store.read_many(["past", "now", "later", "live", "fresh"]) == {
        "later": {"x": 1},
        "live": {"old": True},
        "fresh": {"y": 2},
    }
    clock.advance(10)
    assert not await store.exists("later")


BAD_LINES = [
    (b"not json", "not JSON"),
    (b'{"key": "a", "value": {}, "expires_at": null', "not JSON"),
    (b'{"key": "\xff\xfe", "value": {}, "expires_at": null}', "not JSON in UTF-8"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"key": "a", "value": {}}', "missing: expires_at"),
    (b'{"key": "a", "value": {}, "expires_at": null, "more": 1}', "extra: more"),
    (b'{"key": "", "value": {}, "expires_at": null}', "key"),
    (b'{"key": 5, "value": {}, "expires_at": null}', "key"),
    (b'{"key": "' + b"x" * 33 + b'", "value": {}, "expires_at": null}', "key"),
    (b'{"key": "a", "value": [], "expires_at": null}', "must be a dict"),
    (b'{"key": "a", "value": {"s": "' + b"x" * 17000 + b'"}, "expires_at": null}', "16384"),
    (b'{"key": "a", "value": {}, "expires_at": "soon"}', "expires_at"),
    (b'{"key": "a", "value": {}, "expires_at": true}', "expires_at"),
    (b'{"key": "a", "value": {}, "expires_at": -1}', "expires_at"),
    (b'{"key": "a", "value": {}, "expires_at": NaN}', "not JSON"),
    (b'{"key": "a", "value": {}, "expires_at": 1e300}', "expires_at"),
    (b'{"key": "a", "value": {}, "expires_at": 1' + b"0" * 400 + b"}", "expires_at"),
]


@pytest.mark.parametrize(("line", "what"), BAD_LINES)
async def test_a_bad_line_imports_nothing_and_is_named(
    store: AsyncDataStore, tmp_path: Path, line: bytes, what: str
) -> None:
    good = b'{"key": "good", "value": {}, "expires_at": null}\n'
    path = tmp_path / "in.jsonl"
    path.write_bytes(good * 1 + b"\n" + line + b"\n" + good.replace(b"good", b"also"))
    with pytest.raises(ImportFileError, match="line 3") as refused:
        await store.import_jsonl(path)
    assert what in str(refused.value)
    assert isinstance(refused.value, ValueError)
    assert await store.read_many(["good", "also"]) == {}


async def test_a_key_given_twice_names_both_lines(store: AsyncDataStore, tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    entry = b'{"key": "%s", "value": {}, "expires_at": null}\n'
    path.write_bytes(entry % b"a" + entry % b"b" + entry % b"a")
    with pytest.raises(ImportFileError, match="line 3: key 'a' is also on line 1"):
        await store.import_jsonl(path)
    assert not await store.exists("b")


async def test_a_huge_line_is_refused_without_reading_it_whole(
    store: AsyncDataStore, tmp_path: Path
) -> None:
    path = tmp_path / "in.jsonl"
    with path.open("wb") as file:
        file.write(b'{"key": "a", "value": {}, "expires_at": null}\n')
        file.write(b'{"key": "b", "value": {"s": "')
        for _ in range(100):
            file.write(b"x" * 2**20)  # a 100 MB line
        file.write(b'"}, "expires_at": null}\n')
    with pytest.raises(ImportFileError, match="line 2: longer than"):
        await store.import_jsonl(path)
    assert not await store.exists("a")


@pytest.mark.slow
async def test_a_million_lines_with_a_bad_last_one_import_nothing(
    store_path: Path, tmp_path: Path
) -> None:
    path = tmp_path / "in.jsonl"
    with path.open("wb") as file:
        for i in range(10**6):
            file.write(b'{"key":"k%d","value":{"i":%d},"expires_at":null}\n' % (i, i))
        file.write(b'{"key":"last","value":"not a dict","expires_at":null}\n')
    async with AsyncDataStore(store_path, max_size=2**31) as store:
        with pytest.raises(ImportFileError, match="line 1000001"):
            await store.import_jsonl(path)
        assert (await store.stats()).live_keys == 0
        path.write_bytes(path.read_bytes().rsplit(b"\n", 2)[0] + b"\n")  # without the last
        assert await store.import_jsonl(path) == 10**6
        assert await store.read("k999999") == {"i": 999999}


def test_data_store_export_and_import(tmp_path: Path) -> None:
    with DataStore(tmp_path / "a") as store:
        store.create_many({f"k{i}": {"i": i} for i in range(100)})
        assert store.export_jsonl(tmp_path / "out.jsonl", prefix="k1") == 11
    with DataStore(tmp_path / "b") as store:
        assert store.import_jsonl(tmp_path / "out.jsonl") == 11
        assert store.import_jsonl(tmp_path / "out.jsonl", skip_existing=True) == 0
        assert store.read("k15") == {"i": 15}


async def test_an_import_cut_short_says_how_much_it_wrote(
    store: AsyncDataStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The file is checked whole first; a key created by someone else between two batches
    # stops the import there, and the error says that earlier batches were written.
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        b"".join(b'{"key":"k%d","value":{},"expires_at":null}\n' % i for i in range(2500))
    )
    real = store._submit_puts
    calls = 0

    async def racing(writer: Any, batch: Any, now: float) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            await store.create("k1500", {"raced": True})
        await real(writer, batch, now)

    monkeypatch.setattr(store, "_submit_puts", racing)
    with pytest.raises(KeyExistsError, match=r"1000 entries of .* were imported before it"):
        await store.import_jsonl(path)
    assert len(await store.read_many([f"k{i}" for i in range(2500)])) == 1001
    calls = 0
    assert await store.import_jsonl(path, skip_existing=True) == 1499  # the race left alone
    assert await store.read("k1500") == {"raced": True}


async def test_export_leaves_out_a_key_gone_after_its_value_was_read(
    store: AsyncDataStore, tmp_path: Path, clock: ManualClock
) -> None:
    # items() reads values a step ahead of the export writing them: a key expiring in
    # between is left out rather than written without its deadline (and brought back).
    await store.create_many({f"k{i}": {"i": i} for i in range(10)}, ttl=100)
    await store.create("forever", {})
    original = store.items

    def items_then_expire(prefix: str = "") -> Any:
        iteration = original(prefix)

        async def wrapped() -> Any:
            async for item in iteration:
                clock.advance(100)  # every key with a deadline expires now
                yield item

        return wrapped()

    store.items = items_then_expire  # type: ignore[method-assign]
    assert await store.export_jsonl(tmp_path / "out.jsonl") == 1
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["forever"]

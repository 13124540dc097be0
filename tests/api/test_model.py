"""The store against a dict model: every operation's outcome matches, across TTLs and reopens."""

from __future__ import annotations

import copy
import json
import math
import shutil
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import _soak
import pytest
from _fs import dir_bytes
from _internals import MIN_SEGMENT_MAX_BYTES
from _machine import StoreMachine
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    initialize,
    invariant,
    precondition,
    rule,
)

from aiokv import (
    DEFAULT_MAX_SIZE,
    AsyncDataStore,
)

pytestmark = [pytest.mark.purepy, pytest.mark.slow]

HEADER = 28

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
small_dicts = st.dictionaries(st.text(max_size=5), json_values, max_size=4)
ttls = st.one_of(st.none(), st.integers(min_value=1, max_value=5))
KEYS = ["a", "b", "c", "d/é", "🙂", "x" * 32]


def encoded(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


async def _collect(iterator: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in iterator]


class _ModelMachine(StoreMachine):
    """Model: key -> (value, deadline or None). A key is live while clock.time() < deadline.

    The rules every machine shares; each subclass adds its own create rule.
    """

    max_size: ClassVar[int] = DEFAULT_MAX_SIZE
    keys: ClassVar[list[str]] = KEYS

    # -- plumbing ----------------------------------------------------------------------

    def _open(self) -> AsyncDataStore:
        store = AsyncDataStore(
            self.path, max_size=self.max_size, clock=self.clock, reaper_interval_s=0.01
        )
        self.run(store.open())
        return store

    # -- the operations ----------------------------------------------------------------

    def expect_create(self, key: str, value: dict[str, Any], ttl: int | None) -> str:
        """Create, check the outcome against the model, record it; return the outcome."""
        now = self.clock.time()
        expected = "KeyExistsError" if self.live(key) is not None else "ok"
        got, _ = self.outcome(self.opened.create(key, value, ttl))
        event(f"create: {got}")
        if got == "StoreFullError" and expected == "ok":
            self.check_full(key, value)
            return got
        assert got == expected, (key, got, expected)
        if got == "ok":
            self.model[key] = (copy.deepcopy(value), None if ttl is None else now + ttl)
            self.note_written(key, value)
        return got

    def check_full(self, key: str, value: dict[str, Any]) -> None:
        raise AssertionError(f"StoreFullError creating {key!r} in a store with room to spare")

    def note_written(self, key: str, value: dict[str, Any] | None) -> None:
        """Called for every record the store appended (value None: a tombstone)."""

    def draw_key(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(self.keys), label="key")

    @rule(data=st.data())
    def read(self, data: st.DataObject) -> None:
        self.check_read(self.draw_key(data))

    def check_read(self, key: str) -> None:
        expected = self.live(key)
        got, value = self.outcome(self.opened.read(key))
        event(f"read: {got}")
        if expected is None:
            assert got == "KeyNotFoundError", (key, got, value)
        else:
            assert got == "ok", (key, got)
            assert value == expected, key

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        self.check_delete(self.draw_key(data))  # never StoreFullError, even when full

    def check_delete(self, key: str) -> None:
        expected = "ok" if self.live(key) is not None else "KeyNotFoundError"
        got, _ = self.outcome(self.opened.delete(key))
        assert got == expected, (key, got)
        if got == "ok":
            del self.model[key]
            self.note_written(key, None)

    @rule(data=st.data(), values=st.lists(small_dicts, min_size=1, max_size=4), ttl=ttls)
    def create_many(
        self, data: st.DataObject, values: list[dict[str, Any]], ttl: int | None
    ) -> None:
        keys = data.draw(
            st.lists(st.sampled_from(self.keys), min_size=len(values), max_size=len(values)),
            label="keys",
        )
        self.expect_create_many(list(zip(keys, values, strict=True)), ttl)

    def expect_create_many(self, pairs: list[tuple[str, dict[str, Any]]], ttl: int | None) -> str:
        now = self.clock.time()
        keys = [key for key, _value in pairs]
        if len(set(keys)) < len(keys):
            expected = "InvalidKeyError"
        elif any(self.live(key) is not None for key in keys):
            expected = "KeyExistsError"
        else:
            expected = "ok"
        got, _ = self.outcome(self.opened.create_many(pairs, ttl=ttl))
        event(f"create_many: {got}")
        if got == "StoreFullError" and expected == "ok":
            self.check_batch_full(pairs)
            return got
        assert got == expected, (keys, got, expected)
        if got == "ok":
            for key, value in pairs:
                self.model[key] = (copy.deepcopy(value), None if ttl is None else now + ttl)
                self.note_written(key, value)
        return got

    def check_batch_full(self, pairs: list[tuple[str, dict[str, Any]]]) -> None:
        raise AssertionError(f"StoreFullError for a batch of {len(pairs)} with room to spare")

    @rule(data=st.data())
    def delete_many(self, data: st.DataObject) -> None:
        keys = data.draw(st.lists(st.sampled_from(self.keys), max_size=5), label="keys")
        live = [key for key in dict.fromkeys(keys) if self.live(key) is not None]
        got, deleted = self.outcome(self.opened.delete_many(keys))
        event(f"delete_many: {got}")
        assert (got, deleted) == ("ok", len(live)), (keys, got, deleted, live)
        for key in live:
            del self.model[key]
            self.note_written(key, None)

    @rule(data=st.data(), ttl=ttls)
    def touch(self, data: st.DataObject, ttl: int | None) -> None:
        key = self.draw_key(data)
        now = self.clock.time()
        value = self.live(key)
        got, _ = self.outcome(self.opened.touch(key, ttl))
        event(f"touch: {got}")
        if got == "StoreFullError" and value is not None:
            self.check_full(key, value)
            return
        assert got == ("ok" if value is not None else "KeyNotFoundError"), (key, got)
        if value is not None:
            self.model[key] = (value, None if ttl is None else now + ttl)
            self.note_written(key, value)

    @rule(data=st.data())
    def exists(self, data: st.DataObject) -> None:
        key = self.draw_key(data)
        got, found = self.outcome(self.opened.exists(key))
        assert (got, found) == ("ok", self.live(key) is not None), key

    @rule(data=st.data())
    def read_many(self, data: st.DataObject) -> None:
        keys = data.draw(st.lists(st.sampled_from(self.keys), max_size=8), label="keys")
        got, found = self.outcome(self.opened.read_many(keys))
        assert got == "ok", got
        expected = {key: value for key in keys if (value := self.live(key)) is not None}
        assert found == expected

    @rule(prefix=st.sampled_from(["", "a", "d", "d/", "x", "🙂", "zz"]))
    def keys_and_items(self, prefix: str) -> None:
        expected = {
            key: value
            for key in self.model
            if key.startswith(prefix) and (value := self.live(key)) is not None
        }
        keys = self.run(_collect(self.opened.keys(prefix)))
        assert sorted(keys) == sorted(expected), (prefix, keys)  # each once, none twice
        items = self.run(_collect(self.opened.items(prefix)))
        assert len(items) == len(expected)
        assert dict(items) == expected

    @rule()
    def verify(self) -> None:
        report = self.run(self.opened.verify())
        assert report.ok, report.problems

    @rule(seconds=st.floats(min_value=0.0, max_value=3.0, allow_nan=False))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @precondition(
        lambda self: any(
            deadline is not None and deadline > self.clock.time()
            for _value, deadline in self.model.values()
        )
    )
    @rule(data=st.data(), just_before=st.booleans())
    def advance_to_a_deadline(self, data: st.DataObject, just_before: bool) -> None:
        deadlines = sorted(
            deadline
            for _value, deadline in self.model.values()
            if deadline is not None and deadline > self.clock.time()
        )
        deadline = data.draw(st.sampled_from(deadlines))
        self.clock.set(math.nextafter(deadline, -math.inf) if just_before else deadline)

    @rule()
    def reopen(self) -> None:
        self.run(self.opened.close())
        self.store = None
        self.store = self._open()
        for key in self.keys:
            self.check_read(key)

    @invariant()
    def repr_counts_no_more_keys_than_were_created(self) -> None:
        if self.store is not None:
            text = repr(self.store)
            assert " open keys=" in text, text
            count = int(text.split("keys=")[1].split()[0])
            # Expired keys may linger until the reaper runs; deleted ones never.
            assert sum(self.live(key) is not None for key in self.model) <= count
            assert count <= len(self.model)


class StoreMachine(_ModelMachine):
    @rule(data=st.data(), value=small_dicts, ttl=ttls)
    def create(self, data: st.DataObject, value: dict[str, Any], ttl: int | None) -> None:
        self.expect_create(self.draw_key(data), value, ttl)


StoreMachine.TestCase.settings = settings(
    max_examples=50,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestStoreAgainstModel = StoreMachine.TestCase


class CrashMachine(_ModelMachine):
    """Small segments, explicit compactions, and crashes: the directory is copied as a
    killed process leaves it (every acknowledged write is in the files; nothing was closed,
    synced or cleaned up) and the store reopened from the copy."""

    def _open(self) -> AsyncDataStore:
        store = AsyncDataStore(
            self.path,
            max_size=self.max_size,
            clock=self.clock,
            reaper_interval_s=0.01,
            segment_max_bytes=MIN_SEGMENT_MAX_BYTES,
            # Compaction runs only inside the compact rule, so that nothing is moving files
            # while a crash copies them.
            compact_dead_ratio=None,
        )
        self.run(store.open())
        return store

    @rule(data=st.data(), value=small_dicts, ttl=ttls, pad=st.sampled_from([0, 8000, 14000]))
    def create(self, data: st.DataObject, value: dict[str, Any], ttl: int | None, pad: int) -> None:
        if pad:
            value = {**value, "pad": "p" * pad}  # big values roll segments over
        self.expect_create(self.draw_key(data), value, ttl)

    @rule()
    def compact(self) -> None:
        got, reclaimed = self.outcome(self.opened.compact())
        assert got == "ok", got
        event(f"compact: {'reclaimed space' if reclaimed else 'nothing to reclaim'}")
        for key in self.keys:
            self.check_read(key)

    @rule()
    def backup(self) -> None:
        """A backup opens as a store with exactly the keys live when it was taken."""
        dest = self.workdir / "backup"
        assert self.outcome(self.opened.backup(dest)) == ("ok", None)
        copy = AsyncDataStore(dest, clock=self.clock, compact_dead_ratio=None)
        self.run(copy.open())
        try:
            found = self.run(copy.read_many(list(self.model)))
        finally:
            self.run(copy.close())
            shutil.rmtree(dest)
        expected = {key: value for key in self.model if (value := self.live(key)) is not None}
        assert found == expected

    @rule()
    def crash_and_reopen(self) -> None:
        crashed = self.workdir / "crashed"
        segments = len(list(self.path.glob("*.data")))
        event(f"crash: {'one segment' if segments == 1 else 'several segments'}")
        shutil.copytree(self.path, crashed)
        self.run(self.opened.close())
        self.store = None
        shutil.rmtree(self.path)
        crashed.rename(self.path)
        self.store = self._open()
        for key in self.keys:
            self.check_read(key)

    @invariant()
    def within_the_cap(self) -> None:
        assert dir_bytes(self.path) <= self.max_size


CrashMachine.TestCase.settings = settings(
    max_examples=300 * _soak.FACTOR,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestStoreAgainstModelWithCrashes = CrashMachine.TestCase


CAP = 2**20
SEGMENT = CAP // 16  # the default segment size for this cap
FILLERS = [f"fill{i:03d}" for i in range(70)]
CAP_KEYS = [*KEYS[:4], *FILLERS[:3]]
SLACK = 8192  # per segment: file header, hint framing and entries (~190 B at 3 values)
TOMBSTONE = HEADER + 4  # plus the key


class FullStoreMachine(_ModelMachine):
    """Near the cap: large values, StoreFullError only when the live data justifies it.

    Compaction reclaims dead records before a create is refused, so what may fill the store
    is the live records, the room kept for deleting every key and for one compaction step,
    the dead bytes of the segment being appended to (never compacted), and tombstones that
    are still needed.
    """

    max_size = CAP
    keys = CAP_KEYS

    def __init__(self) -> None:
        self.deletes = 0
        self.counter = 0
        super().__init__()

    def note_written(self, key: str, value: dict[str, Any] | None) -> None:
        if value is None:
            self.deletes += 1

    def live_bytes(self, keys: set[str]) -> int:
        # Expired keys count too: their records go only when compaction or the reaper gets
        # to them, which is allowed to be later.
        return sum(HEADER + len(k.encode()) + len(encoded(self.model[k][0])) for k in keys)

    def check_full(self, key: str, value: dict[str, Any]) -> None:
        size = HEADER + len(key.encode()) + len(encoded(value))
        keys = set(self.model)
        live = self.live_bytes(keys)
        reserve = self.reserve_for(keys | {key})
        tombstones = self.deletes * (TOMBSTONE + max(len(k) for k in CAP_KEYS))
        assert live + size + reserve + 2 * SEGMENT + tombstones + SLACK > CAP, (
            f"StoreFullError with {live} live bytes, {size} asked, {reserve} for deletes, "
            f"{tombstones} of tombstones, max_size {CAP}"
        )
        self.check_read(key)  # the refused create changed nothing

    def check_batch_full(self, pairs: list[tuple[str, dict[str, Any]]]) -> None:
        size = sum(HEADER + len(key.encode()) + len(encoded(value)) for key, value in pairs)
        keys = set(self.model) | {key for key, _value in pairs}
        live = self.live_bytes(set(self.model))
        tombstones = self.deletes * (TOMBSTONE + max(len(k) for k in CAP_KEYS))
        assert live + size + self.reserve_for(keys) + 2 * SEGMENT + tombstones + SLACK > CAP, (
            f"StoreFullError for a batch of {size} bytes with {live} live bytes"
        )
        for key, _value in pairs:
            self.check_read(key)  # the refused batch changed nothing

    @rule(
        data=st.data(),
        sizes=st.lists(st.sampled_from([100, 4000, 9000]), min_size=1, max_size=3),
        ttl=ttls,
    )
    def create_many_big(self, data: st.DataObject, sizes: list[int], ttl: int | None) -> None:
        keys = data.draw(
            st.lists(st.sampled_from(self.keys), min_size=len(sizes), max_size=len(sizes)),
            label="keys",
        )
        pairs = [(key, self.big_value(size)) for key, size in zip(keys, sizes, strict=True)]
        self.expect_create_many(pairs, ttl)

    def big_value(self, size: int) -> dict[str, Any]:
        self.counter += 1
        value: dict[str, Any] = {"n": self.counter, "p": ""}
        value["p"] = "x" * (size - len(encoded(value)))
        assert len(encoded(value)) == size
        return value

    def reserve_for(self, keys: set[str]) -> int:
        return sum(TOMBSTONE + len(name.encode()) for name in keys)

    @initialize(headroom=st.integers(min_value=0, max_value=60_000))
    def fill(self, headroom: int) -> None:
        """Fill with 16 KB values until about ``headroom`` bytes are left before the cap."""
        for key in FILLERS:
            size = HEADER + len(key.encode()) + 16000
            keys = set(self.model)
            reserve = self.reserve_for(keys | {key})
            if self.live_bytes(keys) + size + reserve + SEGMENT + SLACK + headroom > CAP:
                break
            assert self.expect_create(key, self.big_value(16000), None) == "ok"
        else:
            raise AssertionError("not enough filler keys to fill the store")

    @rule(data=st.data(), size=st.sampled_from([100, 1000, 4000, 9000, 16384]), ttl=ttls)
    def create_big(self, data: st.DataObject, size: int, ttl: int | None) -> None:
        self.expect_create(self.draw_key(data), self.big_value(size), ttl)

    @invariant()
    def directory_within_cap(self) -> None:
        assert dir_bytes(self.path) <= CAP


FullStoreMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestFullStoreAgainstModel = FullStoreMachine.TestCase

"""A torn tail at any byte of the newest segment's last record, or junk after it, is recovered
from: the store opens, exactly the torn record is lost, everything before it is intact, and
recovery is idempotent (a second open leaves every byte of the directory as the first left it).

The store is real (several segments, hints, tombstones, TTLs); each trial restores its files,
damages the newest segment as a crash would and opens it.

A hint describes its segment up to ``covered`` bytes and is trusted for that prefix. The
active segment's hint is written only at a clean close (sealed segments get theirs at
roll-over), after the segment was fsynced, so a crash never leaves a hint that covers an
unsynced tail: after a crash the newest segment has either no hint (it was made in the session
that crashed) or a stale one from an earlier clean close, covering a prefix of it. Trials use
both; the hint of the final clean close, which covers the last record, is only kept where the
damage lies beyond it (junk appended after the last record).
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _internals import (
    FILE_HEADER_SIZE,
    FILE_LOG,
    HEADER_SIZE,
    MIN_SEGMENT_MAX_BYTES,
    decode,
    decode_file_header,
    decode_hint,
    hint_name,
    parse_segment_name,
)

from aiokv import DataStore, KeyNotFoundError, ManualClock

pytestmark = pytest.mark.slow

Value = dict[str, Any]
Model = dict[str, Value | None]  # key -> value, None: deleted
Files = dict[str, bytes]

MAX_SIZE = 2**20
NOW = 1_700_000_000.0
LONG_TTL = 10**6
JUNK_LENGTHS = [1, HEADER_SIZE - 1, HEADER_SIZE, 100, 5000]
JUNK_SEED = 2024


def encoded(value: Value) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def sized(record_size: int, key: str, tag: str) -> Value:
    """A value whose put record of ``key`` is ``record_size`` bytes."""
    value: Value = {"t": tag, "p": ""}
    value["p"] = "x" * (record_size - HEADER_SIZE - len(key.encode()) - len(encoded(value)))
    assert HEADER_SIZE + len(key.encode()) + len(encoded(value)) == record_size
    return value


def open_store(path: Path) -> DataStore:
    return DataStore(
        path,
        max_size=MAX_SIZE,
        segment_max_bytes=MIN_SEGMENT_MAX_BYTES,
        compact_dead_ratio=None,
        clock=ManualClock(NOW),
    )


def files_of(path: Path) -> Files:
    found = {}
    for entry in sorted(path.iterdir()):
        assert entry.is_file(), entry
        found[entry.name] = entry.read_bytes()
    return found


def restore(path: Path, files: Files) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700)
    for name, data in files.items():
        target = path / name
        target.write_bytes(data)
        target.chmod(0o600)


def log_segments(files: Files) -> list[str]:
    return sorted(
        name
        for name, data in files.items()
        if parse_segment_name(name) is not None
        and decode_file_header(data[:FILE_HEADER_SIZE]).kind == FILE_LOG
    )


def record_starts(data: bytes) -> list[int]:
    starts = []
    offset = FILE_HEADER_SIZE
    while offset < len(data):
        starts.append(offset)
        offset += decode(data, offset).size
    return starts


@dataclass(frozen=True)
class Built:
    """A closed store whose newest segment ends in a known last record."""

    files: Files  # every file after the last clean close
    newest: str  # the newest log segment's name
    newest_hint: str
    stale_hint: bytes  # the newest segment's hint from an earlier clean close: a prefix
    last_start: int
    last_end: int
    before: Model  # the store without its last record
    after: Model  # and with it


def build(path: Path, last: str) -> Built:
    """Two sessions on one store; the second ends with the record ``last`` describes.

    Session one fills a segment (sealed, with its hint), begins the next with puts, a TTL put
    and tombstones, and closes. Session two appends to that same segment (past the hint the
    first close wrote) and ends with the last record: a small put of a new key, a small put of
    a deleted key created again, a tombstone of a key whose put lies in the sealed segment, or
    a ~2 KB put.
    """
    model: Model = {}

    def create(store: DataStore, key: str, value: Value, ttl: int | None = None) -> None:
        store.create(key, value, ttl=ttl)
        model[key] = value

    def delete(store: DataStore, key: str) -> None:
        store.delete(key)
        model[key] = None

    with open_store(path) as store:
        for i in range(22):
            key = f"a{i:02d}"
            create(store, key, sized(1500, key, key), ttl=LONG_TTL if i % 5 == 0 else None)
        delete(store, "a01")
        delete(store, "a02")
        create(store, "ttl", sized(90, "ttl", "ttl"), ttl=LONG_TTL)
    first = files_of(path)
    newest = log_segments(first)[-1]
    assert newest != log_segments(first)[0], "session one must seal a segment"
    stale_hint = first[hint_name(parse_segment_name(newest) or 0)]
    with open_store(path) as store:
        create(store, "b0", sized(200, "b0", "b0"))
        create(store, "b1", sized(70, "b1", "b1"))
        delete(store, "a03")
        create(store, "a02", sized(120, "a02", "again"))
        before = dict(model)
        if last == "put-new":
            create(store, "tail", sized(60, "tail", "tail"))
        elif last == "put-again":
            create(store, "a01", sized(60, "a01", "a01 again"))
        elif last == "tombstone":
            delete(store, "a04")
        elif last == "put-large":
            create(store, "tail", sized(2000, "tail", "large tail"))
        else:
            raise AssertionError(last)
    files = files_of(path)
    assert log_segments(files)[-1] == newest, "session two must append to the same segment"
    data = files[newest]
    starts = record_starts(data)
    newest_hint = hint_name(parse_segment_name(newest) or 0)
    covered = decode_hint(stale_hint).covered
    assert FILE_HEADER_SIZE < covered < starts[-2], "the stale hint must cover only a prefix"
    assert decode_hint(files[newest_hint]).covered == len(data)
    return Built(files, newest, newest_hint, stale_hint, starts[-1], len(data), before, model)


def aiokv_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "aiokv" and record.levelno >= logging.WARNING
    ]


def check_contents(store: DataStore, expected: Model) -> None:
    """Every key the store was given reads as the model says, and there are no others."""
    actual: Model = {}
    for key in expected:
        try:
            actual[key] = store.read(key)
        except KeyNotFoundError:
            actual[key] = None
    wrong = [
        f"{key!r}: expected {expected[key]}, actual {actual[key]}"
        for key in expected
        if actual[key] != expected[key]
    ]
    assert not wrong, "keys that read wrong: " + "; ".join(wrong)
    live = sum(value is not None for value in expected.values())
    assert store.stats().live_keys == live, "a key that was never written appeared"


def trial(
    path: Path,
    built: Built,
    damage: Callable[[Path], None],
    hint: str,
    expected: Model,
    kept_end: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Restore the store, damage its newest segment, set its hint, open it twice; check."""
    restore(path, built.files)
    hint_path = path / built.newest_hint
    if hint == "none":
        hint_path.unlink()
    elif hint == "stale":
        hint_path.write_bytes(built.stale_hint)
    else:
        assert hint == "final", hint
    segment = path / built.newest
    damage(segment)
    torn = segment.stat().st_size != kept_end
    caplog.clear()
    with open_store(path) as store:
        data = segment.read_bytes()
        assert data == built.files[built.newest][:kept_end], (
            f"the newest segment is {len(data)} bytes after recovery, expected the first "
            f"{kept_end} bytes of the original"
        )
        for name, original in built.files.items():
            if name not in (built.newest, built.newest_hint, "LOCK"):
                assert (path / name).read_bytes() == original, f"{name} was changed"
        check_contents(store, expected)
    cut = [message for message in aiokv_warnings(caplog) if "cutting off" in message]
    assert len(cut) == torn, f"warnings at the first open: {aiokv_warnings(caplog)}"
    first = files_of(path)
    assert first[built.newest] == built.files[built.newest][:kept_end]
    assert decode_hint(first[built.newest_hint]).covered == kept_end, (
        "the hint written at close does not cover exactly what recovery kept"
    )
    caplog.clear()
    with open_store(path) as store:
        assert files_of(path) == first, "the second open changed the directory"
        check_contents(store, expected)
    assert files_of(path) == first, "the second open and close changed the directory"
    assert aiokv_warnings(caplog) == [], "the second open found something to repair"


def truncate_at(offset: int) -> Callable[[Path], None]:
    return lambda segment: os.truncate(segment, offset)


def append(junk: bytes) -> Callable[[Path], None]:
    def damage(segment: Path) -> None:
        with open(segment, "ab") as file:
            file.write(junk)

    return damage


def run_trials(
    path: Path,
    built: Built,
    cases: list[tuple[str, Callable[[Path], None], str, Model, int]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Run every (name, damage, hint, expected, kept_end) trial; fail with all that failed."""
    failures = []
    for name, damage, hint, expected, kept_end in cases:
        try:
            trial(path, built, damage, hint, expected, kept_end, caplog)
        except Exception as exc:  # an open that fails is as much a finding as a wrong value
            failures.append(f"{name}, hint {hint}: {type(exc).__name__}: {exc}")
    assert not failures, f"{len(failures)} of {len(cases)} trials failed:\n" + "\n".join(
        failures[:10]
    )


def torn_offsets(built: Built, sampled: bool) -> list[int]:
    """Offsets into the last record to cut the file at: all of them for a small record; for a
    large one every header and key byte, both ends of the value and a sample between."""
    size = built.last_end - built.last_start
    if not sampled:
        return list(range(size))
    rng = random.Random(size)  # the sampled offsets are named in any failure
    body = range(HEADER_SIZE + 8, size - 2)
    return sorted({*range(HEADER_SIZE + 8), *rng.sample(body, 18), size - 2, size - 1})


@pytest.mark.parametrize(
    ("last", "hints"),
    [
        ("put-new", ["none", "stale"]),
        ("put-again", ["stale"]),
        ("tombstone", ["none", "stale"]),
        ("put-large", ["stale"]),
    ],
    ids=["put-new", "put-again", "tombstone", "put-large"],
)
def test_torn_last_record_is_dropped_at_every_offset(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, last: str, hints: list[str]
) -> None:
    """Guards recovery from a write torn at any byte: the torn record (a put of a new key, a
    put of a deleted key created again, a tombstone, a large put) is lost, whatever its kind,
    and nothing else is; a torn tombstone means the delete never happened, so the key is back
    with its older value. The open that cuts the tail and the next one agree byte for byte."""
    caplog.set_level(logging.WARNING, logger="aiokv")
    built = build(tmp_path / "built", last)
    assert built.before != built.after
    if last == "tombstone":  # the delete was never durable: the key has its older value
        assert built.before["a04"] is not None
        assert built.after["a04"] is None
    offsets = torn_offsets(built, sampled=last == "put-large")
    cases = [
        (
            f"cut {offset} bytes into the last record",
            truncate_at(built.last_start + offset),
            hint,
            built.before,
            built.last_start,
        )
        for hint in hints
        for offset in offsets
    ]
    run_trials(tmp_path / "store", built, cases, caplog)


@pytest.mark.parametrize("kind", ["zeros", "random"])
def test_junk_after_the_last_record_is_cut_and_nothing_else(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    """Guards recovery from bytes past the last whole record (a write whose size reached the
    disk but not its data, or garbage): they are cut off, every record is kept, with or without
    a hint up to the last record, and a second open changes nothing."""
    caplog.set_level(logging.WARNING, logger="aiokv")
    built = build(tmp_path / "built", "put-new")
    rng = random.Random(JUNK_SEED)
    cases = []
    for length in JUNK_LENGTHS:
        junk = bytes(length) if kind == "zeros" else rng.randbytes(length)
        for hint in ("none", "stale", "final"):
            damage = append(junk)
            name = f"{length} bytes of {kind} (seed {JUNK_SEED})"
            cases.append((name, damage, hint, built.after, built.last_end))
    run_trials(tmp_path / "store", built, cases, caplog)

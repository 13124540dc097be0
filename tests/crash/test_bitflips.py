"""Random damage to sealed segments and hint files: never a wrong value, never a stray error.

A store of a few sealed segments (each with its hint) is built once and closed. Each trial lays
a fresh copy of its files, damages one sealed segment or one hint file (a flipped bit, a burst
of bytes, or a length field overwritten, sometimes with its checksum recomputed so that the
framing checks rather than the CRC must catch it), opens the store and reads every key the
store ever held.

What must hold, whatever the damage:

* open either succeeds or raises :class:`CorruptionError`; any other exception is a bug;
* no read returns a value other than the model's, and none raises anything but the model's
  answer (the value, or ``KeyNotFoundError`` for a deleted key) or ``CorruptionError``;
* ``CorruptionError`` from a read only for a key whose own record was damaged;
* a damaged hint changes nothing: the store falls back to scanning and every read is exact;
* a damaged sealed segment whose hint is gone is scanned, and the scan refuses the open;
* a damaged file header refuses the open;
* memory stays bounded: no garbage length makes the store allocate more than a few MiB.

``KeyNotFoundError`` for a key the model holds is never right here: every sealed segment is
either covered by its hint (so each live key stays indexed, and a damaged record is reported
when read) or scanned (so the damage refuses the open). Only the newest log segment may lose
records to a torn tail, and it is never damaged here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import shutil
import struct
import tracemalloc
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _internals import MIN_SEGMENT_MAX_BYTES

from aiokv import (
    AsyncDataStore,
    CorruptionError,
    KeyNotFoundError,
    ManualClock,
)

pytestmark = pytest.mark.slow

SEED = 0x5EED_B17F
TRIALS = 1_000  # per soak factor
NOW = 1_700_000_000.0
MAX_SIZE = 2**20
MEMORY_LIMIT = 64 * 2**20  # the peak of traced allocations during one open and its reads
MAX_REPORTED = 25  # failures described in the message; all are counted

# Independent of aiokv's own codec: the layouts documented in _record.py and _hint.py.
FILE_HEADER = 32
RECORD_HEADER = struct.Struct("<IBBBBIQd")  # crc, version, kind, key_len, enc, value_len, ...
PUT, DELETE = 1, 2
HINT_HEADER = 32
HINT_TRAILER = 12

Model = dict[str, "dict[str, Any] | None"]


def store_options(clock: ManualClock) -> dict[str, Any]:
    return {
        "max_size": MAX_SIZE,
        "segment_max_bytes": MIN_SEGMENT_MAX_BYTES,
        "compact_dead_ratio": None,  # no background work: each trial sees only its damage
        "reaper_interval_s": 3600.0,
        "clock": clock,
    }


def key_for(i: int) -> str:
    return [f"k{i:03d}", f"ключ-{i}", f"🙂{i}/x", f"key\x00{i}"][i % 4]


def value_for(i: int, generation: int = 0) -> dict[str, Any]:
    value: dict[str, Any] = {
        "i": i,
        "g": generation,
        "pad": "p" * (350 + (i * 97) % 550),
        "u": "é✓🙂",
        "l": [1, None, True, 1.5],
    }
    if i % 9 == 0:
        value["big"] = 2**70 + i  # beyond 64 bits: stored with the stdlib encoding
    return value


async def build_store(path: Path) -> Model:
    """Write the store every trial starts from; return the model of what it holds."""
    model: Model = {}
    async with AsyncDataStore(path, **store_options(ManualClock(NOW))) as store:
        for i in range(120):
            ttl = 10**6 if i % 5 == 0 else None  # far off: a nonzero expiry, never reached
            await store.create(key_for(i), value_for(i), ttl=ttl)
            model[key_for(i)] = value_for(i)
        for i in range(0, 120, 6):  # tombstones in later segments than their targets
            await store.delete(key_for(i))
            model[key_for(i)] = None
        for i in range(0, 120, 12):  # created again after the delete
            await store.create(key_for(i), value_for(i, 1))
            model[key_for(i)] = value_for(i, 1)
        for i in range(120, 140):
            await store.create(key_for(i), value_for(i))
            model[key_for(i)] = value_for(i)
        for i in range(121, 140, 4):
            await store.delete(key_for(i))
            model[key_for(i)] = None
    return model


@dataclass(frozen=True)
class Rec:
    """One record of a segment, parsed from the pristine bytes."""

    offset: int
    size: int
    kind: int
    key: str
    seq: int


@dataclass
class Pristine:
    files: dict[str, bytes]
    model: Model
    records: dict[str, list[Rec]]  # segment file name -> its records in file order
    sealed: list[str]  # sealed segment file names
    hints: list[str]
    live: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # key -> (file, start, end)
    reprs: dict[str, str] = field(default_factory=dict)  # key -> canonical(model value)

    def boundaries(self, name: str) -> set[int]:
        recs = self.records[name]
        return {r.offset for r in recs} | {r.offset + r.size for r in recs}


def parse_segment(data: bytes) -> list[Rec]:
    recs = []
    offset = FILE_HEADER
    while offset < len(data):
        _crc, _version, kind, key_len, _enc, value_len, seq, _exp = RECORD_HEADER.unpack_from(
            data, offset
        )
        size = RECORD_HEADER.size + key_len + value_len
        key = data[offset + RECORD_HEADER.size : offset + RECORD_HEADER.size + key_len]
        recs.append(Rec(offset, size, kind, key.decode(), seq))
        offset += size
    assert offset == len(data)
    return recs


def load_pristine(path: Path, model: Model) -> Pristine:
    files = {p.name: p.read_bytes() for p in path.iterdir() if p.name != "LOCK"}
    segments = sorted(name for name in files if name.endswith(".data"))
    records = {name: parse_segment(files[name]) for name in segments}
    pristine = Pristine(
        files=files,
        model=model,
        records=records,
        sealed=segments[:-1],  # no compaction ran: the newest segment is the active log
        hints=sorted(name for name in files if name.endswith(".hint")),
    )
    newest: dict[str, tuple[int, int, str, Rec]] = {}
    for name, recs in records.items():
        for rec in recs:
            if rec.key not in newest or rec.seq > newest[rec.key][0]:
                newest[rec.key] = (rec.seq, rec.kind, name, rec)
    for key, (_seq, kind, name, rec) in newest.items():
        if kind == PUT:
            pristine.live[key] = (name, rec.offset, rec.offset + rec.size)
    pristine.reprs = {key: canonical(value) for key, value in model.items()}
    # The parse agrees with the model: the same keys are live.
    assert set(pristine.live) == {k for k, v in model.items() if v is not None}
    return pristine


# -- damage --------------------------------------------------------------------------------


@dataclass
class Damage:
    """What a trial did to which file; ``start``/``end`` bound the bytes it changed."""

    target: str
    mode: str
    start: int
    end: int
    forged: bool = False
    drop_hint: bool = False
    detail: str = ""

    def describe(self) -> str:
        extra = " forged-crc" if self.forged else ""
        extra += " hint-dropped" if self.drop_hint else ""
        return f"{self.mode} of {self.target}[{self.start}:{self.end}]{extra} {self.detail}".strip()


def flip_bit(rng: random.Random, data: bytearray, low: int, high: int) -> tuple[int, int, str]:
    position = rng.randrange(low, high)
    bit = rng.randrange(8)
    data[position] ^= 1 << bit
    return position, position + 1, f"bit {bit}"


def burst(rng: random.Random, data: bytearray, low: int, high: int) -> tuple[int, int, str]:
    length = rng.randint(2, 16)
    start = rng.randrange(low, high)
    end = min(start + length, len(data))
    for position in range(start, end):
        data[position] ^= rng.randrange(1, 256)  # every byte in the burst changes
    return start, end, ""


def pick(rng: random.Random, candidates: list[int], original: int) -> int:
    choices = [c for c in candidates if c != original]
    return rng.choice(choices)


def damage_segment_length(
    rng: random.Random, pristine: Pristine, name: str, data: bytearray
) -> Damage:
    """Overwrite a record's key_len or value_len, and maybe recompute its CRC to match."""
    rec = rng.choice(pristine.records[name])
    _crc, _v, _kind, key_len, _enc, value_len, _seq, _exp = RECORD_HEADER.unpack_from(
        data, rec.offset
    )
    if rng.random() < 0.5:
        new_key_len = pick(
            rng, [0, 1, key_len - 1, key_len + 1, 127, 128, 129, 255, rng.randrange(256)], key_len
        )
        new_key_len %= 256
        data[rec.offset + 6] = new_key_len
        new_value_len = value_len
        span = (rec.offset + 6, rec.offset + 7)
        detail = f"key_len {key_len} -> {new_key_len}"
    else:
        new_value_len = pick(
            rng,
            [
                0,
                1,
                4,
                value_len - 1,
                value_len + 1,
                16384,
                16385,
                0x7FFF_FFFF,
                0xFFFF_FFFF,
                rng.randrange(2 * value_len + 2),
                rng.randrange(2**32),
            ],
            value_len,
        )
        struct.pack_into("<I", data, rec.offset + 8, new_value_len)
        new_key_len = key_len
        span = (rec.offset + 8, rec.offset + 12)
        detail = f"value_len {value_len} -> {new_value_len}"
    forged = False
    claimed_end = rec.offset + RECORD_HEADER.size + new_key_len + new_value_len
    # A forged CRC over an extent ending on another record's boundary would make the damage
    # undetectable by any checksum (the record would swallow its neighbours whole), so that
    # case is left unforged; everywhere else the framing, not the CRC, must catch it.
    if (
        rng.random() < 0.5
        and claimed_end <= len(data)
        and claimed_end not in pristine.boundaries(name)
    ):
        crc = zlib.crc32(data[rec.offset + 4 : claimed_end])
        struct.pack_into("<I", data, rec.offset, crc)
        forged = True
        span = (rec.offset, span[1])
    return Damage(name, "length", span[0], span[1], forged=forged, detail=detail)


def damage_hint_length(rng: random.Random, data: bytearray, name: str) -> Damage:
    """Overwrite a hint's count, keys length, covered, a key length or a record size."""
    size = len(data)
    count, keys_length, _crc = struct.unpack_from("<III", data, size - HINT_TRAILER)
    (covered,) = struct.unpack_from("<Q", data, 24)
    fields = ["count", "keys_length", "covered"]
    if count:
        fields += ["key_len", "size"]
    which = rng.choice(fields)
    if which == "count":
        new = pick(rng, [0, 1, count - 1, count + 1, 0xFFFF_FFFF, rng.randrange(2**32)], count)
        new %= 2**32
        struct.pack_into("<I", data, size - HINT_TRAILER, new)
        span = (size - HINT_TRAILER, size - HINT_TRAILER + 4)
        detail = f"count {count} -> {new}"
    elif which == "keys_length":
        new = pick(
            rng,
            [0, keys_length - 1, keys_length + 1, 0xFFFF_FFFF, rng.randrange(2**32)],
            keys_length,
        )
        new %= 2**32
        struct.pack_into("<I", data, size - 8, new)
        span = (size - 8, size - 4)
        detail = f"keys_length {keys_length} -> {new}"
    elif which == "covered":
        new = pick(
            rng,
            [0, 31, 32, covered - 1, covered + 1, covered // 2, 2**64 - 1, rng.randrange(2**64)],
            covered,
        )
        struct.pack_into("<Q", data, 24, new)
        span = (24, 32)
        detail = f"covered {covered} -> {new}"
    elif which == "key_len":
        entry = rng.randrange(count)
        position = HINT_HEADER + count + entry
        old = data[position]
        new = pick(rng, [0, old - 1, old + 1, 128, 129, 255, rng.randrange(256)], old) % 256
        data[position] = new
        span = (position, position + 1)
        detail = f"entry {entry} key length {old} -> {new}"
    else:
        entry = rng.randrange(count)
        position = HINT_HEADER + 6 * count + 4 * entry
        (old,) = struct.unpack_from("<I", data, position)
        new = pick(
            rng, [0, 1, old - 1, old + 1, 0xFFFF, 0x10000, 0xFFFF_FFFF, rng.randrange(2**32)], old
        )
        new %= 2**32
        struct.pack_into("<I", data, position, new)
        span = (position, position + 4)
        detail = f"entry {entry} size {old} -> {new}"
    forged = rng.random() < 0.5
    if forged:
        struct.pack_into("<I", data, size - 4, zlib.crc32(data[: size - 4]))
    return Damage(name, "length", span[0], span[1], forged=forged, detail=detail)


def make_damage(rng: random.Random, pristine: Pristine) -> tuple[Damage, dict[str, bytes]]:
    """Choose and apply one damage; return it and the files the trial's store holds."""
    files = dict(pristine.files)
    mode = rng.choices(["flip", "burst", "length"], weights=[4, 3, 3])[0]
    if rng.random() < 0.55:
        name = rng.choice(pristine.sealed)
        data = bytearray(files[name])
        if mode == "length":
            damage = damage_segment_length(rng, pristine, name, data)
        else:
            # One in ten lands in the file header, which a hint cannot stand in for.
            low, high = (0, FILE_HEADER) if rng.random() < 0.1 else (FILE_HEADER, len(data))
            start, end, detail = (flip_bit if mode == "flip" else burst)(rng, data, low, high)
            damage = Damage(name, mode, start, end, detail=detail)
        if rng.random() < 0.2:
            damage.drop_hint = True
            del files[name.replace(".data", ".hint")]
    else:
        name = rng.choice(pristine.hints)
        data = bytearray(files[name])
        if mode == "length":
            damage = damage_hint_length(rng, data, name)
        else:
            start, end, detail = (flip_bit if mode == "flip" else burst)(rng, data, 0, len(data))
            damage = Damage(name, mode, start, end, detail=detail)
    files[name] = bytes(data)
    return damage, files


def lay_out(path: Path, files: dict[str, bytes]) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(mode=0o700)
    for name, data in files.items():
        fd = os.open(path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


# -- the trials ----------------------------------------------------------------------------


def canonical(value: object) -> str:
    """Tells apart what ``==`` does not (``1``, ``1.0`` and ``True``, the order of keys)."""
    return repr(value)


def hit_keys(pristine: Pristine, damage: Damage) -> set[str]:
    """The live keys whose own record overlaps the damaged bytes."""
    if damage.target.endswith(".hint"):
        return set()
    return {
        key
        for key, (name, start, end) in pristine.live.items()
        if name == damage.target and start < damage.end and damage.start < end
    }


@dataclass
class Outcome:
    kind: str  # "open refused", "reads all fine", "some CorruptionError"
    problems: list[str]
    peak: int


async def run_trial(path: Path, pristine: Pristine, damage: Damage) -> Outcome:
    problems: list[str] = []
    in_header = damage.target.endswith(".data") and damage.start < FILE_HEADER
    hit = hit_keys(pristine, damage)
    tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    store = AsyncDataStore(path, **store_options(ManualClock(NOW)))
    try:
        await store.open()
    except CorruptionError:
        if damage.target.endswith(".hint"):
            problems.append("open refused for a damaged hint (it must fall back to a scan)")
        return Outcome("open refused", problems, tracemalloc.get_traced_memory()[1] - baseline)
    except Exception as exc:  # any other type is a bug
        problems.append(f"open raised {type(exc).__name__}: {exc}")
        return Outcome("open refused", problems, tracemalloc.get_traced_memory()[1] - baseline)
    corrupt = 0
    expected_reprs = pristine.reprs
    try:
        if in_header:
            problems.append("open succeeded with a damaged file header")
        if damage.drop_hint:
            problems.append("open succeeded with a damaged segment and no hint to skip it")
        for key, expected in pristine.model.items():
            try:
                got = await store.read(key)
            except CorruptionError as exc:
                corrupt += 1
                if key not in hit:
                    problems.append(f"read {key!r}: CorruptionError for an undamaged record: {exc}")
                continue
            except KeyNotFoundError:
                if expected is not None:
                    problems.append(f"read {key!r}: KeyNotFoundError, but the key is live")
                continue
            except Exception as exc:
                problems.append(f"read {key!r} raised {type(exc).__name__}: {exc}")
                continue
            if expected is None:
                problems.append(f"read {key!r}: returned {got!r} for a deleted key")
            elif canonical(got) != expected_reprs[key]:
                problems.append(f"read {key!r}: WRONG VALUE {got!r}")
            elif key in hit:
                problems.append(f"read {key!r}: the value came back from a damaged record")
    finally:
        try:
            await store.close()
        except Exception as exc:
            problems.append(f"close raised {type(exc).__name__}: {exc}")
    peak = tracemalloc.get_traced_memory()[1] - baseline
    return Outcome("some CorruptionError" if corrupt else "reads all fine", problems, peak)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    """The store every trial damages a copy of, built once per module."""
    path = tmp_path_factory.mktemp("bitflips") / "pristine"
    model = asyncio.run(build_store(path))
    made = load_pristine(path, model)
    assert len(made.sealed) >= 3, "the store should have several sealed segments"
    assert len(made.hints) == len(made.sealed) + 1, "every segment should have a hint"
    return made


async def test_random_damage_never_yields_a_wrong_value_or_a_stray_error(
    tmp_path: Path, soak: int, caplog: pytest.LogCaptureFixture, pristine: Pristine
) -> None:
    """Guards the corruption contract of open and read against ~1,000 random damages."""
    caplog.set_level(logging.ERROR, logger="aiokv")  # warnings expected; errors are not
    trials = TRIALS * soak
    outcomes: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    failures: list[str] = []
    peak = 0
    trial_path = tmp_path / "trial"
    tracemalloc.start()
    try:
        for trial in range(trials):
            seed = SEED * 1_000_003 + trial
            rng = random.Random(seed)
            damage, files = make_damage(rng, pristine)
            lay_out(trial_path, files)
            caplog.clear()
            outcome = await run_trial(trial_path, pristine, damage)
            problems = list(outcome.problems)
            problems += [f"logged an error: {r.getMessage()}" for r in caplog.records]
            if outcome.peak > MEMORY_LIMIT:
                problems.append(f"peak traced memory {outcome.peak} bytes")
            peak = max(peak, outcome.peak)
            outcomes[outcome.kind] += 1
            kinds[f"{damage.target.rsplit('.', 1)[1]} {damage.mode}"] += 1
            if problems:
                failures.append(
                    f"trial {trial} (seed {seed}): {damage.describe()}: " + "; ".join(problems)
                )
            await asyncio.sleep(0)
    finally:
        tracemalloc.stop()
    print(f"\n{trials} trials: {dict(outcomes)}; damage {dict(kinds)}; peak {peak} bytes")
    assert not failures, (
        f"{len(failures)} of {trials} trials went wrong (SEED {SEED:#x}):\n"
        + "\n".join(failures[:MAX_REPORTED])
    )
    for kind in ("open refused", "reads all fine", "some CorruptionError"):
        assert outcomes[kind] > 0, f"no trial ended in {kind!r}: {dict(outcomes)}"


# -- hints whose checksum was made to match --------------------------------------------------


def forge_hint(pristine: Pristine, hint: str, field_name: str) -> bytes:
    """The ``hint`` file with one length field off by one and its CRC recomputed to match.

    ``size`` changes the entry of a record that is some key's live one, so a read uses it.
    """
    out = bytearray(pristine.files[hint])
    size = len(out)
    count = struct.unpack_from("<I", out, size - HINT_TRAILER)[0]
    segment = hint.replace(".hint", ".data")
    live_entry = next(
        entry
        for entry, rec in enumerate(pristine.records[segment])
        if pristine.live.get(rec.key, ("",))[0] == segment
        and pristine.live[rec.key][1] == rec.offset
    )
    position, fmt = {
        "count": (size - HINT_TRAILER, "<I"),
        "keys_length": (size - 8, "<I"),
        "covered": (24, "<Q"),
        "key_length": (HINT_HEADER + count, "<B"),
        "size": (HINT_HEADER + 6 * count + 4 * live_entry, "<I"),
    }[field_name]
    (old,) = struct.unpack_from(fmt, out, position)
    struct.pack_into(fmt, out, position, old - 1 if field_name == "covered" else old + 1)
    struct.pack_into("<I", out, size - 4, zlib.crc32(out[: size - 4]))
    return bytes(out)


@pytest.mark.parametrize(
    "field_name",
    ["count", "keys_length", "key_length", "size", "covered"],
)
@pytest.mark.parametrize("which", ["sealed", "active"])
async def test_hint_with_a_matching_crc_but_inconsistent_lengths_is_ignored(
    tmp_path: Path, pristine: Pristine, field_name: str, which: str
) -> None:
    """Guards "any doubt about a hint means a scan" beyond the CRC: a hint written wrong (its
    entries do not tile the bytes it claims to cover) must be ignored, so every read is the
    model's and no data file is changed (a wrong ``covered`` must not cut off good records)."""
    hint = pristine.hints[0] if which == "sealed" else pristine.hints[-1]
    files = dict(pristine.files)
    files[hint] = forge_hint(pristine, hint, field_name)
    path = tmp_path / "store"
    lay_out(path, files)
    results: dict[str, str] = {}
    async with AsyncDataStore(path, **store_options(ManualClock(NOW))) as store:
        for key in pristine.model:
            try:
                results[key] = canonical(await store.read(key))
            except KeyNotFoundError:
                results[key] = canonical(None)
            except CorruptionError as exc:
                results[key] = f"CorruptionError: {exc}"
    wrong = {key: got for key, got in results.items() if got != pristine.reprs[key]}
    assert not wrong, f"{len(wrong)} reads changed by a forged {field_name} in {hint}: {wrong}"
    for name in pristine.files:
        if name.endswith(".data"):
            assert (path / name).read_bytes() == pristine.files[name], f"{name} was changed"

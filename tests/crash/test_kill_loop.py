"""SIGKILL at random moments, round after round, on one store: nothing acknowledged is lost.

A child process opens the store, reports what it sees, then runs random creates, TTL creates and
deletes on a small pool of keys, one at a time, printing ``begin ...`` before each operation and
``ok ...`` / ``err ...`` once it is acknowledged. The parent kills it at a random moment and
checks the store against a model built from the acknowledged operations alone: every
acknowledged create is there with its exact value, every acknowledged delete stays deleted,
the one operation in flight (begun, not acknowledged) is either wholly applied or not at all,
and nothing that was never written appears. The same directory is reopened by the next child,
so state accumulates, small segments roll over and background compaction runs, and is killed,
during the loop.
"""

from __future__ import annotations

import json
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _internals import (
    FILE_COMPACTED,
    FILE_HEADER_SIZE,
    MIN_SEGMENT_MAX_BYTES,
    BadRecord,
    decode_file_header,
    parse_segment_name,
)
from _proc import Child, start_child

from aiokv import AsyncDataStore, KeyNotFoundError

pytestmark = pytest.mark.slow

ROUNDS = 50  # per durability mode, times the soak factor
KEY_COUNT = 50
MAX_ACKS = 60  # the most acknowledged operations a round waits for before its kill
TTL_S = 10**6  # far beyond the test: a TTL key must behave as a plain one here
SEGMENT_BYTES = MIN_SEGMENT_MAX_BYTES  # ~33 KiB: a roll-over every few rounds
SEED_BASE = {"flush": 1_000_000, "fsync": 2_000_000}
KEYS = [f"k{i:02d}" for i in range(KEY_COUNT)]

Value = dict[str, Any]

# argv: path, durability, seed, segment_max_bytes, ttl, then the pool of keys.
CHILD = """
    import asyncio
    import json
    import random
    import sys
    import time

    from aiokv import AsyncDataStore, DataStoreError, KeyNotFoundError

    path, durability = sys.argv[1], sys.argv[2]
    seed, segment_bytes, ttl = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    keys = sys.argv[6:]
    rng = random.Random(seed)


    def emit(*parts):
        print(*parts, flush=True)


    def dump(value):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)


    async def main():
        deadline = time.monotonic() + 30  # a safety net: the parent kills the child long before
        async with AsyncDataStore(
            path, durability=durability, segment_max_bytes=segment_bytes
        ) as store:
            # What this process found at open, for the parent to check against its model.
            for key in keys:
                try:
                    found = await store.read(key)
                except KeyNotFoundError:
                    found = None
                emit("seen", key, dump(found))
            emit("live", (await store.stats()).live_keys)
            n = 0
            while time.monotonic() < deadline:
                n += 1
                key = rng.choice(keys)
                roll = rng.random()
                op = "create" if roll < 0.4 else "create_ttl" if roll < 0.55 else "delete"
                value = None
                if op != "delete":
                    value = {"seed": seed, "n": n, "pad": "v" * rng.randrange(0, 600)}
                emit("begin", op, key, dump(value))
                try:
                    if op == "delete":
                        await store.delete(key)
                    elif op == "create":
                        await store.create(key, value)
                    else:
                        await store.create(key, value, ttl=ttl)
                except DataStoreError as exc:
                    emit("err", type(exc).__name__, op, key)
                else:
                    emit("ok", op, key)
        emit("finished")


    asyncio.run(main())
"""


@dataclass(frozen=True)
class Op:
    """An operation the child began: its kind, key and (for a create) value."""

    op: str
    key: str
    value: Value | None


def show(value: Value | None) -> str:
    """A value as a failure message gives it: who wrote it, and its padding's length."""
    if value is None:
        return "absent"
    if set(value) == {"seed", "n", "pad"} and value["pad"] == "v" * len(value["pad"]):
        return f"{{seed {value['seed']}, n {value['n']}, pad {len(value['pad'])}}}"
    return repr(value)[:300]


class Mismatch(AssertionError):
    """The store and the model disagree."""


class Model:
    """The store's state as the acknowledged operations make it, plus at most one operation
    in flight at a kill whose outcome is not known until the store is next looked at."""

    def __init__(self, durability: str) -> None:
        self.durability = durability
        self.live: dict[str, Value] = {}
        self.pending: Op | None = None
        self.round = 0
        self.seed = 0
        self.lines: list[str] = []
        self.upto = 0  # how many of ``lines`` had been replayed
        self.stderr = ""
        self.acked = 0
        self.in_flight_kills = 0
        self.last_check = "none"

    def fail(self, message: str) -> Mismatch:
        shown = self.lines[max(0, self.upto - 12) : self.upto]
        tail = "\n".join(f"    {line[:120]}" for line in shown)
        pending = "none"
        if self.pending is not None:
            pending = f"{self.pending.op} {self.pending.key} {show(self.pending.value)}"
        return Mismatch(
            f"durability {self.durability}, round {self.round} (seed {self.seed}): {message}\n"
            f"  operation in flight at the last kill: {pending}\n"
            f"  the last check that passed: {self.last_check}\n"
            f"  the last lines of the child whose kill left this state:\n{tail}\n"
            f"  its stderr:\n{self.stderr[-2000:]}"
        )

    def applied(self, op: Op) -> Value | None:
        """The key's value once ``op`` has taken effect on the model."""
        current = self.live.get(op.key)
        if op.op == "delete":
            return None
        return current if current is not None else op.value

    def resolve(self, seen: dict[str, Value | None], live_keys: int, where: str) -> None:
        """Check what ``where`` found against the model and settle the operation in flight."""
        for key in KEYS:
            expected = self.live.get(key)
            actual = seen[key]
            if actual == expected:
                continue
            if self.pending is not None and key == self.pending.key:
                applied = self.applied(self.pending)
                if actual == applied:
                    continue
                raise self.fail(
                    f"{where}: key {key!r}: expected {show(expected)} (or, with the operation "
                    f"in flight applied, {show(applied)}), actual {show(actual)}"
                )
            raise self.fail(
                f"{where}: key {key!r}: expected {show(expected)}, actual {show(actual)}"
            )
        self.live = {key: value for key, value in seen.items() if value is not None}
        self.pending = None
        if live_keys != len(self.live):
            raise self.fail(
                f"{where}: {live_keys} live keys, expected {len(self.live)} "
                "(a key outside the pool appeared, or the count is wrong)"
            )
        self.last_check = f"{where}, round {self.round}"

    def acknowledge(self, op: Op, outcome: str) -> None:
        """Apply an acknowledged operation, checking that its outcome fits the model."""
        present = op.key in self.live
        if outcome == "ok" and (op.op == "delete") == present:
            self.acked += 1
            if op.op == "delete":
                del self.live[op.key]
            else:
                assert op.value is not None
                self.live[op.key] = op.value
            return
        if outcome == "KeyExistsError" and op.op != "delete" and present:
            return
        if outcome == "KeyNotFoundError" and op.op == "delete" and not present:
            return
        raise self.fail(
            f"{op.op} of key {op.key!r} was answered {outcome}, but the model holds "
            f"{show(self.live.get(op.key))} for it"
        )

    def take_round(self, lines: list[str], stderr: str) -> None:
        """Replay the lines a killed child printed."""
        seen: dict[str, Value | None] = {}
        # What the child found at open was left by the children before it: a failure shows
        # the last lines of the one before until this child has reported what it found.
        began: Op | None = None
        for number, line in enumerate(lines, 1):
            if self.lines is lines:
                self.upto = number
            word, _, rest = line.partition(" ")
            if word == "seen":
                key, found = rest.split(" ", 1)
                seen[key] = json.loads(found)
            elif word == "live":
                self.resolve(seen, int(rest), "this round's child at open")
                self.lines, self.stderr, self.upto = lines, stderr, number
            elif word == "begin":
                if began is not None or self.pending is not None:
                    raise self.fail(f"{line!r} while another operation is unsettled")
                op, key, value = rest.split(" ", 2)
                began = Op(op, key, json.loads(value))
            elif word in ("ok", "err"):
                parts = rest.split()
                outcome = "ok" if word == "ok" else parts.pop(0)
                if began is None or [began.op, began.key] != parts:
                    raise self.fail(f"{line!r} answers no operation in flight")
                self.acknowledge(began, outcome)
                began = None
            else:
                raise self.fail(f"unexpected line {line!r} (the child must not finish)")
        if began is not None:
            self.pending = began
            self.in_flight_kills += 1


def run_child(child: Child, rng: random.Random) -> list[str]:
    """Read the child's lines until a randomly chosen moment, SIGKILL it, return every line."""
    how = rng.choice(["after-ack", "after-begin", "delay"])
    count = rng.randint(1, MAX_ACKS)
    # From the start of the process, so that some kills land while the store is opening.
    kill_at = time.monotonic() + rng.uniform(0.05, 0.6)
    lines: list[str] = []
    while True:
        if how == "delay":
            remaining = kill_at - time.monotonic()
            if remaining <= 0:
                break
            try:
                line = child.read_line(remaining)
            except TimeoutError:
                break
        else:
            line = child.read_line(30)
        if line is None:
            break  # the child died by itself: take_round reports the missing lines
        lines.append(line)
        if (how == "after-ack" and line.startswith(("ok ", "err "))) or (
            how == "after-begin" and line.startswith("begin ")
        ):
            count -= 1
        if count == 0:
            break
    status = child.kill()
    lines.extend(child.rest_lines())
    if status != -signal.SIGKILL:
        raise AssertionError(
            f"the child exited with {status} before it was killed; its last lines: "
            f"{lines[-5:]}\nstderr:\n{child.stderr_text()}"
        )
    return lines


async def look(path: Path) -> tuple[dict[str, Value | None], int]:
    """Every pool key's value (None: absent) and the live key count, as a fresh open sees them."""
    seen: dict[str, Value | None] = {}
    async with AsyncDataStore(path, segment_max_bytes=SEGMENT_BYTES) as store:
        for key in KEYS:
            try:
                seen[key] = await store.read(key)
            except KeyNotFoundError:
                seen[key] = None
        live_keys = (await store.stats()).live_keys
    return seen, live_keys


def segment_kinds(path: Path) -> dict[int, int]:
    kinds = {}
    for file in path.glob("*.data"):
        segment_id = parse_segment_name(file.name)
        if segment_id is not None:
            with open(file, "rb") as handle:
                head = handle.read(FILE_HEADER_SIZE)
            try:
                kinds[segment_id] = decode_file_header(head).kind
            except BadRecord:  # a creation the kill cut off: the next open removes it
                continue
    return kinds


@pytest.mark.parametrize("durability", ["flush", "fsync"])
async def test_random_kills_lose_no_acknowledged_operation(
    tmp_path: Path, soak: int, durability: str
) -> None:
    """Guards durability of acknowledged creates and deletes, atomicity of the operation in
    flight, and the absence of phantom keys, across repeated SIGKILLs that land during writes,
    roll-overs, background compaction and recovery itself."""
    path = tmp_path / "store"
    model = Model(durability)
    rounds = ROUNDS * soak
    most_segments = 0
    compacted = False
    for round_number in range(rounds):
        seed = SEED_BASE[durability] + round_number
        rng = random.Random(seed)
        model.round, model.seed = round_number, seed
        args = [path, durability, seed, SEGMENT_BYTES, TTL_S, *KEYS]
        with start_child(CHILD, *args, workdir=tmp_path, name=f"round{round_number}") as child:
            lines = run_child(child, rng)
            stderr = child.stderr_text()
        model.take_round(lines, stderr)
        kinds = segment_kinds(path)
        most_segments = max(most_segments, max(kinds, default=0))
        compacted = compacted or FILE_COMPACTED in kinds.values()
        # Mostly the parent looks at the store after each kill; sometimes the next child opens
        # the crashed directory directly, so recovery of a recovered, crashed store is run too
        # (that child's report of what it found at open is then the check).
        if round_number == rounds - 1 or rng.random() < 0.75:
            seen, live_keys = await look(path)
            model.resolve(seen, live_keys, "the parent's reopen")
    print(
        f"\n{rounds} rounds ({durability}): {model.acked} acknowledged operations, "
        f"{model.in_flight_kills} kills with one in flight, up to {most_segments} segments"
    )
    # The loop did what it is for: many acknowledged operations, roll-overs and compaction.
    assert model.acked >= rounds * 5, model.acked
    assert most_segments >= 5, f"only {most_segments} segments were made"
    assert compacted, "background compaction never ran during the loop"
    assert model.in_flight_kills, "no kill landed while an operation was in flight"

"""Laying out a batch: which ops of it are written, where, and which are refused.

Pure bookkeeping on the event-loop thread: nothing is written here. The writer plans a batch,
writes the bytes the plan made, then indexes what it accepted (see ``writer``).

An op is decided against the index as the ops before it in the batch left it: a create of a
live key is refused (``KeyExistsError``), a delete of an absent one too (``KeyNotFoundError``).
A create that would take the directory past ``max_size``, once the room every live key's delete
needs and the room of one compaction step are kept free, is refused with ``StoreFullError``
and listed in ``no_room``, for the writer to retry once compaction has reclaimed some.

A batch is laid out in the active segment. The op that first runs past the segment's end
(its records and its hint must fit ``segment_max_bytes``) opens the next segment if it is the
batch's first accepted op; otherwise it and every op after it are carried to the next batch,
which then opens the segment. So every batch is written to one segment, with one ``write``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

from aiokv import errors
from aiokv._bitcask.engine.space import Shared
from aiokv._bitcask.format.hint import HINT_OVERHEAD, entry_size
from aiokv._bitcask.format.record import (
    FILE_HEADER_SIZE,
    KIND_PUT,
    delete_size,
    encode_delete,
    encode_put,
    put_size,
)
from aiokv._bitcask.index.index import segment_of, tombstone_size
from aiokv._core.codec import VALUE_JSON
from aiokv.errors import DataStoreError, StoreFullError, StoreIOError, describe_key


@dataclass(slots=True)
class Op:
    """One queued create or delete, and the future its caller awaits."""

    kind: int
    key: str
    key_bytes: bytes
    value: bytes
    expiry: float
    future: asyncio.Future[None]
    encoding: int = VALUE_JSON  # of a put's value
    taken: bool = False  # the writer has decided it: it will be written or refused


@dataclass(slots=True)
class Accepted:
    """An op laid out in the batch: where its record goes and what it is numbered."""

    op: Op
    offset: int
    size: int
    seq: int
    target: int  # a tombstone's target segment; 0 for a put
    # A delete's: the location of the record it deletes, when that was in the index as the
    # batch was planned (None: written by an earlier op of the batch).
    deletes: int | None = None


@dataclass(slots=True, frozen=True)
class RollOver:
    """The segment a batch opens before its first record: its number and ``created_seq``."""

    segment_id: int
    created_seq: int


class Plan:
    """What planning a batch decided (a plain class: one is made for every batch)."""

    __slots__ = ("accepted", "carried", "failure", "no_room", "parts", "refused", "roll")

    def __init__(self) -> None:
        self.accepted: list[Accepted] = []
        self.refused: dict[int, DataStoreError] = {}  # id(op) -> its error
        self.no_room: list[Op] = []  # creates refused for want of room
        self.carried: list[Op] = []  # for the next batch, in queue order
        self.parts: list[bytes] = []  # the records, in order
        self.roll: RollOver | None = None
        self.failure: StoreIOError | None = None  # the write path cannot go on (Writer._fail)


SEGMENT_OVERHEAD: Final = FILE_HEADER_SIZE + HINT_OVERHEAD
"""What a segment costs before its first record: its file header and its hint's framing."""


def delete_reserve(tombstone_bytes: int, segment_bytes: int) -> int:
    """Room to keep free so that every live key can still be deleted.

    The tombstones and their hint entries (``tombstone_bytes``), plus the overhead of each
    segment they could spill into: a segment is sealed only when at least half full, so that
    is at most one per half segment of tombstones, plus the one a full active segment may
    need at once.
    """
    return tombstone_bytes + SEGMENT_OVERHEAD * (2 + tombstone_bytes // (segment_bytes // 2))


class Planner:
    """Plans the writer's batches, one at a time: the cursor, hint size, disk use and
    tombstone room as the ops laid out so far leave them.

    Made once per writer: the fixed options and shared objects are copied to its slots at
    construction and the per-batch state is reset by :meth:`plan` (a batch of one create is
    the common case, and building a planner for each cost a third of its planning).
    """

    __slots__ = (
        "_active_id",
        "_compaction_room",
        "_cursor",
        "_disk",
        "_hint",
        "_index",
        "_indexed",
        "_max_size",
        "_now",
        "_placed",
        "_plan",
        "_segment_bytes",
        "_shared",
        "_space",
        "_tombstones",
        "_touched",
    )

    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self._space = shared.space
        self._index = shared.index
        self._segment_bytes = shared.options.segment_bytes
        self._max_size = shared.options.max_size
        self._touched: dict[str, bool] = {}  # key -> live after the ops laid out so far
        self._placed: dict[str, int] = {}  # key -> the segment holding its live record
        self._indexed: dict[str, int] = {}  # key -> its live record's location in the index
        self._plan = Plan()

    def plan(self, batch: list[Op], hint_size: int, now: float) -> Plan:
        """Lay ``batch`` out after the active segment's records and its hint of
        ``hint_size`` bytes, deciding each op as of ``now``."""
        active = self._shared.active
        self._active_id = active.id
        self._cursor = active.size
        self._hint = hint_size  # the active segment's hint as it will be written
        self._disk = self._space.disk_bytes
        self._tombstones = self._index.tombstone_bytes
        # Creates leave one segment's room free so that compaction can always take a step.
        self._compaction_room = max(0, self._segment_bytes - self._space.compaction_bytes)
        self._now = now
        self._touched.clear()
        self._placed.clear()
        self._indexed.clear()
        plan = self._plan = Plan()
        for position, op in enumerate(batch):
            if op.future.done():
                continue  # cancelled by its caller before it was written: it never happened
            op.taken = True
            if not self._place(op):
                plan.carried = batch[position:]
                break
        return plan

    def _place(self, op: Op) -> bool:
        """Decide ``op`` and lay it out if accepted; False if it must wait for the next
        batch (it would open a new segment after other ops of this one)."""
        plan = self._plan
        is_put = op.kind == KIND_PUT
        error: DataStoreError | None = self._check_key(op, is_put)
        if error is not None:
            plan.refused[id(op)] = error
            return True
        size = put_size(op.key_bytes, op.value) if is_put else delete_size(op.key_bytes)
        hint_entry = entry_size(len(op.key_bytes))
        header = 0
        cursor = self._cursor
        if cursor + self._hint + size + hint_entry > self._segment_bytes and (
            cursor > FILE_HEADER_SIZE
        ):
            if plan.accepted:
                return False
            header = self._hint + FILE_HEADER_SIZE  # the sealed segment's hint, the new header
        after, error = self._check_room(op, is_put, size + hint_entry, header)
        if error is None and header:
            error = self._roll_over()
        if error is not None:
            plan.refused[id(op)] = error
            if is_put and isinstance(error, StoreFullError):
                plan.no_room.append(op)
            return True
        self._lay_out(op, is_put, size, hint_entry, after)
        return True

    def _check_key(self, op: Op, is_put: bool) -> DataStoreError | None:
        """A create of a live key or a delete of an absent one is refused."""
        key = op.key
        live = self._touched.get(key)
        if live is None:
            loc = self._index.get_live(op.key_bytes, self._now)
            live = loc is not None
            if loc is not None:
                self._placed[key] = segment_of(loc)
                self._indexed[key] = loc
        if is_put and live:
            return errors.key_exists(key)
        if not is_put and not live:
            return errors.key_not_found(key)
        return None

    def _check_room(
        self, op: Op, is_put: bool, size: int, header: int
    ) -> tuple[int, StoreFullError | None]:
        """The tombstone room after ``op``, and the error if its ``size`` bytes (record and
        hint entry) after ``header`` bytes do not fit under ``max_size``."""
        needed = self._disk + header + size + (HINT_OVERHEAD if header else self._hint)
        if not is_put:
            after = self._tombstones - tombstone_size(op.key_bytes)
            if needed > self._max_size:  # the delete reserve prevents it
                return after, StoreFullError(
                    f"store is full: no room for the delete marker of {describe_key(op.key)}"
                )
            return after, None
        # An expired entry still in the index already holds its tombstone's room.
        if self._touched.get(op.key, True) and op.key_bytes in self._index:
            after = self._tombstones
        else:
            after = self._tombstones + tombstone_size(op.key_bytes)
        reserve = delete_reserve(after, self._segment_bytes) + self._compaction_room
        if needed + reserve > self._max_size:
            return after, StoreFullError(
                f"store is full: creating {describe_key(op.key)} needs "
                f"{size - entry_size(len(op.key_bytes))} bytes, but {self._disk} of max_size "
                f"{self._max_size} are in use and {reserve} are kept free for deletes and "
                "compaction"
            )
        return after, None

    def _roll_over(self) -> StoreIOError | None:
        """Open the next segment at this op: numbered here, on the loop thread, where
        compaction takes numbers too."""
        space = self._space
        try:
            segment_id = space.take_segment_id()
        except StoreIOError as exc:
            self._plan.failure = exc
            return exc
        self._plan.roll = RollOver(segment_id, space.next_seq)
        self._disk += self._hint + FILE_HEADER_SIZE
        self._hint = HINT_OVERHEAD
        self._cursor = FILE_HEADER_SIZE
        return None

    def _lay_out(
        self, op: Op, is_put: bool, size: int, hint_entry: int, tombstones_after: int
    ) -> None:
        plan = self._plan
        key = op.key
        seq = self._space.take_seq()
        if is_put:
            plan.parts.append(encode_put(seq, op.key_bytes, op.value, op.expiry, op.encoding))
            roll = plan.roll
            self._placed[key] = roll.segment_id if roll else self._active_id
            plan.accepted.append(Accepted(op, self._cursor, size, seq, 0))
        else:
            target = self._placed[key]
            plan.parts.append(encode_delete(seq, op.key_bytes, target))
            deletes = self._indexed.pop(key, None)
            plan.accepted.append(Accepted(op, self._cursor, size, seq, target, deletes))
        self._cursor += size
        self._hint += hint_entry
        self._disk += size
        self._tombstones = tombstones_after
        self._touched[key] = is_put

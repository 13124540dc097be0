"""Laying out a batch: which ops of it are written, where, and which are refused.

Pure bookkeeping on the event-loop thread: nothing is written here. The writer plans a batch,
writes the bytes the plan made, then indexes what it accepted (see ``writer``).

An op is decided against the index as the ops before it in the batch left it: a create of a
live key is refused (``KeyExistsError``), a delete of an absent one too (``KeyNotFoundError``),
and a touch (a put of a live key's own value with a new deadline) of an absent one too, or,
if the key's record is no longer the one the touch read, sent back to read it again.
A create that would take the directory past ``max_size``, once the room every live key's delete
needs and the room of one compaction step are kept free, is refused with ``StoreFullError``
and listed in ``no_room``, for the writer to retry once compaction has reclaimed some.

A batch is laid out in the active segment. The op that first runs past the segment's end
(its records and its hint must fit ``segment_max_bytes``) opens the next segment if it is the
batch's first accepted op; otherwise it and every op after it are carried to the next batch,
which then opens the segment. So every batch is written to one segment, with one ``write``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import accumulate, repeat
from operator import attrgetter, methodcaller
from typing import Final, NamedTuple, Protocol, TypeAlias

from aiokv import errors
from aiokv._bitcask.engine.space import Shared
from aiokv._bitcask.format.hint import HINT_ENTRY_SIZE, HINT_OVERHEAD, entry_size
from aiokv._bitcask.format.record import (
    BATCH_SIZE,
    FILE_HEADER_SIZE,
    FILE_VERSION,
    HEADER_SIZE,
    KIND_BATCH,
    KIND_DELETE,
    KIND_PUT,
    MAX_SEGMENT_BYTES,
    TOMBSTONE_VALUE_SIZE,
    encode_batch_deletes,
    encode_batch_puts,
    encode_delete,
    encode_put,
    encode_puts,
)
from aiokv._bitcask.index.index import segment_of, tombstone_size, tombstone_sizes
from aiokv._core.codec import VALUE_JSON
from aiokv.errors import DataStoreError, StoreFullError, StoreIOError, describe_key


class Outcome(Protocol):
    """Where the writer answers an op: an ``asyncio.Future`` its caller awaits, or a
    thread's :class:`~aiokv._core.handoff.Handoff`."""

    def done(self) -> bool: ...
    def cancelled(self) -> bool: ...
    def set_result(self, result: None, /) -> None: ...
    def set_exception(self, error: BaseException, /) -> None: ...


@dataclass(slots=True)
class Batch:
    """The items of a ``create_many`` (``kind`` put) or a ``delete_many`` (delete): checked,
    encoded and free of duplicates; decided and written as one unit."""

    kind: int
    keys: list[str]
    key_bytes: list[bytes]
    values: list[bytes] = field(default_factory=list)  # puts: each value, encoded
    expiries: list[float] = field(default_factory=list)
    encodings: list[int] = field(default_factory=list)
    written: int = 0  # set by the planner: how many records it wrote (deletes: keys live)


@dataclass(slots=True)
class Op:
    """One queued create or delete, or a batch of either, and where its outcome goes."""

    kind: int
    key: str
    key_bytes: bytes
    value: bytes
    expiry: float
    future: Outcome
    encoding: int = VALUE_JSON  # of a put's value
    # A touch: a put of a live key's own value with a new deadline, accepted only if the key's
    # record is still the one at this location (0: an ordinary create).
    rewrites: int = 0
    # The writer has decided it (it will be written or refused) and its batch has not ended.
    taken: bool = False
    batch: Batch | None = None  # for kind KIND_BATCH: its items


class RecordMoved(DataStoreError):
    """A touch's record was replaced, deleted or moved before the writer reached it: the
    caller reads the key again and retries. Never leaves the store."""


Accepted: TypeAlias = "tuple[Op, int, int, int, int, int | None]"
"""An op laid out in the batch: ``(op, offset, size, seq, target, deletes)``: where its record
goes, its size and sequence number; a tombstone's target segment (0 for a put) and, for a
delete, the location of the record it deletes when that was in the index as the batch was
planned (None: written by an earlier op of the batch). A tuple, not a class: one is made for
every op written, on the create path."""


@dataclass(slots=True, frozen=True)
class RollOver:
    """The segment a batch opens before its first record: its number and ``created_seq``."""

    segment_id: int
    created_seq: int


class Creates(NamedTuple):
    """A batch planned as a whole (:meth:`Planner._plan_creates`), in columns, for the
    writer to index and hint at once; ``tombstones`` is their deletes' room."""

    keys: list[bytes]
    offsets: list[int]
    sizes: list[int]
    seqs: range
    expiries: list[float]
    tombstones: int


class Deletes(NamedTuple):
    """A ``delete_many`` planned as a whole (:meth:`Planner._place_deletes`), in columns, for
    the writer to hint and index at once: the tombstones' places, and the segment and
    location of each key's record."""

    keys: list[bytes]
    offsets: list[int]
    sizes: list[int]
    seqs: range
    targets: list[int]
    locs: list[int]


class Plan:
    """What planning a batch decided (a plain class: one is made for every batch)."""

    __slots__ = (
        "accepted",
        "batch",
        "carried",
        "creates",
        "deletes",
        "failure",
        "no_room",
        "parts",
        "refused",
        "roll",
    )

    def __init__(self) -> None:
        self.accepted: list[Accepted] = []
        self.refused: dict[int, DataStoreError] = {}  # id(op) -> its error
        self.no_room: list[Op] = []  # creates refused for want of room
        self.carried: list[Op] = []  # for the next batch, in queue order
        self.parts: list[bytes | bytearray] = []  # the records, in order
        self.roll: RollOver | None = None
        self.failure: StoreIOError | None = None  # the write path cannot go on (Writer._fail)
        self.creates: Creates | None = None  # the batch as a whole, if planned so
        self.deletes: Deletes | None = None  # a delete_many, likewise
        self.batch: Op | None = None  # a create_many or delete_many laid out (its own ops
        # are in accepted)


# Field getters for the whole-batch passes of Planner._plan_creates.
_KIND = attrgetter("kind")
_FUTURE = attrgetter("future")
_KEY = attrgetter("key_bytes")
_VALUE = attrgetter("value")
_EXPIRY = attrgetter("expiry")
_ENCODING = attrgetter("encoding")
_REWRITES = attrgetter("rewrites")
_DONE = methodcaller("done")
_KINDS: Final = frozenset({KIND_PUT})


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
        self._touched: dict[bytes, bool] = {}  # key -> live after the ops laid out so far
        self._placed: dict[bytes, int] = {}  # key -> the segment holding its live record
        self._indexed: dict[bytes, int] = {}  # key -> its live record's location in the index
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
        # Creates leave one segment's room free so that compaction can always take a step
        # (the largest segment's: one that a batch made larger needs more).
        largest = max(self._segment_bytes, self._space.largest_segment)
        self._compaction_room = max(0, largest - self._space.compaction_bytes)
        self._now = now
        self._touched.clear()
        self._placed.clear()
        self._indexed.clear()
        plan = self._plan = Plan()
        if self._plan_creates(batch):
            return plan
        place = self._place
        for position, op in enumerate(batch):
            if op.future.done():
                continue  # cancelled by its caller before it was written: it never happened
            if op.kind == KIND_BATCH:
                # A batch is planned alone: first in a batch of its own, the ops after it
                # carried to the next.
                if plan.accepted or plan.refused:
                    plan.carried = batch[position:]
                else:
                    op.taken = True
                    self._place_batch(op)
                    plan.carried = batch[position + 1 :]
                break
            op.taken = True
            if not place(op):
                op.taken = False  # not decided: it waits for the next batch
                plan.carried = batch[position:]
                break
        return plan

    def _plan_creates(self, batch: list[Op]) -> bool:
        """Lay ``batch`` out as a whole if it is the common case: creates of distinct keys
        that the index holds nothing for, none cancelled, all fitting the active segment and
        ``max_size``. Each op would be accepted by :meth:`_place`, so deciding them together
        decides the same, with C-level passes over the batch instead of a Python loop.
        Returns False, having changed nothing, for any other batch.
        """
        if not _KINDS.issuperset(map(_KIND, batch)) or any(map(_REWRITES, batch)):
            return False
        if any(map(_DONE, map(_FUTURE, batch))):  # a caller was cancelled
            return False
        keys = list(map(_KEY, batch))
        if len(set(keys)) < len(keys) or self._index.any_indexed(keys):
            return False
        values = list(map(_VALUE, batch))
        key_bytes = sum(map(len, keys))
        records = HEADER_SIZE * len(keys) + key_bytes + sum(map(len, values))
        entries = HINT_ENTRY_SIZE * len(keys) + key_bytes
        if self._cursor + self._hint + records + entries > self._segment_bytes:
            return False
        tombstones = tombstone_sizes(len(keys), key_bytes)
        reserve = delete_reserve(self._tombstones + tombstones, self._segment_bytes)
        if self._disk + records + self._hint + entries + reserve + self._compaction_room > (
            self._max_size
        ):
            return False
        seqs = self._space.take_seqs(len(keys))
        expiries = list(map(_EXPIRY, batch))
        data, sizes = encode_puts(seqs.start, keys, values, expiries, list(map(_ENCODING, batch)))
        offsets = list(accumulate(sizes[:-1], initial=self._cursor))
        plan = self._plan
        plan.parts = [data]  # the batch's records, built as one buffer
        plan.accepted = list(zip(batch, offsets, sizes, seqs, repeat(0), repeat(None)))
        plan.creates = Creates(keys, offsets, sizes, seqs, expiries, tombstones)
        for op in batch:
            op.taken = True
        return True

    def _place(self, op: Op) -> bool:
        """Decide ``op`` and lay it out if accepted; False if it must wait for the next
        batch (it would open a new segment after other ops of this one).

        Every op of every batch passes here, so the common case (a create of a new key that
        fits the active segment and ``max_size``) is decided with local arithmetic and no
        further call; the rest (refusals, a roll-over) go to the methods below.
        """
        plan = self._plan
        key = op.key_bytes
        is_put = op.kind == KIND_PUT
        touched = self._touched.get(key)
        if touched is None:
            found = self._index.find(key)
            live = found is not None and self._unexpired(key, found)
        else:
            found, live = None, touched  # decided by an earlier op of the batch
        if op.rewrites:  # a touch: the key live, its record the one read
            if not live or found != op.rewrites:
                plan.refused[id(op)] = RecordMoved() if live else errors.key_not_found(op.key)
                return True
        elif live is is_put:  # a create of a live key, or a delete of an absent one
            plan.refused[id(op)] = (errors.key_exists if is_put else errors.key_not_found)(op.key)
            return True
        if is_put:
            size = HEADER_SIZE + len(key) + len(op.value)
            # An expired entry still in the index already holds its tombstone's room.
            tombstones = self._tombstones + (0 if found is not None else tombstone_size(key))
        else:
            size = HEADER_SIZE + len(key) + TOMBSTONE_VALUE_SIZE
            tombstones = self._tombstones - tombstone_size(key)
        written = size + HINT_ENTRY_SIZE + len(key)  # the record and its hint entry
        cursor = self._cursor
        header = 0
        if cursor + self._hint + written > self._segment_bytes and cursor > FILE_HEADER_SIZE:
            if plan.accepted:
                return False
            header = self._hint + FILE_HEADER_SIZE  # the sealed segment's hint, the new header
        needed = self._disk + header + written + (HINT_OVERHEAD if header else self._hint)
        if is_put:
            needed += delete_reserve(tombstones, self._segment_bytes) + self._compaction_room
        if needed > self._max_size:
            self._refuse_for_room(op, is_put, written, tombstones)
            return True
        if header and not self._roll_over(op):
            return True
        self._lay_out(op, is_put, size, written, tombstones)
        return True

    def _place_batch(self, op: Op) -> None:
        """Decide a ``create_many`` or ``delete_many`` as one unit and lay it out: one batch
        record, then its records, in one segment (the active one, or a fresh one it rolls
        over to if it does not fit there, however large); or refuse it whole."""
        batch = op.batch
        assert batch is not None
        if batch.kind == KIND_PUT and not self._index.any_indexed(batch.key_bytes):
            self._place_vacant(op, batch)  # a bulk load's common case: no key known at all
            return
        if batch.kind == KIND_DELETE:
            self._place_deletes(op, batch)
            return
        found = [self._live_at(key) for key in batch.key_bytes]
        live = [key for key, loc in zip(batch.keys, found, strict=True) if loc]
        if live:
            self._plan.refused[id(op)] = errors.keys_exist(live)
            return
        records = sum(map(len, batch.key_bytes)) + sum(map(len, batch.values))
        records += HEADER_SIZE * len(batch.keys)
        tombstones = self._tombstones + sum(
            tombstone_size(key)
            for key, loc in zip(batch.key_bytes, found, strict=True)
            if loc is None and self._index.find(key) is None
        )
        entries = sum(entry_size(len(key)) for key in batch.key_bytes)
        if self._fit_batch(op, BATCH_SIZE + records, entries, tombstones):
            self._lay_out_batch(op, batch, tombstones)

    def _place_vacant(self, op: Op, batch: Batch) -> None:
        """:meth:`_place_batch` of creates of keys the index holds nothing for, decided and
        laid out in columns (as :meth:`_plan_creates` does a batch of single creates) for the
        writer to index and hint at once, with no op or tuple per record."""
        keys = batch.key_bytes
        key_bytes = sum(map(len, keys))
        records = HEADER_SIZE * len(keys) + key_bytes + sum(map(len, batch.values))
        entries = HINT_ENTRY_SIZE * len(keys) + key_bytes
        tombstones = tombstone_sizes(len(keys), key_bytes)
        if not self._fit_batch(op, BATCH_SIZE + records, entries, self._tombstones + tombstones):
            return
        seqs = self._space.take_seqs(len(keys))
        data, sizes = encode_batch_puts(
            seqs.start, keys, batch.values, batch.expiries, batch.encodings
        )
        plan = self._plan
        offsets = list(accumulate(sizes[:-1], initial=self._cursor + BATCH_SIZE))
        plan.accepted = [(op, self._cursor, len(data), seqs.start, 0, None)]
        plan.creates = Creates(keys, offsets, sizes, seqs, batch.expiries, tombstones)
        self._take_batch(op, data, entries, self._tombstones + tombstones)

    def _place_deletes(self, op: Op, batch: Batch) -> None:
        """:meth:`_place_batch` of a ``delete_many``: its live keys' tombstones laid out and
        the batch decided in columns, with no op or tuple per key (a batch is planned alone,
        so no op before it in this plan has touched its keys)."""
        index, now = self._index, self._now
        keys, locs = [], []
        for key in batch.key_bytes:
            loc = index.get_live(key, now)
            if loc is not None:
                keys.append(key)
                locs.append(loc)
        batch.key_bytes = keys
        if not keys:
            return  # nothing live: nothing to write
        key_bytes = sum(map(len, keys))
        records = (HEADER_SIZE + TOMBSTONE_VALUE_SIZE) * len(keys) + key_bytes
        entries = HINT_ENTRY_SIZE * len(keys) + key_bytes
        tombstones = self._tombstones - tombstone_sizes(len(keys), key_bytes)
        if not self._fit_batch(op, BATCH_SIZE + records, entries, tombstones):
            return
        seqs = self._space.take_seqs(len(keys))
        targets = list(map(segment_of, locs))
        data, sizes = encode_batch_deletes(seqs.start, keys, targets)
        plan = self._plan
        offsets = list(accumulate(sizes[:-1], initial=self._cursor + BATCH_SIZE))
        plan.accepted = [(op, self._cursor, len(data), seqs.start, 0, None)]
        plan.deletes = Deletes(keys, offsets, sizes, seqs, targets, locs)
        self._take_batch(op, data, entries, tombstones)

    def _take_batch(self, op: Op, data: bytearray, entries: int, tombstones: int) -> None:
        """Count a batch laid out at the cursor: ``data``, its batch record first, then its
        records, with ``entries`` bytes of hint; ``tombstones`` is the delete room after it."""
        batch = op.batch
        assert batch is not None
        self._plan.parts = [data]
        self._plan.batch = op
        self._cursor += len(data)
        self._hint += entries
        self._disk += len(data)
        self._tombstones = tombstones
        batch.written = len(batch.key_bytes)

    def _live_at(self, key: bytes) -> int | None:
        """The location of ``key``'s live record, if it is live as of the batch's time."""
        loc = self._index.find(key)
        return loc if loc is not None and self._unexpired(key, loc) else None

    def _fit_batch(self, op: Op, records: int, entries: int, tombstones: int) -> bool:
        """Make room for a batch's ``records`` bytes and its hint ``entries``: roll over if the
        active segment cannot take them whole (or predates batch records), refuse it if
        ``max_size`` cannot. False if refused."""
        is_put = op.batch is not None and op.batch.kind == KIND_PUT
        written = records + entries
        header = 0
        active = self._shared.active
        if (
            self._cursor + self._hint + written > self._segment_bytes
            and self._cursor > FILE_HEADER_SIZE
        ) or active.version < FILE_VERSION:
            header = self._hint + FILE_HEADER_SIZE
        needed = self._disk + header + written + (HINT_OVERHEAD if header else self._hint)
        if is_put:
            # A batch larger than a segment makes a segment that large, which compaction
            # may need room for: kept free as well, like one segment's room.
            room = max(self._compaction_room, written - self._space.compaction_bytes)
            needed += delete_reserve(tombstones, self._segment_bytes) + room
        if FILE_HEADER_SIZE + records > MAX_SEGMENT_BYTES:
            self._plan.refused[id(op)] = errors.batch_too_large(records)
            return False
        if needed > self._max_size:
            self._plan.refused[id(op)] = errors.batch_no_room(records, needed, self._max_size)
            if is_put:
                self._plan.no_room.append(op)
            return False
        return not header or self._roll_over(op)

    def _lay_out_batch(self, op: Op, batch: Batch, tombstones: int) -> None:
        """Lay out the batch record and the records of a ``create_many`` some of whose keys
        the index holds (expired, or another key's hash), each as an op of its own for the
        writer to index and hint (the batch is answered through ``op``)."""
        plan = self._plan
        keys = batch.key_bytes
        seqs = self._space.take_seqs(len(keys))
        data, sizes = encode_batch_puts(
            seqs.start, keys, batch.values, batch.expiries, batch.encodings
        )
        offsets = accumulate(sizes[:-1], initial=self._cursor + BATCH_SIZE)
        for name, key, value, expiry, encoding, offset, size, seq in zip(
            batch.keys,
            keys,
            batch.values,
            batch.expiries,
            batch.encodings,
            offsets,
            sizes,
            seqs,
            strict=True,
        ):
            item = Op(KIND_PUT, name, key, value, expiry, op.future, encoding)
            plan.accepted.append((item, offset, size, seq, 0, None))
        self._take_batch(op, data, sum(entry_size(len(key)) for key in keys), tombstones)

    def _unexpired(self, key: bytes, loc: int) -> bool:
        """Whether ``key``, indexed at ``loc``, is live as of the batch's time (an expired
        key stays indexed until the reaper drops it)."""
        deadline = self._index.deadline(key)
        if deadline and self._now >= deadline:
            return False
        self._placed[key] = segment_of(loc)
        self._indexed[key] = loc
        return True

    def _refuse_for_room(self, op: Op, is_put: bool, written: int, tombstones: int) -> None:
        """Refuse ``op``, which would take the store past ``max_size``: a delete only past
        the delete reserve (every live key's), a create past that and the compaction room."""
        if not is_put:
            error = StoreFullError(
                f"store is full: no room for the delete marker of {describe_key(op.key)}"
            )
        else:
            reserve = delete_reserve(tombstones, self._segment_bytes) + self._compaction_room
            error = StoreFullError(
                f"store is full: creating {describe_key(op.key)} needs "
                f"{written - entry_size(len(op.key_bytes))} bytes, but {self._disk} of max_size "
                f"{self._max_size} are in use and {reserve} are kept free for deletes and "
                "compaction"
            )
            self._plan.no_room.append(op)
        self._plan.refused[id(op)] = error

    def _roll_over(self, op: Op) -> bool:
        """Open the next segment at ``op``: numbered here, on the loop thread, where
        compaction takes numbers too. False (``op`` refused) if no number is left."""
        space = self._space
        try:
            segment_id = space.take_segment_id()
        except StoreIOError as exc:
            self._plan.failure = exc
            self._plan.refused[id(op)] = exc
            return False
        self._plan.roll = RollOver(segment_id, space.next_seq)
        self._disk += self._hint + FILE_HEADER_SIZE
        self._hint = HINT_OVERHEAD
        self._cursor = FILE_HEADER_SIZE
        return True

    def _lay_out(self, op: Op, is_put: bool, size: int, written: int, tombstones: int) -> None:
        plan = self._plan
        key = op.key_bytes
        seq = self._space.take_seq()
        if is_put:
            plan.parts.append(encode_put(seq, key, op.value, op.expiry, op.encoding))
            roll = plan.roll
            self._placed[key] = roll.segment_id if roll else self._active_id
            plan.accepted.append((op, self._cursor, size, seq, 0, None))
        else:
            target = self._placed[key]
            plan.parts.append(encode_delete(seq, key, target))
            deletes = self._indexed.pop(key, None)
            plan.accepted.append((op, self._cursor, size, seq, target, deletes))
        self._cursor += size
        self._hint += written - size
        self._disk += size  # the hint entry is counted in self._hint
        self._tombstones = tombstones
        self._touched[key] = is_put

"""The single writer task: a bounded queue of operations, appended in batches.

Every create and delete is decided and written here, one batch at a time, so the writer alone
orders writes: two racing creates of one key are decided in queue order, and exactly one wins.
A batch is everything queued when the writer wakes (up to ``max_batch_bytes``), written with one
``write`` call; with ``durability="fsync"`` one fsync then covers the whole batch, so concurrent
writers share it (group commit).

Where the bytes are written: a small batch is written straight from the event loop, since a
``write`` of under 64 KiB into the page cache takes microseconds, far less than the 60-80 µs of
a hop to a worker thread. A larger batch, a segment roll-over and every fsync run in one worker
thread call per batch, so the loop never waits on the disk itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiokv import errors
from aiokv._bitcask.format.hint import HINT_OVERHEAD, BadHint, HintBuilder, entry_size, write_hint
from aiokv._bitcask.format.record import (
    FILE_HEADER_SIZE,
    HEADER_SIZE,
    KIND_PUT,
    delete_size,
    encode_delete,
    encode_put,
    put_size,
)
from aiokv._bitcask.index.index import Index, location, segment_of, tombstone_size
from aiokv._bitcask.options import Options
from aiokv._bitcask.system import files as _files
from aiokv._bitcask.system import threads as _threads
from aiokv._bitcask.system.segment import MAX_SEGMENT_ID, Segment
from aiokv._core.codec import VALUE_JSON
from aiokv.errors import (
    DataStoreError,
    StoreFullError,
    StoreIOError,
    describe_key,
)

logger = logging.getLogger("aiokv")

INLINE_WRITE_MAX_BYTES: Final = 64 * 1024
"""Batches up to this size are written on the event loop; larger ones in a worker thread."""

QUEUE_MAX_OPS: Final = 4096
"""Callers wait (backpressure) once this many operations are queued for the writer."""

BATCH_MAX_OPS: Final = 1024
"""The most operations in one batch, which bounds how long the loop spends planning it."""


REMAP_BYTES: Final = 1 << 20
"""How far the active segment grows past its memory map before it is mapped again."""


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
class _Accepted:
    op: Op
    offset: int
    size: int
    seq: int
    target: int  # a tombstone's target segment; 0 for a put
    # A delete's: the location of the record it deletes, when that was in the index as the
    # batch was planned (None: written by an earlier op of the batch).
    deletes: int | None = None


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


class Writer:
    """Owns the active segment and every change to the index.

    :param segments: the store's segment table, shared with the read path; new segments are
        added to it on the event-loop thread only.
    """

    def __init__(
        self,
        directory: Path,
        options: Options,
        index: Index,
        segments: dict[int, Segment],
        active: Segment,
        next_seq: int,
        next_segment_id: int,
        disk_bytes: int,
        active_hint: HintBuilder,
        active_hint_file: int,
    ) -> None:
        self._directory = directory
        self._options = options
        self._segment_bytes = options.segment_bytes
        self._index = index
        self._segments = segments
        self.active = active
        self._next_seq = next_seq
        self._next_segment_id = next_segment_id
        self.disk_bytes = disk_bytes
        # The active segment's hint entries so far (the hint is written when the segment is
        # sealed, and at close), and the size of the hint file it already has on disk, if any.
        # Creates keep room for the hint to come: a segment is sealed when its records and
        # its hint would no longer fit in segment_max_bytes.
        self.active_hint = active_hint
        self.active_hint_file = active_hint_file
        self.failure: StoreIOError | None = None
        self._queue: asyncio.Queue[Op | None] = asyncio.Queue(QUEUE_MAX_OPS)
        self._carry: deque[Op] = deque()  # ops that did not fit the active segment's remainder
        self.batch_lock = asyncio.Lock()
        self._stopping = False  # the stop marker was taken from the queue
        self._stop_requested = False
        self._finished = False  # the writer will read the queue no more
        self._new_segment: Segment | None = None
        # Bytes of a compaction output being written: counted in disk_bytes already, and
        # taken out of the room creates must leave for compaction.
        self.compaction_bytes = 0
        # Set by the store: compaction to try before refusing a create for want of room, and
        # a wake-up for background compaction after each batch.
        self.reclaim: Callable[[], Awaitable[int]] | None = None
        # Called after a batch that made records dead (a delete, a put over an expired key, a
        # roll-over): background compaction has something to look at only then, and waking it
        # after every batch of plain creates costs more than the creates' own bookkeeping.
        self.on_batch: Callable[[], None] | None = None
        self._made_dead = False
        self._roll_id = 0  # number and created_seq of the segment a planned roll-over makes
        self._roll_seq = 0

    @property
    def next_seq(self) -> int:
        """The sequence number the next record will get."""
        return self._next_seq

    # -- the caller's side -------------------------------------------------------------

    async def submit(self, op: Op) -> None:
        """Queue ``op`` and wait until it is written (or refused)."""
        if self.failure is not None:
            raise StoreIOError(str(self.failure)) from self.failure
        await self._queue.put(op)
        if self._finished and not op.future.done():
            # Queued (after waiting for room) behind the writer's last look at the queue.
            op.future.set_exception(
                StoreIOError(str(self.failure))
                if self.failure is not None
                else errors.closed_before_write()
            )
        try:
            await asyncio.shield(op.future)
        except asyncio.CancelledError:
            # The caller was cancelled. An op the writer has not decided yet is dropped (it
            # skips a done future); one it has decided is being written, so the caller waits
            # for that to finish, however often it is cancelled meanwhile. Either way, once
            # the CancelledError propagates the op has happened or never will: a read after it
            # sees the final state, not one a late write changes afterwards.
            if not op.taken:
                op.future.cancel()
                raise
            while not op.future.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(op.future)
            if not op.future.cancelled():
                op.future.exception()  # retrieved, so asyncio does not log it as unhandled
            raise

    def submit_nowait(self, op: Op) -> bool:
        """Queue ``op`` without waiting; False if the queue is full (the caller then waits
        for room with :meth:`submit`). Its outcome arrives on ``op.future``."""
        if self.failure is not None:
            op.future.set_exception(StoreIOError(str(self.failure)))
        elif self._finished:
            op.future.set_exception(errors.closed_before_write())
        else:
            try:
                self._queue.put_nowait(op)
            except asyncio.QueueFull:
                return False
        return True

    def stop(self) -> None:
        """Ask the writer to finish what is queued and return. Never blocks."""
        self._stop_requested = True
        with contextlib.suppress(asyncio.QueueFull):
            # Wakes a writer waiting on an empty queue; a full queue wakes it anyway.
            self._queue.put_nowait(None)

    def break_down(self, exc: BaseException, batch: list[Op] | None = None) -> None:
        """The writer task is gone (it failed, or the loop is shutting down): refuse all."""
        if self.failure is None:
            self.failure = StoreIOError(f"the store's writer stopped: {exc!r}")
        self._finished = True
        self._refuse(batch or [], self.failure)

    # -- the writer task ---------------------------------------------------------------

    async def run(self) -> None:
        batch: list[Op] = []
        try:
            while True:
                batch = await self._next_batch()
                if not batch:
                    break
                await self._commit(batch)
        except BaseException as exc:
            # Cancelled or broken: nobody may be left waiting on an op that will never run
            # (the batch in hand may or may not have reached the file).
            self.break_down(exc, batch)
            raise
        self._finished = True
        self._refuse([], errors.closed_before_write())

    async def _next_batch(self) -> list[Op]:
        batch = list(self._carry)
        self._carry.clear()
        if not batch:
            if self._stopping or (self._stop_requested and self._queue.empty()):
                return batch
            op = await self._queue.get()
            if op is None:
                self._stopping = True
                return batch
            batch.append(op)
        size = sum(HEADER_SIZE + len(op.key_bytes) + len(op.value) for op in batch)
        limit = self._options.max_batch_bytes
        while size < limit and len(batch) < BATCH_MAX_OPS and not self._stopping:
            try:
                op = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            if op is None:
                self._stopping = True
                break
            batch.append(op)
            size += HEADER_SIZE + len(op.key_bytes) + len(op.value)
        return batch

    def _refuse(self, batch: list[Op], error: DataStoreError) -> None:
        pending = [*batch, *self._carry]
        self._carry.clear()
        while not self._queue.empty():
            op = self._queue.get_nowait()
            if op is not None:
                pending.append(op)
        for op in pending:
            if not op.future.done():
                op.future.set_exception(error)

    async def _commit(self, batch: list[Op]) -> None:
        """Decide each op of ``batch``, write the accepted ones, update the index, answer all.

        Creates that do not fit under ``max_size`` are tried again each time compaction
        reclaims some room, so a ``StoreFullError`` means the live data no longer fits.
        """
        if self.failure is not None:
            for op in batch:
                if not op.future.done():
                    op.future.set_exception(StoreIOError(str(self.failure)))
            return
        refused, no_room = await self._write_batch(batch)
        while no_room and self.reclaim is not None and await self.reclaim():
            for op in no_room:
                del refused[id(op)]  # decided afresh below
            retried, no_room = await self._write_batch(no_room)
            refused.update(retried)
        carried = {id(op) for op in self._carry}
        for op in batch:
            if op.future.done() or id(op) in carried:
                continue
            error = refused.get(id(op))
            if error is None:
                op.future.set_result(None)
            else:
                op.future.set_exception(error)
        if self.on_batch is not None and self._made_dead:
            self._made_dead = False
            self.on_batch()

    async def _write_batch(self, batch: list[Op]) -> tuple[dict[int, Exception], list[Op]]:
        """Plan, write and index ``batch``; return the refusals and the creates that lacked room."""
        # Held from planning to indexing, so that compaction never moves a record between a
        # delete being planned (its tombstone names the segment the record is in) and the
        # delete taking effect; see Compactor._switch.
        async with self.batch_lock:
            return await self._write_batch_locked(batch)

    async def _write_batch_locked(self, batch: list[Op]) -> tuple[dict[int, Exception], list[Op]]:
        accepted, refused, no_room, data, roll = self._plan(batch)
        if accepted:
            try:
                if roll or len(data) > INLINE_WRITE_MAX_BYTES or self._fsync_each_batch:
                    await _threads.run(self._write, data, roll)
                else:
                    self._write(data, roll)
            except DataStoreError as exc:
                for item in accepted:
                    refused[id(item.op)] = exc
                accepted = []
            finally:
                # A segment made by a roll-over is installed here, on the loop thread, even if
                # the write after it failed: its file exists and its number is taken.
                if self._new_segment is not None:
                    self._segments[self._new_segment.id] = self._new_segment
                    sealed = self.active
                    self.active, self._new_segment = self._new_segment, None
                    sealed.map()
                    self._made_dead = True  # a newly sealed segment may hold dead records
                    self.active_hint = HintBuilder()
                    self.active_hint_file = 0
            self._apply(accepted)
            if self.active.size - self.active.mapped_size >= REMAP_BYTES:
                self.active.map()
        return refused, no_room

    @property
    def _fsync_each_batch(self) -> bool:
        return self._options.durability == "fsync"

    def _plan(
        self, batch: list[Op]
    ) -> tuple[list[_Accepted], dict[int, Exception], list[Op], bytes, bool]:
        """Lay the batch out in the active segment (or a new one), refusing what cannot be.

        Pure bookkeeping on the loop thread; nothing is written. Ops that would run past the
        end of the segment after others were laid out are carried over to the next batch.
        """
        now = self._options.clock.time()
        index = self._index
        max_size = self._options.max_size
        accepted: list[_Accepted] = []
        refused: dict[int, Exception] = {}
        no_room: list[Op] = []
        parts: list[bytes] = []
        # Creates leave one segment's room free so that compaction can always take a step.
        compaction_room = max(0, self._segment_bytes - self.compaction_bytes)
        touched: dict[str, bool] = {}  # key -> live after the ops laid out so far
        placed: dict[str, int] = {}  # key -> the segment holding its live record
        indexed: dict[str, int] = {}  # key -> its live record's location in the index
        cursor = self.active.size
        hint = self.active_hint.size  # the active segment's hint as it will be written
        disk = self.disk_bytes
        tombstones = index.tombstone_bytes
        roll = False
        self._roll_seq = 0
        for position, op in enumerate(batch):
            if op.future.done():
                continue  # cancelled by its caller before it was written: it never happened
            op.taken = True
            key = op.key
            if key in touched:
                live = touched[key]
            else:
                loc = index.get_live(op.key_bytes, now)
                live = loc is not None
                if loc is not None:
                    placed[key] = segment_of(loc)
                    indexed[key] = loc
            is_put = op.kind == KIND_PUT
            if is_put and live:
                refused[id(op)] = errors.key_exists(key)
                continue
            if not is_put and not live:
                refused[id(op)] = errors.key_not_found(key)
                continue
            size = put_size(op.key_bytes, op.value) if is_put else delete_size(op.key_bytes)
            hint_entry = entry_size(len(op.key_bytes))
            header = 0
            if (
                cursor + hint + size + hint_entry > self._segment_bytes
                and cursor > FILE_HEADER_SIZE
            ):
                if accepted:
                    self._carry.extend(batch[position:])
                    break
                # This op opens a new segment; the sealed one's hint is written first.
                header = hint + FILE_HEADER_SIZE
            if is_put:
                # An expired entry still in the index already holds its tombstone's room.
                if touched.get(key, True) and op.key_bytes in index:
                    after = tombstones
                else:
                    after = tombstones + tombstone_size(op.key_bytes)
                reserve = delete_reserve(after, self._segment_bytes) + compaction_room
                pending_hint = (HINT_OVERHEAD if header else hint) + hint_entry
                if disk + header + size + pending_hint + reserve > max_size:
                    no_room.append(op)
                    refused[id(op)] = StoreFullError(
                        f"store is full: creating {describe_key(key)} needs {size} bytes, but "
                        f"{disk} of max_size {max_size} are in use and {reserve} are kept free "
                        "for deletes and compaction"
                    )
                    continue
            else:
                after = tombstones - tombstone_size(op.key_bytes)
                pending_hint = (HINT_OVERHEAD if header else hint) + hint_entry
                if disk + header + size + pending_hint > max_size:  # the reserve prevents it
                    refused[id(op)] = StoreFullError(
                        f"store is full: no room for the delete marker of {describe_key(key)}"
                    )
                    continue
            if header:
                roll = True
                hint = HINT_OVERHEAD
                # Numbered here, on the loop thread, where compaction takes numbers too.
                try:
                    self._roll_id = self.allocate_segment_id()
                except StoreIOError as exc:
                    refused[id(op)] = exc
                    continue
                self._roll_seq = self._next_seq  # the new segment's first record
                cursor = FILE_HEADER_SIZE
                disk += header
            seq = self._next_seq
            self._next_seq = seq + 1
            if is_put:
                parts.append(encode_put(seq, op.key_bytes, op.value, op.expiry, op.encoding))
                placed[key] = self._roll_id if roll else self.active.id
            else:
                parts.append(encode_delete(seq, op.key_bytes, placed[key]))
            if is_put:
                accepted.append(_Accepted(op, cursor, size, seq, 0))
            else:
                accepted.append(
                    _Accepted(op, cursor, size, seq, placed[key], indexed.pop(key, None))
                )
            cursor += size
            hint += hint_entry
            disk += size
            tombstones = after
            touched[key] = is_put
        return accepted, refused, no_room, b"".join(parts), roll

    def _write(self, data: bytes, roll: bool) -> None:
        """Append ``data`` to the active segment, or to a new one first if ``roll``.

        Runs on the loop or in a worker thread while the writer task waits for it; it touches
        the files, ``disk_bytes`` and ``_new_segment`` only. Errors come back as the store's
        own: a full disk is a :class:`StoreFullError` the caller can recover from; any other
        failure, and above all a failed fsync, is fatal for writing (see :class:`StoreIOError`).
        """
        segment = self.active
        if roll:
            try:
                segment = self._roll()
            except OSError as exc:
                raise self._refusal("creating a segment", exc) from exc
        start = segment.size
        if _files.KILL_POINTS:
            _files.kill_point("write.before")
        try:
            _files.write_all(segment.fd, data)
        except OSError as exc:
            # Part of the batch may be in the file: cut it off so the file ends on a record
            # boundary again. If even that fails, the tail is unknown and writing must stop.
            try:
                segment.truncate(start)
            except OSError as cut:
                raise self._fail("cutting off a failed write", cut) from exc
            raise self._refusal("write", exc) from exc
        segment.size = start + len(data)
        self.disk_bytes += len(data)
        if _files.KILL_POINTS:
            _files.kill_point("write.written")
        if self._fsync_each_batch:
            try:
                segment.sync()
            except OSError as exc:
                raise self._fail("fsync", exc) from exc
            if _files.KILL_POINTS:
                _files.kill_point("write.synced")

    def _refusal(self, what: str, exc: OSError) -> DataStoreError:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return StoreFullError(f"the disk is full ({what}: {exc.strerror})")
        return self._fail(what, exc)

    def _roll(self) -> Segment:
        """Seal the active segment and create the next one, recorded in ``_new_segment``."""
        # Synced before the next segment exists, so after a crash only the newest log segment
        # can end in a torn write; a bad record in any other one is then known to be corruption.
        try:
            self.active.sync()
        except OSError as exc:
            raise self._fail("fsync", exc) from exc
        if _files.KILL_POINTS:
            _files.kill_point("roll.sealed")
        self._write_active_hint()
        if _files.KILL_POINTS:
            _files.kill_point("roll.hint_written")
        segment = Segment.create(self._directory, self._roll_id, self._roll_seq)
        self._new_segment = segment
        self.disk_bytes += FILE_HEADER_SIZE
        if _files.KILL_POINTS:
            _files.kill_point("roll.created")
        # The new names (segment and hint) must be durable before records in the new
        # segment are acknowledged.
        _files.sync_directory(self._directory)
        if _files.KILL_POINTS:
            _files.kill_point("roll.dir_synced")
        return segment

    def _write_active_hint(self) -> None:
        """Write (or rewrite) the active segment's hint, covering all of it."""
        active = self.active
        try:
            data = self.active_hint.encode(active.id, active.created_seq, active.size)
        except (BadHint, OSError) as exc:
            # The hint the segment opened with could not be read back. It stays, right for
            # what it covers; the next open scans the rest of the segment.
            logger.warning("aiokv: %s: its hint is not rewritten (%s)", active.path, exc)
            return
        write_hint(self._directory, active.id, data)
        self.disk_bytes += len(data) - self.active_hint_file
        self.active_hint_file = len(data)

    def allocate_segment_id(self) -> int:
        """The next unused segment number (segments made by compaction take them too)."""
        segment_id = self._next_segment_id
        if segment_id > MAX_SEGMENT_ID:
            raise self._fail("roll-over", OSError(errno.EFBIG, "segment numbers exhausted"))
        self._next_segment_id = segment_id + 1
        return segment_id

    def _fail(self, what: str, exc: OSError) -> StoreIOError:
        """Make the write path fail from now on: no retry after a failed write or fsync.

        Linux may drop the dirty pages of a failed fsync and report success to the next one
        (PostgreSQL's "fsyncgate"), so retrying could acknowledge data that is gone.
        """
        error = StoreIOError(
            f"{what} failed ({exc.strerror or exc}); the store accepts no more writes: "
            "close and reopen it"
        )
        self.failure = error
        return error

    def _apply(self, accepted: list[_Accepted]) -> None:
        """Index what the batch wrote.

        A delete removes the entry at the location the plan found (or that an earlier op of
        the batch put): nothing can have moved it since, as compaction moves records under
        the batch lock, so no record is read to know the entry is the key's. If the entry is
        gone meanwhile (the reaper dropped the key as it expired), there is nothing to remove.
        """
        index = self._index
        hint = self.active_hint
        segment_id = self.active.id
        put_here: dict[bytes, int] = {}
        for item in accepted:
            op = item.op
            hint.add(
                op.kind, op.key_bytes, item.offset, item.size, item.seq, op.expiry, item.target
            )
            if op.kind == KIND_PUT:
                loc = location(segment_id, item.offset, item.size)
                if index.put(op.key_bytes, loc, op.expiry) is not None:
                    self._made_dead = True  # it replaced an (expired) record
                put_here[op.key_bytes] = loc
            else:
                at = put_here.pop(op.key_bytes, item.deletes)
                index.remove(op.key_bytes, at=at)
                self._made_dead = True

    def close_sync(self) -> None:
        """At close: fsync the active segment and write its hint, so the next open is fast.

        A clean close is thus durable in every mode. Nothing is written after a failure.
        """
        if self.failure is not None:
            return
        self.active.sync()
        if _files.KILL_POINTS:
            _files.kill_point("close.synced")
        if self.active_hint.count:
            self._write_active_hint()
            if _files.KILL_POINTS:
                _files.kill_point("close.hint_written")
            _files.sync_directory(self._directory)

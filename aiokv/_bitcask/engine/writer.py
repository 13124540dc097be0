"""The single writer task: a bounded list of pending operations, appended in batches.

Every create and delete is decided and written here, one batch at a time, so the writer alone
orders writes: two racing creates of one key are decided in queue order, and exactly one wins.
A batch is everything queued when the writer wakes (up to ``BATCH_MAX_BYTES``), laid out by a
:class:`~aiokv._bitcask.engine.plan.Planner` and written with one ``write`` call; with
``durability="fsync"`` one fsync then covers the whole batch, so concurrent writers share it
(group commit).

Where the bytes are written: a batch of up to 256 KiB is written straight from the event loop.
Such a ``write`` into the page cache takes about 50 µs (15 µs for 64 KiB), less than a hop to
a worker thread, which costs the loop 60-80 µs and, in a profile of 100 tasks creating 1 KB
values, a fifth of its time (handing over to the thread and taking the GIL back). Written
inline, such batches ran 10-15% faster. A larger batch (``write`` of 1 MiB: 200 µs, with a
slow tail), a segment roll-over and every fsync run in one worker thread call per batch, so
the loop never waits long on the disk itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

from aiokv import errors
from aiokv._bitcask.engine.plan import Op, Plan, Planner, RollOver
from aiokv._bitcask.engine.space import Shared
from aiokv._bitcask.format.hint import HINT_OVERHEAD, BadHint, HintBuilder
from aiokv._bitcask.format.names import hint_name
from aiokv._bitcask.format.record import BATCH_SIZE, FILE_HEADER_SIZE, HEADER_SIZE, KIND_PUT
from aiokv._bitcask.index.index import location, locations
from aiokv._bitcask.system import files as _files
from aiokv._bitcask.system import threads as _threads
from aiokv._bitcask.system.segment import Segment
from aiokv.errors import DataStoreError, StoreIOError

logger = logging.getLogger("aiokv")

INLINE_WRITE_MAX_BYTES: Final = 256 * 1024
"""Batches up to this size are written on the event loop; larger ones in a worker thread."""

QUEUE_MAX_OPS: Final = 4096
"""Callers wait (backpressure) once this many operations are queued for the writer."""

BATCH_MAX_OPS: Final = 1024
"""The most operations in one batch, which bounds how long the loop spends planning it."""

BATCH_MAX_BYTES: Final = 1 << 20
"""About the most bytes of records in one batch: one write call, one worker-thread hop."""

REMAP_BYTES: Final = 1 << 20
"""How far the active segment grows past its memory map before it is mapped again."""


class Writer:
    """The writer task: owns the pending ops, the active segment's hint and the order of writes.

    It changes the index for the batches it writes (compaction and the reaper change it too:
    see :class:`~aiokv._bitcask.engine.space.Shared`).

    Callers append their op to a plain list and await the op's own future; the writer is
    woken once per batch, not once per op, and resolves each future as its batch is written.
    So a create costs one future and one wake-up of its task, the least an awaited write on
    asyncio can cost (an ``asyncio.Queue`` and an ``asyncio.shield`` per op cost three more
    callbacks each).

    :param hint: the active segment's hint entries so far (the hint is written when the
        segment is sealed, and at close); creates keep room for it, since a segment is sealed
        when its records and its hint would no longer fit in ``segment_max_bytes``.
    :param hint_file: the size of the hint file the active segment already has, if any.
    :param reclaim: compaction to try before refusing a create for want of room.
    :param on_dead: called after a batch that made records dead (a delete, a put over an
        expired key, a roll-over): background compaction has something to look at only then,
        and waking it after every batch of plain creates costs more than their bookkeeping.
    """

    def __init__(
        self,
        shared: Shared,
        hint: HintBuilder,
        hint_file: int,
        reclaim: Callable[[], Awaitable[int]],
        on_dead: Callable[[], None],
    ) -> None:
        self._shared = shared
        self._hint = hint
        self._hint_file = hint_file
        self._reclaim = reclaim
        self._on_dead = on_dead
        self.failure: StoreIOError | None = None
        self._pending: list[Op] = []  # queued ops, in the order they came
        self._pending_bytes = 0  # their records' size
        self._carry: deque[Op] = deque()  # ops that did not fit the active segment's remainder
        self._wake: asyncio.Future[None] | None = None  # the idle writer awaits it
        # Callers waiting for room in the queue, in order: each op and its turn's future.
        self._waiting: deque[tuple[Op, asyncio.Future[None]]] = deque()
        self._batch_end: asyncio.Future[None] | None = None  # see cancelled()
        self._new_future: Callable[[], asyncio.Future[None]] = asyncio.Future
        self._stop_requested = False
        self._finished = False  # the writer will read the pending ops no more
        self._new_segment: Segment | None = None
        self._made_dead = False
        self._planner = Planner(shared)

    # -- the caller's side -------------------------------------------------------------

    async def submit(self, op: Op) -> None:
        """Queue ``op`` and wait until it is written (or refused).

        The store's ``create`` makes these calls itself (one coroutine frame less per op).
        """
        future = op.future
        assert isinstance(future, asyncio.Future), "an awaited op has an asyncio future"
        if not self.queue(op):
            await self.queue_when_room(op)
        try:
            await future
        except asyncio.CancelledError:
            await self.cancelled(op)
            raise

    def queue(self, op: Op) -> bool:
        """Queue ``op``; False if the queue is full (then see :meth:`queue_when_room`).

        :raises StoreIOError: the write path has failed.
        :raises StoreClosedError: the writer has finished.
        """
        pending = self._pending
        if (
            len(pending) >= QUEUE_MAX_OPS
            or self._waiting
            or self._finished
            or self.failure is not None
        ):
            if not self._finished and self.failure is None:
                return False  # full, or others wait for room first: in line behind them
            self._check_accepting()
        self._append(op)
        return True

    def _append(self, op: Op) -> None:
        self._pending.append(op)
        self._pending_bytes += HEADER_SIZE + len(op.key_bytes) + len(op.value)
        if self._wake is not None:
            self._wake_up()

    def _check_accepting(self) -> None:
        if self.failure is not None:
            raise StoreIOError(str(self.failure)) from self.failure
        if self._finished:
            raise errors.closed_before_write()

    async def queue_when_room(self, op: Op) -> None:
        """Wait in line for room in the queue (backpressure); ``op`` is queued in its turn.

        Each waiter has a future of its own, resolved once its op is queued, in the order
        they came: one shared future woke every waiter each time a batch made room, and the
        tens of thousands of creates of one large ``gather`` then took quadratic time.

        :raises StoreIOError, StoreClosedError: as :meth:`queue`, if the writer stopped.
        """
        if self.queue(op):
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((op, turn))
        try:
            await turn
        except asyncio.CancelledError:
            future = op.future
            if turn.done() and not turn.cancelled() and isinstance(future, asyncio.Future):
                future.cancel()  # queued just now: the writer skips a cancelled op...
                await self.cancelled(op)  # ...unless it took it already: then it is written
            raise

    async def cancelled(self, op: Op) -> None:
        """The caller awaiting ``op.future`` was cancelled, which cancelled the future.

        An op the writer has not decided yet is then dropped (it skips a done future); one
        it has decided is being written, so the caller waits for its batch to end, however
        often it is cancelled meanwhile. Either way, once the caller's CancelledError
        propagates the op has happened or never will: a read after it sees the final state,
        not one a late write changes afterwards. (An op decided while its batch is in hand
        is "taken"; see :class:`~aiokv._bitcask.engine.plan.Op`.)
        """
        while op.taken:
            if self._batch_end is None:
                self._batch_end = asyncio.get_running_loop().create_future()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._batch_end)
        future = op.future
        if isinstance(future, asyncio.Future) and future.done() and not future.cancelled():
            future.exception()  # retrieved, so asyncio does not log it as unhandled

    def submit_nowait(self, op: Op) -> bool:
        """Queue ``op`` without waiting; False if the queue is full (the caller then waits
        for room with :meth:`submit`). Its outcome, refusals included, arrives on
        ``op.future``."""
        try:
            return self.queue(op)
        except DataStoreError as exc:
            op.future.set_exception(exc)
            return True

    def stop(self) -> None:
        """Ask the writer to finish what is queued and return. Never blocks."""
        self._stop_requested = True
        self._wake_up()

    def _wake_up(self) -> None:
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set_result(None)

    def break_down(self, exc: BaseException, batch: list[Op] | None = None) -> None:
        """The writer task is gone (it failed, or the loop is shutting down): refuse all."""
        if self.failure is None:
            self.failure = StoreIOError(f"the store's writer stopped: {exc!r}")
        self._finished = True
        self._refuse(batch or [], self.failure)
        self._end_batch()

    # -- the writer task ---------------------------------------------------------------

    async def run(self) -> None:
        # The loop's create_future, bound once: asyncio.get_running_loop() costs a getpid()
        # system call per call before Python 3.12.
        self._new_future = asyncio.get_running_loop().create_future
        batch: list[Op] = []
        try:
            while True:
                batch = await self._next_batch()
                if not batch:
                    break
                try:
                    await self._commit(batch)
                finally:
                    self._end_batch()
        except BaseException as exc:
            # Cancelled or broken: nobody may be left waiting on an op that will never run
            # (the batch in hand may or may not have reached the file).
            self.break_down(exc, batch)
            raise
        self._finished = True
        self._refuse([], errors.closed_before_write())

    def _end_batch(self) -> None:
        end = self._batch_end
        if end is not None:
            self._batch_end = None
            end.set_result(None)

    async def _next_batch(self) -> list[Op]:
        """The ops carried from the last batch, else the pending ones (waiting for one),
        up to ``BATCH_MAX_OPS`` and about ``BATCH_MAX_BYTES``; none once stopped."""
        if self._carry:
            batch = list(self._carry)
            self._carry.clear()
            return batch
        while not self._pending:
            if self._stop_requested:
                return []
            wake = self._wake = self._new_future()
            await wake
        pending = self._pending
        if len(pending) <= BATCH_MAX_OPS and self._pending_bytes <= BATCH_MAX_BYTES:
            batch, self._pending, self._pending_bytes = pending, [], 0
        else:
            batch = self._take_some()
        self._free_room()
        return batch

    def _free_room(self) -> None:
        """Queue the ops waiting for room, in their order, as far as room goes; once the
        writer has finished or failed, refuse them."""
        waiting = self._waiting
        while waiting and (len(self._pending) < QUEUE_MAX_OPS or self._finished or self.failure):
            op, turn = waiting.popleft()
            if turn.done():
                continue  # its caller was cancelled while it waited
            if self._finished or self.failure is not None:
                try:
                    self._check_accepting()
                except DataStoreError as exc:
                    turn.set_exception(exc)
                continue
            self._append(op)
            turn.set_result(None)

    def _take_some(self) -> list[Op]:
        """The first pending ops, as many as make a batch (at least one)."""
        pending = self._pending
        size = count = 0
        for op in pending:
            if count == BATCH_MAX_OPS or (count and size >= BATCH_MAX_BYTES):
                break
            size += HEADER_SIZE + len(op.key_bytes) + len(op.value)
            count += 1
        batch = pending[:count]
        del pending[:count]
        self._pending_bytes -= size
        return batch

    def _refuse(self, batch: list[Op], error: DataStoreError) -> None:
        pending = [*batch, *self._carry, *self._pending]
        self._carry.clear()
        self._pending.clear()
        self._pending_bytes = 0
        for op in pending:
            op.taken = False
            if not op.future.done():
                op.future.set_exception(error)
        self._free_room()  # its waiters find the writer finished

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
        while no_room and await self._reclaim():
            for op in no_room:
                del refused[id(op)]  # decided afresh below
            retried, no_room = await self._write_batch(no_room)
            refused.update(retried)
        if refused or self._carry:
            self._answer(batch, refused)
        else:  # every op written: the common case, answered without a lookup per op
            for op in batch:
                op.taken = False  # its batch has ended: a caller cancelled now need not wait
                if not op.future.done():
                    op.future.set_result(None)
        if self._made_dead:
            self._made_dead = False
            self._on_dead()

    def _answer(self, batch: list[Op], refused: dict[int, DataStoreError]) -> None:
        """Tell each op of ``batch`` not carried to the next one its outcome."""
        carried = {id(op) for op in self._carry}
        for op in batch:
            if id(op) in carried:
                continue
            op.taken = False
            if op.future.done():
                continue
            error = refused.get(id(op))
            if error is None:
                op.future.set_result(None)
            else:
                op.future.set_exception(error)

    async def _write_batch(self, batch: list[Op]) -> tuple[dict[int, DataStoreError], list[Op]]:
        """Plan, write and index ``batch``; return the refusals and the creates that lacked room.

        Under the batch lock from planning to indexing, so that compaction never moves a
        record between a delete being planned (its tombstone names the segment the record is
        in) and the delete taking effect; see ``Compactor._switch``.
        """
        shared = self._shared
        async with shared.batch_lock:
            plan = self._planner.plan(batch, self._hint.size, shared.options.clock.time())
            if plan.carried:
                self._carry.extend(plan.carried)
            if plan.failure is not None:
                self.failure = plan.failure
            if plan.accepted:
                # A small batch is written on the loop itself; see the module's docstring.
                # A bulk load's batch comes as one buffer already: not copied again here.
                parts = plan.parts
                data = parts[0] if len(parts) == 1 else b"".join(parts)
                try:
                    if plan.roll or len(data) > INLINE_WRITE_MAX_BYTES or self._fsync_each_batch:
                        await _threads.run(self._write, data, plan.roll)
                    else:
                        self._write(data, None)
                except DataStoreError as exc:
                    for item in plan.accepted:
                        plan.refused[id(item[0])] = exc
                    if plan.batch is not None:  # its records are ops of their own
                        plan.refused[id(plan.batch)] = exc
                    plan.accepted = []
                finally:
                    # A segment made by a roll-over is installed here, on the loop thread, even
                    # if the write after it failed: its file exists and its number is taken.
                    if self._new_segment is not None:
                        self._install(self._new_segment)
                if plan.accepted:
                    self._apply(plan)
            if shared.active.size - shared.active.mapped_size >= REMAP_BYTES:
                shared.active.map()
        return plan.refused, plan.no_room

    def _install(self, segment: Segment) -> None:
        """Make ``segment`` (just rolled over to) the active one; the old one is sealed."""
        shared = self._shared
        shared.segments[segment.id] = segment
        sealed = shared.active
        shared.active, self._new_segment = segment, None
        sealed.map()
        self._made_dead = True  # a newly sealed segment may hold dead records
        self._hint = HintBuilder()
        self._hint_file = 0

    @property
    def _fsync_each_batch(self) -> bool:
        return self._shared.options.durability == "fsync"

    def _write(self, data: bytes | bytearray, roll: RollOver | None) -> None:
        """Append ``data`` to the active segment, or to a new one first if ``roll``.

        Runs on the loop or in a worker thread while the writer task waits for it; it touches
        the files, the disk bytes and ``_new_segment`` only. Errors come back as the store's
        own: a full disk is a :class:`StoreFullError` the caller can recover from; any other
        failure, and above all a failed fsync, is fatal for writing (see :class:`StoreIOError`).
        """
        segment = self._shared.active
        if roll is not None:
            try:
                segment = self._roll(roll)
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
        space = self._shared.space
        space.largest_segment = max(space.largest_segment, segment.size)
        self._shared.space.disk_bytes += len(data)
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
        if errors.is_disk_full(exc):
            return errors.disk_full(what, exc)
        return self._fail(what, exc)

    def _roll(self, roll: RollOver) -> Segment:
        """Seal the active segment and create the next one, recorded in ``_new_segment``."""
        shared = self._shared
        # Synced before the next segment exists, so after a crash only the newest log segment
        # can end in a torn write: a bad record in any other one is then known to be corruption.
        try:
            shared.active.sync()
        except OSError as exc:
            raise self._fail("fsync", exc) from exc
        if _files.KILL_POINTS:
            _files.kill_point("roll.sealed")
        self._write_active_hint()
        if _files.KILL_POINTS:
            _files.kill_point("roll.hint_written")
        segment = Segment.create(shared.directory, roll.segment_id, roll.created_seq)
        self._new_segment = segment
        shared.space.disk_bytes += FILE_HEADER_SIZE
        if _files.KILL_POINTS:
            _files.kill_point("roll.created")
        # The new names (segment and hint) must be durable before records in the new
        # segment are acknowledged.
        _files.sync_directory(shared.directory)
        if _files.KILL_POINTS:
            _files.kill_point("roll.dir_synced")
        return segment

    def _write_active_hint(self) -> None:
        """Write (or rewrite) the active segment's hint, covering all of it."""
        active = self._shared.active
        base_path = self._hint.base_path
        try:
            base = None
            if base_path is not None:
                base = _files.fs.read_file(base_path, HINT_OVERHEAD + 2 * active.size)
            data = self._hint.encode(active.id, active.created_seq, active.size, base)
        except (BadHint, OSError) as exc:
            # The hint the segment opened with could not be read back. It stays, right for
            # what it covers; the next open scans the rest of the segment.
            logger.warning("aiokv: %s: its hint is not rewritten (%s)", active.path, exc)
            return
        _files.write_whole(self._shared.directory / hint_name(active.id), data)
        self._shared.space.disk_bytes += len(data) - self._hint_file
        self._hint_file = len(data)

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

    def _apply(self, plan: Plan) -> None:
        """Index what the batch wrote.

        A delete removes the entry at the location the plan found (or that an earlier op of
        the batch put): nothing can have moved it since, as compaction moves records under
        the batch lock, so no record is read to know the entry is the key's. If the entry is
        gone meanwhile (the reaper dropped the key as it expired), there is nothing to remove.
        """
        index = self._shared.index
        segment_id = self._shared.active.id
        if plan.batch is not None:
            index.add_framing(segment_id, BATCH_SIZE)  # not a dead byte: see Index.add_framing
        creates = plan.creates
        if creates is not None:  # a batch of creates of absent keys, planned as a whole
            keys, offsets, sizes, seqs, expiries, tombstones = creates
            self._hint.add_puts(keys, offsets, sizes, seqs, expiries)
            locs = locations(segment_id, offsets, sizes)
            index.add_vacant(keys, locs, expiries, segment_id, sum(sizes), tombstones)
            return
        if plan.deletes is not None:  # a delete_many, planned as a whole
            keys, offsets, sizes, seqs, targets, locs = plan.deletes
            self._hint.add_deletes(keys, offsets, sizes, seqs, targets)
            index.remove_each(keys, locs)
            self._made_dead = True
            return
        add = self._hint.add
        put_here: dict[bytes, int] = {}
        for op, offset, size, seq, target, deletes in plan.accepted:
            key = op.key_bytes
            add(op.kind, key, offset, size, seq, op.expiry, target)
            if op.kind == KIND_PUT:
                loc = location(segment_id, offset, size)
                if index.put(key, loc, op.expiry) is not None:
                    self._made_dead = True  # it replaced an (expired) record
                put_here[key] = loc
            else:
                index.remove(key, at=put_here.pop(key, deletes))
                self._made_dead = True

    def close_sync(self) -> None:
        """At close: fsync the active segment and write its hint, so the next open is fast.

        A clean close is thus durable in every mode. Nothing is written after a failure.

        :raises OSError: the fsync failed: the last writes may not be on disk. A hint that
            cannot be written (a full disk, say) is only logged: the data is synced by then,
            and the next open scans what the hint would have covered.
        """
        if self.failure is not None:
            return
        self._shared.active.sync()
        if _files.KILL_POINTS:
            _files.kill_point("close.synced")
        if self._hint.count:
            try:
                self._write_active_hint()  # whole or not at all: no partial hint is left
                if _files.KILL_POINTS:
                    _files.kill_point("close.hint_written")
                _files.sync_directory(self._shared.directory)
            except OSError as exc:
                logger.warning(
                    "aiokv: %s: its hint was not written at close (%s); the next open "
                    "scans the segment instead",
                    self._shared.active.path,
                    exc,
                )

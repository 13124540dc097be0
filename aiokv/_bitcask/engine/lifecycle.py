"""The engine of an open local store: its parts wired together, from the open to the close.

:meth:`Engine.open` runs in a worker thread (it reads every data file): it locks the directory,
recovers the index and builds the writer, the compactor and the reader over one
:class:`~aiokv._bitcask.engine.space.Shared`. :meth:`Engine.run` is the store's task group,
whose children are the writer, the background compactor and the reaper; it returns once
:meth:`Engine.stop` has let the writer finish what was queued and the compactor its step.
:meth:`Engine.close_files` then syncs, writes the active segment's hint and unlocks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import anyio

from aiokv import errors
from aiokv._bitcask.engine.compaction import Compactor
from aiokv._bitcask.engine.reader import Reader
from aiokv._bitcask.engine.reaper import run_reaper
from aiokv._bitcask.engine.recovery import recover
from aiokv._bitcask.engine.space import Shared, Space
from aiokv._bitcask.engine.writer import Writer
from aiokv._bitcask.format.hint import HintBuilder
from aiokv._bitcask.format.record import FILE_HEADER_SIZE
from aiokv._bitcask.options import Options
from aiokv._bitcask.system import files as _files
from aiokv._bitcask.system.lock import StoreLock
from aiokv._bitcask.system.paths import prepare_directory
from aiokv._bitcask.system.segment import Segment
from aiokv.errors import StoreIOError

logger = logging.getLogger("aiokv")


class Engine:
    """The running parts of one open store. Made by :meth:`open`, never directly."""

    __slots__ = ("_lock", "compactor", "reader", "shared", "writer")

    def __init__(
        self,
        shared: Shared,
        lock: StoreLock,
        hint: HintBuilder,
        hint_file: int,
        state: Callable[[], str],
    ) -> None:
        self.shared = shared
        self._lock: StoreLock | None = lock
        self.compactor = Compactor(shared)
        self.writer = Writer(
            shared, hint, hint_file, self.compactor.reclaim, self.compactor.wakeup.set
        )
        self.reader = Reader(shared, shared.options.clock, state)

    @classmethod
    def open(cls, directory: Path, options: Options, state: Callable[[], str]) -> Engine:
        """Lock ``directory`` and recover the store in it; ``state`` tells readers in other
        threads whether the store is still open."""
        prepare_directory(directory)
        lock = StoreLock(directory)
        lock.acquire()
        try:
            with errors.map_os_errors(f"{directory}: the store cannot be opened"):
                recovered = recover(directory, options.clock.time(), options.max_size)
                largest = max((s.size for s in recovered.segments.values()), default=0)
                space = Space(
                    recovered.disk_bytes, recovered.next_seq, recovered.next_segment_id, largest
                )
                active = recovered.active
                hint, hint_file = recovered.active_hint, recovered.active_hint_file
                if active is None:
                    active = _first_segment(directory, recovered.segments, space)
                    hint, hint_file = HintBuilder(), 0
        except BaseException:
            lock.release()
            raise
        shared = Shared(directory, options, recovered.index, recovered.segments, active, space)
        return cls(shared, lock, hint, hint_file, state)

    async def run(self, started: asyncio.Future[None]) -> None:
        """The store's task group and its children; ``started`` is set once they run.

        If any child fails (a bug, or the loop shutting down), the store stops accepting
        writes and every queued one is answered with the error, rather than left waiting.
        """
        compactor, writer, shared = self.compactor, self.writer, self.shared
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(
                    run_reaper,
                    shared.index,
                    shared.options.clock,
                    shared.options.reaper_interval_s,
                    compactor.wakeup.set,
                )
                group.start_soon(compactor.run)
                compactor.wakeup.set()  # a store may open with dead bytes to reclaim
                started.set_result(None)
                await writer.run()  # returns once stop() has asked it to
                # A compaction step in progress is let finish (its files must not be left
                # half-switched); then the reaper and the background compactor are cancelled.
                await compactor.stop()
                group.cancel_scope.cancel()
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):  # cancelled: the loop is ending
                logger.error(
                    "aiokv: %s: the store's background tasks failed: %r", shared.directory, exc
                )
            writer.break_down(exc)
            if not started.done():
                started.set_exception(exc)
            raise

    def stop(self) -> None:
        """Ask the writer to finish what is queued; :meth:`run` then returns. Never blocks."""
        self.writer.stop()

    def close_files(self) -> None:
        """Sync and close every file and release the lock (in a worker thread, after run)."""
        try:
            self.writer.close_sync()
        except OSError as exc:
            raise StoreIOError(
                f"{self.shared.directory}: closing: {exc}; the last writes may not be on disk"
            ) from exc
        finally:
            self.shared.read_gate.close(self.shared.segments.values())
            if self._lock is not None:
                self._lock.release()
                self._lock = None


def _first_segment(directory: Path, segments: dict[int, Segment], space: Space) -> Segment:
    """Create the first log segment of a store that has none (a new store, or one whose only
    segments are compacted ones)."""
    try:
        active = Segment.create(directory, space.take_segment_id(), space.next_seq)
        segments[active.id] = active
        # The segment's name must be durable before anything in it is.
        _files.sync_directory(directory)
    except BaseException:
        for segment in segments.values():
            segment.close()
        raise
    space.disk_bytes += FILE_HEADER_SIZE
    return active

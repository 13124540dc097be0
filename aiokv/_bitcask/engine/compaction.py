"""Compaction: reclaim the space of dead records, one sealed segment at a time.

A step takes one sealed segment, copies the records still needed into a new *compacted*
segment, and removes the old one, in the order that makes a crash at any point harmless:

1. the output is written under a temporary name (``NNNNNNNN.data.tmp``) and fsynced;
2. it is renamed to its final name and the directory is fsynced: it is now part of the store;
3. the index is pointed at the copies (the old records stay readable until then);
4. the old segment is closed and unlinked, and the directory fsynced again.

A crash before 2 leaves a temporary file that the next open removes; a crash after 2 leaves
both files, whose common records carry the same sequence numbers, so the logical state is the
same either way. Only one step runs at a time, and it never needs more free room than one
segment: this is what keeps the store under ``max_size`` while it compacts.

Which records are still needed:

* a put the index points at (a live key) is copied, and the index follows it;
* a put that was overwritten or deleted since is dropped;
* a put that has expired is dropped (an older record of its key was itself deleted or expired
  before this one was created, and stays so);
* a tombstone is copied while the record it deleted may still exist: while its target segment,
  or a file compacted from that segment, remains. Bitcask dropped tombstones without such a
  check and deleted keys came back after a partial merge (basho/bitcask#82).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import anyio
import anyio.lowlevel

from aiokv import errors
from aiokv._bitcask.engine.space import Shared
from aiokv._bitcask.format.hint import HintBuilder
from aiokv._bitcask.format.names import hint_name
from aiokv._bitcask.format.record import (
    FILE_COMPACTED,
    FILE_HEADER_SIZE,
    KIND_PUT,
    BadRecord,
    Record,
    scan,
    tombstone_target,
)
from aiokv._bitcask.index.index import location
from aiokv._bitcask.system import files as _files
from aiokv._bitcask.system import threads as _threads
from aiokv._bitcask.system.segment import Segment
from aiokv.errors import DataStoreError

logger = logging.getLogger("aiokv")

WRITE_CHUNK_BYTES = 1 << 20
"""About how much of a compaction's output goes to the file per write call."""

RECORDS_PER_YIELD = 1000
"""Records examined on the event loop before other tasks get a turn (well under 1 ms)."""


@dataclass(slots=True)
class _Keep:
    offset: int  # in the source
    record: Record
    key: bytes
    loc: int | None  # the index's location of it when it was chosen, if any
    target: int  # a tombstone's target; 0 for a put


class Compactor:
    """Runs compaction steps for a store; one at a time, on its event loop."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self._directory = shared.directory
        self._options = shared.options
        self._index = shared.index
        self._segments = shared.segments
        self._step_lock = asyncio.Lock()
        # segment id -> how many segments had been removed when compacting it last reclaimed
        # nothing (all its tombstones were needed); it is tried again once more are gone.
        self._stuck: dict[int, int] = {}
        self._removed = 0
        self._last_removed = 0  # bytes the last step removed (a segment and its hint)
        self.wakeup = asyncio.Event()
        self.last_compaction: float | None = None
        self.failure: Exception | None = None  # what stopped background compaction, if anything
        self._stopped = False

    # -- what there is to reclaim -------------------------------------------------------

    def dead_bytes(self, segment: Segment) -> int:
        """Bytes of ``segment`` that no live key needs (tombstones included)."""
        return segment.size - FILE_HEADER_SIZE - self._index.live_bytes.get(segment.id, 0)

    def _needed_targets(self, source: Segment) -> set[int]:
        """Segments whose deleted records may still exist, for tombstones outside them.

        A compaction from ``source`` may have copied a record that was deleted while the step
        ran, so a file compacted from a segment keeps that segment's tombstones needed.
        """
        needed = {s.id for s in self._segments.values() if s is not source}
        needed.update(s.source for s in self._segments.values() if s is not source and s.source)
        return needed

    def candidates(self) -> list[Segment]:
        """Sealed segments with dead bytes worth a step, the most dead bytes first."""
        active = self._shared.active
        found = [
            segment
            for segment in self._segments.values()
            if segment is not active
            and self.dead_bytes(segment) > 0
            and self._stuck.get(segment.id, -1) < self._removed
        ]
        found.sort(key=lambda s: -self.dead_bytes(s))
        return found

    def sealed_dead_ratio(self) -> float:
        active = self._shared.active
        total = dead = 0
        for segment in self._segments.values():
            if segment is not active:
                total += segment.size
                dead += self.dead_bytes(segment)
        return dead / total if total else 0.0

    async def stop(self) -> None:
        """Wait for a step in progress to finish and refuse further steps (at close)."""
        self._stopped = True
        async with self._step_lock:
            pass

    # -- entry points -------------------------------------------------------------------

    def _forget_expired(self) -> int:
        """Drop expired keys from the index now, so their records count as dead.

        The reaper does this every ``reaper_interval_s``; compaction cannot wait for it, or a
        store whose keys expire faster than that would look full of live data.
        """
        return self._index.drop_expired(self._options.clock.time(), 1 << 62)

    async def compact(self) -> int:
        """Compact every sealed segment with dead bytes; return the bytes this call reclaimed
        (background steps running meanwhile are not counted).

        :raises StoreIOError: the OS failed a step (:class:`StoreFullError` if the disk is
            full). That step is abandoned (its output removed, its source kept), and writes go
            on: compaction never touches the log.
        """
        self._forget_expired()
        reclaimed = 0
        while candidates := self.candidates():
            with errors.map_os_errors("compaction failed"):
                gained = await self.step(candidates[0])
            if gained is None:
                break
            reclaimed += gained
        return reclaimed

    async def reclaim(self) -> int:
        """Called by the writer before it refuses a create for want of room.

        Returns a positive number if anything was freed: bytes on disk, or the delete room
        that expired keys no longer need. A failed step frees nothing: the create is refused
        with ``StoreFullError`` as it would have been, and the error is logged.
        """
        forgotten = self._forget_expired()
        for segment in self.candidates():
            try:
                gained = await self.step(segment)
            except (OSError, DataStoreError) as exc:
                logger.error("aiokv: compaction to make room failed: %s", exc)
                return forgotten
            if gained:
                return gained
        return forgotten

    async def run(self) -> None:
        """The background task: compact while dead bytes pass ``compact_dead_ratio``.

        A failure stops background compaction (logged, and kept in ``failure``) but not the
        store: reads and writes go on, and ``compact()`` reports the error to its caller.
        """
        ratio = self._options.compact_dead_ratio
        if ratio is None:
            return
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            try:
                self._forget_expired()
                while self.sealed_dead_ratio() > ratio and (candidates := self.candidates()):
                    if await self.step(candidates[0]) is None:
                        break
            except (DataStoreError, OSError) as exc:
                logger.error("aiokv: background compaction stopped: %s", exc)
                self.failure = exc
                return

    # -- one step -------------------------------------------------------------------------

    async def step(self, source: Segment) -> int | None:
        """Compact ``source``; return the bytes reclaimed, or None if there was no room."""
        async with self._step_lock:
            if self._stopped:
                return None
            if source.id not in self._segments or source is self._shared.active:
                return 0
            data = await _threads.run(source.read_all)
            records = await _threads.run(_list_records, source, data)
            keep, unindex = await self._choose(source, data, records)
            kept_bytes = sum(item.record.size for item in keep)
            if kept_bytes == len(data) - FILE_HEADER_SIZE:
                self._stuck[source.id] = self._removed  # everything in it is still needed
                return 0
            # Finished even if cancelled: once the output is published it is part of the
            # store, and left unswitched it would be a file max_size does not count, whose
            # source the next step would compact into a second copy.
            return await _threads.uncancellable(self._replace(source, data, keep, unindex))

    async def _replace(
        self, source: Segment, data: bytes, keep: list[_Keep], unindex: list[tuple[bytes, int]]
    ) -> int | None:
        """Write the records of ``source`` to ``keep`` into its compacted copy, then put the
        copy in its place; the bytes reclaimed, or None if the copy did not fit."""
        output: Segment | None = None
        out_size = 0
        if keep:
            hint = HintBuilder()
            offset = FILE_HEADER_SIZE
            for item in keep:
                record = item.record
                hint.add(
                    record.kind,
                    record.key,
                    offset,
                    record.size,
                    record.seq,
                    record.expiry,
                    item.target,
                )
                offset += record.size
            out_size = offset + hint.size
            output = await self._write_output(source, data, keep, hint, out_size)
            if output is None:
                return None
        await self._switch(source, output, keep, unindex)
        self.last_compaction = self._options.clock.time()
        return self._last_removed - out_size

    async def _choose(
        self, source: Segment, data: bytes, records: list[tuple[int, Record]]
    ) -> tuple[list[_Keep], list[tuple[bytes, int]]]:
        """Decide which records of ``source`` the output needs.

        Also returns the index entries of expired puts that are dropped: the reaper has not
        got to them yet, and they must not point into a file that is about to go.
        """
        now = self._options.clock.time()
        index = self._index
        needed = self._needed_targets(source)
        keep: list[_Keep] = []
        unindex: list[tuple[bytes, int]] = []
        for count, (offset, record) in enumerate(records, 1):
            key = record.key
            if record.kind == KIND_PUT:
                loc = location(source.id, offset, record.size)
                if index.points_at(key, loc):
                    deadline = index.deadline(key)
                    if deadline and now >= deadline:
                        unindex.append((key, loc))
                    else:
                        keep.append(_Keep(offset, record, key, loc, 0))
                # else: overwritten or deleted since, so dead
            elif (target := tombstone_target(data, record)) in needed:
                keep.append(_Keep(offset, record, key, None, target))
            if not count % RECORDS_PER_YIELD:
                await anyio.lowlevel.checkpoint()
        return keep, unindex

    async def _write_output(
        self, source: Segment, data: bytes, keep: list[_Keep], hint: HintBuilder, size: int
    ) -> Segment | None:
        """Write, sync and publish the compacted copy of ``source`` and its hint.

        ``size`` is both files' total. Returns None if they do not fit under ``max_size``.
        """
        space = self._shared.space
        if space.disk_bytes + size > self._options.max_size:
            return None
        created_seq = space.next_seq
        output_id = space.take_segment_id()

        def write() -> Segment:
            output = Segment.create(
                self._directory, output_id, created_seq, FILE_COMPACTED, source.id
            )
            try:
                # Written in pieces of about WRITE_CHUNK_BYTES: joining the whole copy first
                # would hold the GIL (and stall the event loop) for as long as it takes,
                # while a write per kept run makes thousands of system calls, after each of
                # which this thread must win the GIL back from a busy event loop (up to the
                # interpreter's 5 ms switch interval each).
                view = memoryview(data)
                for piece in _pieces(view, _runs(keep), WRITE_CHUNK_BYTES):
                    output.append(piece)
                if _files.KILL_POINTS:
                    _files.kill_point("compact.written")
                output.sync()  # complete on disk before it has a name the store reads
                if _files.KILL_POINTS:
                    _files.kill_point("compact.synced")
                output.publish()
                if _files.KILL_POINTS:
                    _files.kill_point("compact.published")
                # A crash before the hint is in place leaves a segment without one: the next
                # open scans it instead.
                _files.write_whole(
                    self._directory / hint_name(output.id),
                    hint.encode(output.id, output.created_seq, output.size),
                )
                if _files.KILL_POINTS:
                    _files.kill_point("compact.hint_written")
                _files.sync_directory(self._directory)  # the names themselves made durable
                if _files.KILL_POINTS:
                    _files.kill_point("compact.dir_synced")
                output.map()
            except BaseException:
                output.close()
                _files.unlink(output.path, missing_ok=True)
                raise
            return output

        with space.claim_for_compaction(size):
            return await _threads.run(write)

    async def _switch(
        self,
        source: Segment,
        output: Segment | None,
        keep: list[_Keep],
        unindex: list[tuple[bytes, int]],
    ) -> None:
        """Point the index at the copies (if any were needed), then remove the source.

        Done under the batch lock, as the writer's batches are: a delete planned while a key's
        record is in ``source`` names ``source`` as its tombstone's target, and must take
        effect before the record moves. Its tombstone is then protected by the output
        (compacted from ``source``) for as long as the dead copy there exists. Moving the
        record first would let a second step carry the copy on into a file no tombstone
        protects.
        """
        index = self._index
        async with self._shared.batch_lock:
            if output is not None:
                self._segments[output.id] = output
                offset = FILE_HEADER_SIZE
                for count, item in enumerate(keep, 1):
                    size = item.record.size
                    if item.loc is not None:
                        index.relocate(item.key, item.loc, location(output.id, offset, size))
                    offset += size
                    if not count % RECORDS_PER_YIELD:
                        await anyio.lowlevel.checkpoint()
            for key, loc in unindex:
                index.remove(key, at=loc)
            del self._segments[source.id]
            index.forget_segment(source.id)

        def remove() -> int:
            self._shared.read_gate.close([source])  # once no reader in another thread is in it
            hint_path = self._directory / hint_name(source.id)
            try:
                hint_size = hint_path.lstat().st_size
            except FileNotFoundError:
                hint_size = 0
            if _files.KILL_POINTS:
                _files.kill_point("compact.switched")
            _files.unlink(source.path)
            if _files.KILL_POINTS:
                _files.kill_point("compact.source_removed")
            _files.unlink(hint_path, missing_ok=True)
            if _files.KILL_POINTS:
                _files.kill_point("compact.hint_removed")
            _files.sync_directory(self._directory)
            return source.size + hint_size

        removed = await _threads.run(remove)
        self._shared.space.disk_bytes -= removed
        self._last_removed = removed
        self._removed += 1
        self._stuck.pop(source.id, None)


def _pieces(
    view: memoryview, runs: list[tuple[int, int]], chunk: int
) -> Iterator[memoryview | bytes]:
    """The bytes of ``runs`` of ``view``, in order, as pieces of about ``chunk`` bytes."""
    parts: list[memoryview] = []
    size = 0
    for start, end in runs:
        if end - start >= chunk:  # a long run goes out as it is, after what was gathered
            if parts:
                yield b"".join(parts)
                parts, size = [], 0
            yield view[start:end]
            continue
        parts.append(view[start:end])
        size += end - start
        if size >= chunk:
            yield b"".join(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts)


def _runs(keep: list[_Keep]) -> list[tuple[int, int]]:
    """The kept records as (start, end) ranges of the source, adjacent ones merged."""
    runs: list[list[int]] = []
    for item in keep:
        start = item.offset
        end = start + item.record.size
        if runs and runs[-1][1] == start:
            runs[-1][1] = end
        else:
            runs.append([start, end])
    return [(start, end) for start, end in runs]


def _list_records(source: Segment, data: bytes) -> list[tuple[int, Record]]:
    # A sealed segment was fsynced whole and checked on open: a bad record here is damage.
    try:
        return list(scan(data))
    except BadRecord as bad:
        raise errors.bad_record(source.path, bad.offset, bad.reason) from None

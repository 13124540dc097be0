"""Iteration over a store's live keys (``keys``) and items (``items``), a step at a time.

The index holds hashes, not keys, so the keys come from the records: the iteration walks the
segments there are when it begins (through their hints where they have sound ones, else their
records; the active segment up to its size then) and decides, for each put record, whether its
key is to be yielded, asking the index as it is at that moment. Nothing is held per key of the
store: only one step's entries, and the keys written again while the iteration runs (rule B).

Deciding. ``start`` is the store's next sequence number when the iteration begins, taken under
the batch lock: every record numbered below it is then indexed (or was refused), and no
compaction is halfway through switching a segment for its copy. A put of key ``k`` numbered
``s < start`` yields ``k`` when the index's record of ``k`` is, at that moment:

A. this record: at its location, or a copy compaction made of it elsewhere (a copy keeps the
   sequence number; the record there is read to tell);
B. or a record written since the start (a ``touch``, or a delete and a create), if no earlier
   record of ``k`` yielded it so. Those keys are kept in a set: it grows with the writes made
   during the iteration, not with the store.

No key is yielded twice. After the start, ``k``'s record is first the one it had then (or a
copy), and later only records numbered from ``start`` on: A can hold at that record only, and
never once B has. Records are looked at in the order of their numbers (segments in the order
of their first record, whose numbers do not interleave, each in file order), so A's record,
``k``'s newest at the start, comes after every other record at which B could yield ``k``.
A key live from the start to the end has that record looked at, and is yielded by A, or by B
if it was touched meanwhile. Expired keys are not yielded; keys with no record before the start
never are; keys deleted or expiring meanwhile may be.

Compaction meanwhile. A record the walk has not looked at yet must stay readable even once it
is dead and compaction removes its segment: the record a ``touch`` replaced is the only one
that can yield its key. Where a mapped file can be removed (POSIX), the iteration holds each
segment's memory map from the start until it has walked it: the store's own map, so no file
descriptor is added, and it stays valid once the file is unlinked (its blocks are freed when
the iteration lets go, as for a backup holding a file open). Stopping compaction for the
segments not walked yet was the alternative: the store would then refuse creates for want of
room that compaction would have made. Where maps cannot be held (Windows cannot remove a mapped
file) or a segment has none, a segment removed before it is walked is followed into the
compacted segment holding what was kept of it, and walked there past the last number looked
at. That finds every record still indexed, but no dead one: a key touched, then compacted away
from under the walk, can be missed there.

Steps. A step looks at a bounded number of entries on the event loop (a hint's are cut out by
C-level calls; records are decoded and checked one by one, so fewer of them), then gives the
loop back. A hint is read and checked in a worker thread. ``items`` reads each value with the
store's read kernel, in the step that decided its key.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import mmap
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from itertools import accumulate, pairwise
from pathlib import Path
from typing import Any, Final, Generic, NamedTuple, TypeVar

from aiokv import errors
from aiokv._bitcask.engine.reader import Reader
from aiokv._bitcask.engine.space import Shared
from aiokv._bitcask.format.hint import HINT_OVERHEAD, KEY_END, BadHint, Hint, decode_hint
from aiokv._bitcask.format.names import hint_name
from aiokv._bitcask.format.record import (
    FILE_COMPACTED,
    FILE_HEADER_SIZE,
    HEADER_SIZE,
    KIND_DELETE,
    KIND_PUT,
    MAX_RECORD_SIZE,
    BadRecord,
    decode,
    record_seq,
)
from aiokv._bitcask.index.index import OFFSET_MASK, SEGMENT_SHIFT, SIZE_BITS, SIZE_MASK
from aiokv._bitcask.index.keydir import check_hint_entries
from aiokv._bitcask.system import files as _files
from aiokv._bitcask.system import threads as _threads
from aiokv._bitcask.system.segment import Segment
from aiokv.errors import KeyNotFoundError

T = TypeVar("T")

CHUNK: Final = 1024
"""Items :meth:`Iteration.next_chunk` hands over when not told how many."""

HINT_ENTRIES_PER_STEP: Final = 1024
"""Hint entries decided in one step: under a millisecond of the loop (an index lookup each,
and the caller's handling of what is yielded, until the next step)."""

RECORDS_PER_STEP: Final = 384
"""Records decoded in one step when a segment is read without a hint (2 to 3 µs each, with
the decision)."""

SCAN_BYTES: Final = 64 * 1024
"""About how much of a segment one step reads when it reads records."""

ITEMS_PER_STEP: Final = 384
"""Entries one step of ``items`` decides: each live one is also read and decoded."""

ITEM_BYTES_PER_STEP: Final = 256 * 1024
"""About the most record bytes whose values one step of ``items`` decodes."""

_KINDS: Final = (KIND_PUT, KIND_DELETE)  # the records that carry a key (not a batch record)


# -- what one step looks at ------------------------------------------------------------------


class _Entries(NamedTuple):
    """Puts and deletes of one segment, in file order, as columns."""

    segment_id: int
    keys: list[bytes]
    kinds: list[int]
    offsets: list[int]
    sizes: list[int]
    seqs: list[int]


def _no_entries(segment_id: int) -> _Entries:
    return _Entries(segment_id, [], [], [], [], [])


@dataclasses.dataclass(slots=True, eq=False)
class _Lineage:
    """A segment as the iteration began, and whatever compaction makes of it since.

    Its records' sequence numbers lie in ``[first, bound)``, which no other segment's do.
    """

    segment: Segment
    end: int  # its size at the start: the records the iteration looks at
    first: int  # the sequence number of its first record
    mapped: mmap.mmap | None  # its map, held until it is walked (see the module's docstring)
    bound: int = 0
    cursor: int = -1  # every record numbered up to here has been looked at
    followed: bool = False  # its own segment is gone: the walk reads a compacted copy


class _Gone(Exception):
    """The segment a walk reads records from was removed, and no map of it is held."""


class _Walk:
    """The entries of one segment, from a lineage's cursor on: its hint's (up to ``end``),
    then its records' from where the hint stops to ``end``."""

    __slots__ = ("end", "hint", "index", "keypos", "mapped", "pos", "segment", "segments", "stop")

    def __init__(
        self,
        segments: dict[int, Segment],
        segment: Segment,
        mapped: mmap.mmap | None,
        end: int,
        hint: Hint | None,
        cursor: int,
    ) -> None:
        self.segments = segments
        self.segment = segment
        self.mapped = mapped
        self.end = end
        self.hint = hint
        self.pos = FILE_HEADER_SIZE
        self.index = self.stop = self.keypos = 0
        if hint is not None:
            lengths, offsets, seqs = hint.columns[1], hint.columns[2], hint.columns[4]
            self.stop = bisect_left(offsets, end)
            # Numbers rise in file order: the entries not looked at yet are a suffix.
            self.index = bisect_right(seqs, cursor, 0, self.stop)
            self.keypos = sum(lengths[: self.index]) + self.index  # each key, then KEY_END
            self.pos = max(hint.covered, FILE_HEADER_SIZE)

    def take(self, count: int, budget: int) -> _Entries | None:
        """Up to ``count`` entries (and about ``budget`` bytes of records); None at the end.

        :raises _Gone: the records still to read are in a segment no longer there.
        """
        if self.hint is not None:
            if self.index < self.stop:
                return self._take_hint(count, budget)
            self.hint = None  # done with it: its map goes now
        if self.pos >= self.end:
            return None
        return self._take_records(min(count, RECORDS_PER_STEP))

    def _take_hint(self, count: int, budget: int) -> _Entries:
        hint = self.hint
        assert hint is not None
        kinds, lengths, offsets, sizes, seqs = hint.columns[:5]
        first = self.index
        stop = min(first + count, self.stop)
        size_list = sizes[first:stop].tolist()
        stop = first + max(1, bisect_right(list(accumulate(size_list)), budget))
        del size_list[stop - first :]
        length_list = lengths[first:stop].tolist()
        end = self.keypos + sum(length_list) + len(length_list)
        keys = bytes(hint.keys[self.keypos : end]).split(KEY_END)
        keys.pop()  # what follows the last KEY_END
        if list(map(len, keys)) != length_list:
            # Checked whole, yet not as its lengths say: read the records instead (from the
            # start; what was looked at already is passed over by its sequence number).
            self.hint, self.pos = None, FILE_HEADER_SIZE
            return _no_entries(self.segment.id)
        self.index, self.keypos = stop, end
        return _Entries(
            self.segment.id,
            keys,
            kinds[first:stop].tolist(),
            offsets[first:stop].tolist(),
            size_list,
            seqs[first:stop].tolist(),
        )

    def _take_records(self, count: int) -> _Entries:
        pos, end = self.pos, self.end
        length = min(end - pos, SCAN_BYTES + MAX_RECORD_SIZE)
        data = self._read(pos, length)
        if len(data) < length:  # the file was cut short under the store
            raise errors.bad_record(self.segment.path, pos + len(data), "truncated record")
        # Records are decoded up to where the next one is surely whole in ``data``.
        limit = len(data) if pos + len(data) >= end else len(data) - MAX_RECORD_SIZE
        entries = _no_entries(self.segment.id)
        offset = 0
        while offset < limit and len(entries.keys) < count:
            try:
                record = decode(data, offset)
            except BadRecord as bad:
                raise errors.bad_record(self.segment.path, pos + offset, bad.reason) from None
            if record.kind in _KINDS:
                entries.keys.append(record.key)
                entries.kinds.append(record.kind)
                entries.offsets.append(pos + offset)
                entries.sizes.append(record.size)
                entries.seqs.append(record.seq)
            offset += record.size
        self.pos = pos + offset
        return entries

    def _read(self, pos: int, length: int) -> bytes:
        mapped = self.mapped
        if mapped is not None and pos + length <= len(mapped):
            return mapped[pos : pos + length]
        # A segment in the table is open for as long as this thread does not give the loop
        # back: only the loop thread takes one out, before it is closed.
        if self.segments.get(self.segment.id) is self.segment:
            return self.segment.read(pos, length)
        raise _Gone


def _read_hint(path: Path, segment: int, created_seq: int, size: int) -> Hint | None:
    """The hint at ``path`` if it is sound and ``segment``'s, else None (its records are read
    instead: a hint is an optimisation, and the next open judges a bad one). In a worker
    thread: it reads and checks the whole file."""
    try:
        # A hint entry is at most 2 bytes longer than its record.
        hint = decode_hint(_files.fs.map_file(path, HINT_OVERHEAD + 2 * size))
        if (hint.segment_id, hint.created_seq) != (segment, created_seq):
            return None
        if not FILE_HEADER_SIZE <= hint.covered <= size:
            return None
        check_hint_entries(hint)
    except (OSError, BadHint):
        return None
    return hint


# -- the iteration ---------------------------------------------------------------------------


class Iteration(Generic[T]):
    """The live keys (or items) of a store whose keys start with a prefix, in no set order.

    ``async for item in iteration``, or :meth:`next_chunk` for several at once (the blocking
    face fetches them so). Used on the store's event loop only. :meth:`aclose` lets go of
    what it holds; dropping it does too.
    """

    def __init__(
        self,
        shared: Shared,
        state: Callable[[], str],
        prefix: bytes,
        emit: Callable[[list[bytes]], list[T]],
        per_step: tuple[int, int],
    ) -> None:
        self._shared = shared
        self._segments = shared.segments
        self._index = shared.index
        self._clock = shared.options.clock
        self._state = state
        self._prefix = prefix
        self._emit = emit
        self._per_step = per_step  # (entries, record bytes) decided in one step
        self._lock = asyncio.Lock()  # one step at a time
        self._ready: collections.deque[T] = collections.deque()
        self._over = False
        # Set by the first step (_begin):
        self._lineages: collections.deque[_Lineage] | None = None
        self._start = 0
        self._regions: dict[int, int] = {}  # segment id -> its size at the start
        self._walk: _Walk | None = None
        self._rewritten: set[bytes] = set()  # keys yielded by rule B (see the module)
        self._firsts: dict[int, int] = {}  # first sequence numbers of segments made since

    def __repr__(self) -> str:
        state = "over" if self._over else "running" if self._lineages is not None else "new"
        return f"<Iteration {self._prefix.decode()!r} {state}>"

    # -- the caller's side -------------------------------------------------------------

    def __aiter__(self) -> Iteration[T]:
        return self

    async def __anext__(self) -> T:
        self._check_open()
        if not self._ready or self._lock.locked():
            await self._fill(1)
        if not self._ready:
            raise StopAsyncIteration
        return self._ready.popleft()

    async def next_chunk(self, n: int = CHUNK) -> list[T]:
        """Up to ``n`` more items: fewer only at the end (an empty list: none are left).

        The loop is given back between steps, each of which holds it for about a millisecond.

        :raises StoreClosedError: the store is not open (closed since the iteration began).
        :raises CorruptionError: a record read is damaged.
        """
        if n < 1:
            raise ValueError(f"next_chunk needs n >= 1, got {n}")
        self._check_open()
        await self._fill(n)
        ready = self._ready
        return [ready.popleft() for _ in range(min(n, len(ready)))]

    async def aclose(self) -> None:
        """End the iteration and let go of what it holds, once a step in progress is over.

        Safe to call more than once; the iteration yields nothing more.
        """
        self._over = True
        async with self._lock:
            self._release()

    def _check_open(self) -> None:
        state = self._state()
        if state != "open":
            raise errors.not_open(state)

    async def _fill(self, n: int) -> None:
        """Take steps until ``n`` items are ready or none are left."""
        async with self._lock:
            try:
                while len(self._ready) < n and not self._over:
                    await asyncio.sleep(0)  # the loop is given back before every step
                    self._check_open()
                    if not self._over:
                        with errors.map_os_errors("reading the store's keys"):
                            self._ready.extend(await self._step())
            except BaseException:
                # As an async generator ends when an error passes through it.
                self._over = True
                self._release()
                raise

    def _release(self) -> None:
        """Let go of everything, the items not handed over yet too."""
        self._ready.clear()
        self._finish()

    def _finish(self) -> None:
        """Let go of what the walk holds; the items ready are still handed over."""
        self._over = True
        self._lineages = collections.deque()  # with them, the maps they held
        self._walk = None
        self._rewritten.clear()
        self._firsts.clear()

    # -- a step ------------------------------------------------------------------------

    async def _step(self) -> list[T]:
        """Look at the next entries; the items among them. Awaits only a worker thread (a
        hint) or the batch lock (the first step), after which the store is checked open
        again before any segment is read."""
        if self._lineages is None:
            await self._begin()
        walked = await self._next_entries()
        if walked is None:
            self._finish()
            return []
        lineage, entries = walked
        return self._emit(self._decide(lineage, entries))

    async def _begin(self) -> None:
        """Take the starting point: the segments, their sizes, the next sequence number.

        Under the batch lock, which the writer holds from planning a batch until it is
        indexed and compaction while it moves records into a new segment: so every record
        numbered below the start is indexed (or was refused), and no segment is both in the
        table and being replaced by its compacted copy.
        """
        shared = self._shared
        async with shared.batch_lock:
            self._check_open()
            hold = _files.MAP_WHOLE_FILES
            if hold:
                shared.active.map()  # so that its map covers all the walk will read of it
            self._start = shared.space.next_seq
            self._regions = {sid: segment.size for sid, segment in self._segments.items()}
            lineages = [
                _Lineage(segment, segment.size, self._first_of(segment), _held(segment, hold))
                for segment in self._segments.values()
                if segment.size > FILE_HEADER_SIZE
            ]
        lineages.sort(key=lambda lineage: lineage.first)
        for lineage, after in pairwise(lineages):
            lineage.bound = after.first
        if lineages:
            lineages[-1].bound = self._start
        self._lineages = collections.deque(lineages)
        self._firsts.clear()  # only segments made since the start are asked again

    def _first_of(self, segment: Segment) -> int:
        """The sequence number of ``segment``'s first record (it has one), read once."""
        first = self._firsts.get(segment.id)
        if first is None:
            first = self._firsts[segment.id] = record_seq(
                segment.read(FILE_HEADER_SIZE, HEADER_SIZE)
            )
        return first

    async def _next_entries(self) -> tuple[_Lineage, _Entries] | None:
        """The next entries of the lineage being walked, opening the next lineage (or the
        compacted copy of this one) as needed; None once every lineage is walked."""
        lineages = self._lineages
        assert lineages is not None
        count, budget = self._per_step
        while lineages:
            lineage = lineages[0]
            if self._walk is None:
                self._walk = await self._open_walk(lineage)
                self._check_open()
            walk = self._walk
            try:
                entries = walk.take(count, budget) if walk is not None else None
            except _Gone:
                lineage.followed, self._walk = True, None
                continue
            if entries is not None:
                return lineage, entries
            lineages.popleft()  # with it, the map it held
            self._walk = None
        return None

    async def _open_walk(self, lineage: _Lineage) -> _Walk | None:
        """A walk of the segment holding ``lineage`` now, its hint read if it has a good one;
        None if no record of it is left."""
        segment, end, mapped = lineage.segment, lineage.end, lineage.mapped
        if lineage.followed or (mapped is None and self._segments.get(segment.id) is not segment):
            lineage.followed, lineage.mapped = True, None
            found = self._copy_of(lineage)
            if found is None:
                return None
            segment, end = found, found.size
            mapped = _held(found, _files.MAP_WHOLE_FILES)
        path = self._shared.directory / hint_name(segment.id)
        hint = await _threads.run(_read_hint, path, segment.id, segment.created_seq, segment.size)
        return _Walk(self._segments, segment, mapped, end, hint, lineage.cursor)

    def _copy_of(self, lineage: _Lineage) -> Segment | None:
        """The segment compaction has copied what ``lineage`` still holds into, if any: made
        since the start, and holding its records (a compacted segment holds records of one
        segment only, under their own sequence numbers)."""
        for segment in self._segments.values():
            if (
                segment.kind == FILE_COMPACTED
                and segment.id not in self._regions
                and segment.size > FILE_HEADER_SIZE
                and lineage.first <= self._first_of(segment) < lineage.bound
            ):
                return segment
        return None

    # -- deciding ----------------------------------------------------------------------

    def _decide(self, lineage: _Lineage, entries: _Entries) -> list[bytes]:
        """The keys of ``entries`` to yield (rules A and B of the module's docstring)."""
        prefix, start, cursor = self._prefix, self._start, lineage.cursor
        locate, clock = self._index.locate, self._clock
        base = entries.segment_id << SEGMENT_SHIFT
        found = []
        columns = entries.keys, entries.kinds, entries.offsets, entries.sizes, entries.seqs
        for key, kind, offset, size, seq in zip(*columns, strict=True):
            if kind != KIND_PUT or not cursor < seq < start or not key.startswith(prefix):
                continue
            loc = locate(key, clock)  # None if absent or expired
            if loc is None:
                continue
            if loc == base | offset << SIZE_BITS | size or self._yield_at(loc, key, seq):
                found.append(key)
        if entries.seqs:
            lineage.cursor = max(cursor, entries.seqs[-1])
        return found

    def _yield_at(self, loc: int, key: bytes, seq: int) -> bool:
        """Whether ``key``, indexed at ``loc`` (not the record numbered ``seq`` being looked
        at), is to be yielded now: its record there is that one moved (A), or one written
        since the start that has not yielded it yet (B)."""
        segment_id, offset = loc >> SEGMENT_SHIFT, loc >> SIZE_BITS & OFFSET_MASK
        start_size = self._regions.get(segment_id)
        if start_size is not None and offset < start_size:
            return False  # a record that was there at the start, numbered otherwise
        segment = self._segments.get(segment_id)
        if segment is None:
            return False
        try:
            record = decode(segment.read(offset, loc & SIZE_MASK))
        except BadRecord as bad:
            raise errors.bad_record(segment.path, offset, bad.reason) from None
        if record.kind != KIND_PUT or record.key != key:
            return False  # another key's entry (the same hash): this key is absent
        if record.seq == seq:
            return True
        if record.seq >= self._start and key not in self._rewritten:
            self._rewritten.add(key)
            return True
        return False


def _held(segment: Segment, hold: bool) -> mmap.mmap | None:
    """``segment``'s map, to be held by a walk, where a removed file's map stays valid."""
    return segment.mapped if hold else None


# -- the two kinds ---------------------------------------------------------------------------


def iterate_keys(shared: Shared, state: Callable[[], str], prefix: bytes) -> Iteration[str]:
    """The live keys starting with ``prefix`` (checked: see :func:`check_prefix`)."""
    per_step = (HINT_ENTRIES_PER_STEP, 1 << 62)  # records are bounded by RECORDS_PER_STEP

    def emit(keys: list[bytes]) -> list[str]:
        return [key.decode() for key in keys]

    return Iteration(shared, state, prefix, emit, per_step)


def iterate_items(
    shared: Shared, reader: Reader, state: Callable[[], str], prefix: bytes
) -> Iteration[tuple[str, dict[str, Any]]]:
    """``(key, value)`` of the live keys starting with ``prefix``, each value read as
    ``read`` reads it; a key that can no longer be read is passed over."""
    read = reader.on_loop

    def emit(keys: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
        items = []
        for key in keys:
            name = key.decode()
            try:
                items.append((name, read(name)))
            except KeyNotFoundError:
                continue
        return items

    return Iteration(shared, state, prefix, emit, (ITEMS_PER_STEP, ITEM_BYTES_PER_STEP))

"""The in-memory index: key → where its newest live record lies, plus the byte accounting.

No values are held here, and no keys either, for all but a few: the locations are kept in a
:class:`~index.keydir.KeyDir` by a 48-bit keyed hash of the key, at about 25 bytes a key
(a dict of keys cost over 200). The record at a location holds its key, so whoever needs to
know that a location is a given key's reads it there: a read compares the key anyway, and a
write asks :meth:`Index.find`, which compares it. Two live keys whose hashes agree (about one
pair among 24 million keys) cannot share the directory's entry: the second is kept by
its full key in a small dict beside it. Keys with a deadline are also kept by name, with it.

Changes are made on the store's event-loop thread (and by the open, before the store is
shared); nothing in this module awaits, so each method is atomic with respect to other tasks,
and a reader in another thread sees each directory change whole (see ``index.keydir``).

A location is one int: ``segment << 48 | offset << 16 | size``. An int per key, rather than a
tuple of three ints and a float, halves the index's memory, and a whole segment's locations
can be made from its hint's columns by C-level ``map`` calls when a store opens. A record is
never larger than 64 KiB (``MAX_RECORD_SIZE``) and a segment never reaches 4 GiB
(``MAX_SEGMENT_BYTES``), so the fields cannot overlap. Deadlines are kept apart, for the keys
that have one, since most keys never expire.
"""

from __future__ import annotations

import heapq
import os
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any, Final

from aiokv._bitcask.format.hint import Column, entry_size
from aiokv._bitcask.format.record import MAX_RECORD_SIZE, MAX_SEGMENT_BYTES, delete_size
from aiokv._bitcask.index.keydir import KeyDir, PyKeyDir
from aiokv._core.clock import Clock

OFFSET_BITS: Final = 32
SIZE_BITS: Final = 16

# The format's limits fit a location's fields.
assert MAX_SEGMENT_BYTES <= 1 << OFFSET_BITS
assert MAX_RECORD_SIZE < 1 << SIZE_BITS

SEGMENT_SHIFT: Final = OFFSET_BITS + SIZE_BITS
OFFSET_MASK: Final = (1 << OFFSET_BITS) - 1
SIZE_MASK: Final = (1 << SIZE_BITS) - 1


def location(segment: int, offset: int, size: int) -> int:
    """The location of a record of ``size`` bytes at ``offset`` in ``segment``."""
    return segment << SEGMENT_SHIFT | offset << SIZE_BITS | size


def locations(segment: int, offsets: list[int], sizes: list[int]) -> list[int]:
    """:func:`location` of each record at ``offsets`` in ``segment``, of ``sizes`` (a batch):
    the fields shifted inline, a function call per record being most of the cost."""
    base = segment << SEGMENT_SHIFT
    return [base | offset << SIZE_BITS | size for offset, size in zip(offsets, sizes, strict=True)]


def segment_of(loc: int) -> int:
    return loc >> SEGMENT_SHIFT


def offset_of(loc: int) -> int:
    return loc >> SIZE_BITS & OFFSET_MASK


def size_of(loc: int) -> int:
    return loc & SIZE_MASK


def tombstone_size(key: bytes) -> int:
    """What deleting ``key`` writes: its tombstone and the tombstone's hint entry."""
    return delete_size(key) + entry_size(len(key))


def tombstone_sizes(count: int, key_bytes: int) -> int:
    """The sum of :func:`tombstone_size` over ``count`` keys of ``key_bytes`` bytes in all,
    with no call per key: a fixed part each, and each key once in its tombstone and once in
    its hint entry."""
    return count * tombstone_size(b"") + 2 * key_bytes


RecordHolds = Callable[[int, bytes], bool]
"""Whether the record at a location is a put of a key: False only for a sound record of
another key (see :class:`Index`)."""


_consume: Final[Callable[[Iterable[object]], None]] = deque[object](maxlen=0).extend
"""Runs an iterator to its end and keeps nothing: a loop of C calls with no Python loop."""


def _no_records(loc: int, key: bytes) -> bool:
    return True


class Index:
    """Key → location, with live bytes per segment and the room live keys' deletes need.

    ``holds`` reads the record at a location for a key; it is asked only when a key's
    hash is found in the directory and the question is whether that entry is this key's (a
    write, or a delete, never a read). If the record cannot be read whole and sound (damaged,
    or the disk fails), the entry is taken for the key's own: a damaged record of this key (a
    dead one, say, which nothing else reads) is far likelier than another key with this hash
    *and* a damaged record, and taking it for another key's would leave a deleted key indexed.

    ``tombstone_bytes`` is the total size of the tombstones that deleting every key in the
    index would write. The writer keeps that much of ``max_size`` free, so a full store can
    always be emptied.
    """

    __slots__ = (
        "_deadlines",
        "_dir",
        "_expiries",
        "_named",
        "holds",
        "live_bytes",
        "tombstone_bytes",
        "total_live_bytes",
    )

    def __init__(self, holds: RecordHolds = _no_records, *, keydir: PyKeyDir | None = None) -> None:
        # A fresh random hash key per index: which keys collide cannot be known outside.
        self._dir = keydir if keydir is not None else KeyDir(os.urandom(16))
        # Live keys whose hash another live key holds in the directory (almost always none).
        self._named: dict[bytes, int] = {}
        self._deadlines: dict[bytes, float] = {}  # only keys whose record carries an expiry
        # (deadline, key) for every put that carried a TTL; stale items are skipped when
        # popped, which is cheaper than finding and removing them on every overwrite.
        self._expiries: list[tuple[float, bytes]] = []
        self.holds = holds
        self.live_bytes: defaultdict[int, int] = defaultdict(int)
        self.tombstone_bytes = 0
        self.total_live_bytes = 0

    def __len__(self) -> int:
        return len(self._dir) + len(self._named)

    def __contains__(self, key: bytes) -> bool:
        return self.find(key) is not None

    def find(self, key: bytes) -> int | None:
        """The location of ``key``'s record, expired or not; None if it is not indexed."""
        if self._named:
            loc = self._named.get(key)
            if loc is not None:
                return loc
        loc = self._dir.get(key)
        if loc is None or self.holds(loc, key):
            return loc
        return None  # another key with the same hash

    def points_at(self, key: bytes, loc: int) -> bool:
        """Whether ``key``'s entry is ``loc``, where a record of ``key`` lies: no read needed,
        since no two records share a location."""
        if self._named and self._named.get(key) == loc:
            return True
        return self._dir.get(key) == loc

    def same_hash(self, key: bytes, other: bytes) -> bool:
        """Whether the two keys would share a directory entry."""
        return self._dir.hash(key) == self._dir.hash(other)

    def surely_absent(self, key: bytes, now: float) -> bool:
        """True only if ``key`` is surely not live at ``now``; asks no record (any thread).

        A key kept by name has its hash in the directory too, and a deadline is kept only
        for an indexed key, so both answers are exact when they say absent.
        """
        if self._dir.get(key) is None:
            return True
        deadline = self._deadlines.get(key) if self._deadlines else None
        return deadline is not None and now >= deadline

    def deadline(self, key: bytes) -> float:
        """When ``key`` expires; 0.0 if never (or if it is not in the index)."""
        return self._deadlines.get(key, 0.0)

    def get_live(self, key: bytes, now: float) -> int | None:
        """The location of ``key``'s record unless it is missing or expired.

        A key is gone once its deadline is reached: at ``now == deadline`` it is expired.
        """
        loc = self.find(key)
        if loc is not None and self._deadlines:
            deadline = self._deadlines.get(key)
            if deadline is not None and now >= deadline:
                return None
        return loc

    def locate(self, key: bytes, clock: Clock) -> int | None:
        """Where ``key``'s record should be, if it is indexed and live: the read path.

        Nothing is read to confirm it: the caller reads the record there and checks its key,
        and a record of another key (one with the same hash) means ``key`` is absent. The time
        is asked only if some key has a deadline.
        """
        loc = None
        if self._named:
            loc = self._named.get(key)
        if loc is None:
            loc = self._dir.get(key)
        if loc is not None and self._deadlines:
            deadline = self._deadlines.get(key)
            if deadline is not None and clock.time() >= deadline:
                return None
        return loc

    def put(self, key: bytes, loc: int, expiry: float) -> int | None:
        """Point ``key`` at ``loc``; return the location it replaced, if any."""
        old = self._put(key, loc)
        if old is None:
            self.tombstone_bytes += tombstone_size(key)
        else:
            self.live_bytes[segment_of(old)] -= size_of(old)
            self.total_live_bytes -= size_of(old)
        self.live_bytes[segment_of(loc)] += size_of(loc)
        self.total_live_bytes += size_of(loc)
        if expiry:
            self._deadlines[key] = expiry
            heapq.heappush(self._expiries, (expiry, key))
        elif self._deadlines:
            self._deadlines.pop(key, None)
        return old

    def any_indexed(self, keys: list[bytes]) -> bool:
        """Whether any of ``keys`` may be indexed, live or expired: false only if no entry
        holds the hash of any of them (a key kept by name has its hash held too)."""
        return any(map(self._dir.get, keys))  # a location is never 0

    def add_vacant(
        self,
        keys: list[bytes],
        locs: list[int],
        expiries: list[float],
        segment: int,
        size: int,
        tombstones: int,
    ) -> None:
        """:meth:`put` of keys that :meth:`any_indexed` found absent, all in ``segment``
        (a batch of creates): one directory insert each and the sums added once. ``size``
        is the sum of their records' sizes, ``tombstones`` of their :func:`tombstone_size`."""
        if len(keys) != len(locs):
            raise ValueError("add_vacant: as many locations as keys")
        _consume(map(self._dir.put, keys, locs))  # one insert per key, the loop in C
        self.live_bytes[segment] += size
        self.total_live_bytes += size
        self.tombstone_bytes += tombstones
        if any(expiries):
            deadlines, heap = self._deadlines, self._expiries
            for key, expiry in zip(keys, expiries, strict=True):
                if expiry:
                    deadlines[key] = expiry
                    heapq.heappush(heap, (expiry, key))

    def _put(self, key: bytes, loc: int) -> int | None:
        named = self._named
        if named and key in named:
            was = named[key]
            named[key] = loc
            return was
        old = self._dir.put(key, loc)
        if old is not None and not self.holds(old, key):
            # The entry was another live key's: it keeps it, and this key is kept by name.
            self._dir.put(key, old)
            named[key] = loc
            return None
        return old

    def relocate(self, key: bytes, old: int, new: int) -> bool:
        """Point ``key`` at ``new`` (the same record, copied by compaction) if it is still at
        ``old``; return whether it was. A key written again meanwhile is left alone: its new
        record lies at another location, since nothing is ever written twice at one place."""
        if self._named and self._named.get(key) == old:
            self._named[key] = new
        elif self._dir.get(key) == old:
            self._dir.put(key, new)
        else:
            return False
        self.live_bytes[segment_of(old)] -= size_of(old)
        self.live_bytes[segment_of(new)] += size_of(new)
        return True

    def remove(self, key: bytes, at: int | None = None) -> int | None:
        """Drop ``key`` (only if its entry is ``at``, when given); return its location."""
        named = self._named
        old: int | None = named.get(key) if named else None
        if old is not None:
            if at is not None and old != at:
                return None
            del named[key]
        else:
            old = self._dir.get(key)
            if old is None or (old != at if at is not None else not self.holds(old, key)):
                return None
            self._dir.pop(key)
            if named:
                self._promote(key)
        self.tombstone_bytes -= tombstone_size(key)
        self.live_bytes[segment_of(old)] -= size_of(old)
        self.total_live_bytes -= size_of(old)
        if self._deadlines:
            self._deadlines.pop(key, None)
        return old

    def remove_each(self, keys: list[bytes], locs: list[int]) -> None:
        """:meth:`remove` of each key at its location (a ``delete_many``): an entry no longer
        there (the reaper dropped an expired key meanwhile) is passed over.

        The bookkeeping of :meth:`remove`, summed once for the batch rather than per key: a
        call per key held the loop for seconds at a few hundred thousand keys.
        """
        if self._named:  # a key kept by name may be among them: one at a time
            for key, loc in zip(keys, locs, strict=True):
                self.remove(key, loc)
            return
        get, pop, deadlines = self._dir.get, self._dir.pop, self._deadlines
        live_bytes = self.live_bytes
        removed = removed_bytes = key_bytes = 0
        for key, loc in zip(keys, locs, strict=True):
            if get(key) != loc:
                continue
            pop(key)
            size = size_of(loc)
            live_bytes[segment_of(loc)] -= size
            removed += 1
            removed_bytes += size
            key_bytes += len(key)
            if deadlines:
                deadlines.pop(key, None)
        self.tombstone_bytes -= tombstone_sizes(removed, key_bytes)
        self.total_live_bytes -= removed_bytes

    def _promote(self, removed: bytes) -> None:
        """Give the directory entry ``removed`` held to a key kept by name for its hash."""
        for key, loc in self._named.items():
            if self.same_hash(key, removed):
                del self._named[key]
                self._dir.put(key, loc)
                return

    def drop_expired(self, now: float, limit: int) -> int:
        """Remove up to ``limit`` keys whose deadline has passed; return how many were removed.

        A heap item may be stale (its key was deleted or re-created since); the key is removed
        only if its deadline now is that item's and has passed.
        """
        removed = 0
        heap = self._expiries
        deadlines = self._deadlines
        while heap and heap[0][0] <= now and removed < limit:
            deadline, key = heapq.heappop(heap)
            if deadlines.get(key) == deadline:
                self.remove(key)
                removed += 1
        return removed

    def locations(self) -> list[int]:
        """Every entry's location, in no order (no key can be listed: the index holds hashes).

        One C call for the directory, which makes an int per key: about 30 ms per million
        keys, all of it on the calling thread, which sees the index at one instant.
        """
        locations = self._dir.locations()
        locations.extend(self._named.values())
        return locations

    def add_framing(self, segment_id: int, size: int) -> None:
        """Count ``size`` bytes of ``segment_id`` that are no key's record but needed for as
        long as the segment is (batch records): live for compaction, not in the total of
        live values."""
        self.live_bytes[segment_id] += size

    def forget_segment(self, segment_id: int) -> None:
        """Drop the accounting of a removed segment (no entry may point into it any more)."""
        self.live_bytes.pop(segment_id, None)

    # The open path: a hint's entries loaded in bulk, deadlines set once at the end.

    def load(
        self,
        segment_id: int,
        keys: bytes | memoryview[Any],
        columns: tuple[Column, ...],
        start: int,
        pos: int,
    ) -> tuple[int, int]:
        """Add a hint's entries from ``start`` (key at ``pos``) until one whose key's hash is
        already indexed; return that entry's number and key position (see ``KeyDir.load``).

        Their deadlines are not set here: see :meth:`set_deadlines`.
        """
        kinds, lengths, offsets, sizes = columns[:4]
        stop, pos, added, key_bytes, size = self._dir.load(
            keys, lengths, kinds, offsets, sizes, segment_id, start, pos
        )
        self.tombstone_bytes += tombstone_sizes(added, key_bytes)
        self.live_bytes[segment_id] += size
        self.total_live_bytes += size
        return stop, pos

    def set_deadlines(self, deadlines: dict[bytes, float]) -> None:
        """Take over ``deadlines`` (of indexed keys, none passed) as the keys' deadlines."""
        self._deadlines = deadlines
        self._expiries = [(deadline, key) for key, deadline in deadlines.items()]
        heapq.heapify(self._expiries)

"""The in-memory index: key → where its newest live record lies, plus the byte accounting.

No values are held here, only locations. Keys are held as their UTF-8 bytes: that is what
records and hints hold, so an open decodes nothing, and ``bytes`` are smaller than ``str``.
Everything runs on the store's event-loop thread; nothing in this module awaits, so each
method is atomic with respect to other tasks.

A location is one int: ``segment << 48 | offset << 16 | size``. An int per key, rather than a
tuple of three ints and a float, halves the index's memory, and a whole segment's locations
can be made from its hint's columns by C-level ``map`` calls when a store opens. A record is
never larger than 64 KiB (``MAX_RECORD_SIZE``) and a segment never reaches 4 GiB
(``MAX_SEGMENT_BYTES``), so the fields cannot overlap. Deadlines are kept apart, for the keys
that have one, since most keys never expire.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from typing import Final

from ._clock import Clock
from ._hint import entry_size
from ._record import MAX_RECORD_SIZE, delete_size

OFFSET_BITS: Final = 32
SIZE_BITS: Final = 16
MAX_SEGMENT_BYTES: Final = 1 << OFFSET_BITS
"""A segment's size limit: an offset in it must fit a location's 32-bit field."""

assert MAX_RECORD_SIZE < 1 << SIZE_BITS

SEGMENT_SHIFT: Final = OFFSET_BITS + SIZE_BITS
OFFSET_MASK: Final = (1 << OFFSET_BITS) - 1
SIZE_MASK: Final = (1 << SIZE_BITS) - 1


def location(segment: int, offset: int, size: int) -> int:
    """The location of a record of ``size`` bytes at ``offset`` in ``segment``."""
    return segment << SEGMENT_SHIFT | offset << SIZE_BITS | size


def segment_of(loc: int) -> int:
    return loc >> SEGMENT_SHIFT


def offset_of(loc: int) -> int:
    return loc >> SIZE_BITS & OFFSET_MASK


def size_of(loc: int) -> int:
    return loc & SIZE_MASK


def tombstone_size(key: bytes) -> int:
    """What deleting ``key`` writes: its tombstone and the tombstone's hint entry."""
    return delete_size(key) + entry_size(len(key))


class Index:
    """Key → location, with live bytes per segment and the room live keys' deletes need.

    ``tombstone_bytes`` is the total size of the tombstones that deleting every key in the
    index would write. The writer keeps that much of ``max_size`` free, so a full store can
    always be emptied.
    """

    __slots__ = (
        "_deadlines",
        "_expiries",
        "_locations",
        "live_bytes",
        "tombstone_bytes",
        "total_live_bytes",
    )

    def __init__(self) -> None:
        self._locations: dict[bytes, int] = {}
        self._deadlines: dict[bytes, float] = {}  # only keys whose record carries an expiry
        # (deadline, key) for every put that carried a TTL; stale items are skipped when
        # popped, which is cheaper than finding and removing them on every overwrite.
        self._expiries: list[tuple[float, bytes]] = []
        self.live_bytes: defaultdict[int, int] = defaultdict(int)
        self.tombstone_bytes = 0
        self.total_live_bytes = 0

    @classmethod
    def load(
        cls, locations: dict[bytes, int], deadlines: dict[bytes, float], live_bytes: dict[int, int]
    ) -> Index:
        """An index holding ``locations`` and ``deadlines`` (taken over, not copied).

        ``deadlines`` holds exactly the keys of ``locations`` whose record has an expiry, and
        ``live_bytes`` the records' total size per segment. This is the open path, where a
        key-by-key :meth:`put` would cost seconds for a million keys.
        """
        index = cls()
        index._locations = locations
        index._deadlines = deadlines
        index.live_bytes.update(live_bytes)
        index.total_live_bytes = sum(live_bytes.values())
        key_bytes = sum(map(len, locations))
        index.tombstone_bytes = len(locations) * tombstone_size(b"") + 2 * key_bytes
        index._expiries = [(deadline, key) for key, deadline in deadlines.items()]
        heapq.heapify(index._expiries)
        return index

    def __len__(self) -> int:
        return len(self._locations)

    def __contains__(self, key: bytes) -> bool:
        return key in self._locations

    def get(self, key: bytes) -> int | None:
        """The location of ``key``'s record, expired or not."""
        return self._locations.get(key)

    def deadline(self, key: bytes) -> float:
        """When ``key`` expires; 0.0 if never (or if it is not in the index)."""
        return self._deadlines.get(key, 0.0)

    def get_live(self, key: bytes, now: float) -> int | None:
        """The location of ``key``'s record unless it is missing or expired.

        A key is gone once its deadline is reached: at ``now == deadline`` it is expired.
        """
        loc = self._locations.get(key)
        if loc is not None and self._deadlines:
            deadline = self._deadlines.get(key)
            if deadline is not None and now >= deadline:
                return None
        return loc

    def locate(self, key: bytes, clock: Clock) -> int | None:
        """:meth:`get_live` at ``clock``'s time, asked only if some key has a deadline: the
        read path, where most stores never need the time."""
        loc = self._locations.get(key)
        if loc is not None and self._deadlines:
            deadline = self._deadlines.get(key)
            if deadline is not None and clock.time() >= deadline:
                return None
        return loc

    def put(self, key: bytes, loc: int, expiry: float) -> int | None:
        """Point ``key`` at ``loc``; return the location it replaced, if any."""
        old = self._locations.get(key)
        if old is None:
            self.tombstone_bytes += tombstone_size(key)
        else:
            self.live_bytes[segment_of(old)] -= size_of(old)
            self.total_live_bytes -= size_of(old)
        self._locations[key] = loc
        self.live_bytes[segment_of(loc)] += size_of(loc)
        self.total_live_bytes += size_of(loc)
        if expiry:
            self._deadlines[key] = expiry
            heapq.heappush(self._expiries, (expiry, key))
        elif self._deadlines:
            self._deadlines.pop(key, None)
        return old

    def relocate(self, key: bytes, old: int, new: int) -> bool:
        """Point ``key`` at ``new`` (the same record, copied by compaction) if it is still at
        ``old``; return whether it was. A key written again meanwhile is left alone: its new
        record lies at another location, since nothing is ever written twice at one place."""
        if self._locations.get(key) != old:
            return False
        self._locations[key] = new
        self.live_bytes[segment_of(old)] -= size_of(old)
        self.live_bytes[segment_of(new)] += size_of(new)
        return True

    def remove(self, key: bytes) -> int | None:
        old = self._locations.pop(key, None)
        if old is not None:
            self.tombstone_bytes -= tombstone_size(key)
            self.live_bytes[segment_of(old)] -= size_of(old)
            self.total_live_bytes -= size_of(old)
            if self._deadlines:
                self._deadlines.pop(key, None)
        return old

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

    def forget_segment(self, segment_id: int) -> None:
        """Drop the accounting of a removed segment (no entry may point into it any more)."""
        self.live_bytes.pop(segment_id, None)

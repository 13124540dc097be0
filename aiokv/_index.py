"""The in-memory index: key → where its newest live record lies, plus the byte accounting.

No values are held here, only locations. Everything runs on the store's event-loop thread;
nothing in this module awaits, so each method is atomic with respect to other tasks.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from typing import NamedTuple

from ._hint import entry_size
from ._record import delete_size


class Entry(NamedTuple):
    """Where a live put record lies, and when it expires (0.0: never)."""

    segment: int
    offset: int
    size: int
    expiry: float


def is_expired(entry: Entry, now: float) -> bool:
    """A key is gone once its deadline is reached: at ``now == expiry`` it is already expired."""
    return entry.expiry != 0.0 and now >= entry.expiry


def tombstone_size(key: str) -> int:
    """What deleting ``key`` writes: its tombstone and the tombstone's hint entry."""
    key_bytes = key.encode("utf-8")
    return delete_size(key_bytes) + entry_size(len(key_bytes))


class Index:
    """Key → :class:`Entry`, with live bytes per segment and the room live keys' deletes need.

    ``tombstone_bytes`` is the total size of the tombstones that deleting every key in the
    index would write. The writer keeps that much of ``max_size`` free, so a full store can
    always be emptied.
    """

    __slots__ = ("_entries", "_expiries", "live_bytes", "tombstone_bytes", "total_live_bytes")

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        # (deadline, key) for every put that carried a TTL; stale items are skipped when
        # popped, which is cheaper than finding and removing them on every overwrite.
        self._expiries: list[tuple[float, str]] = []
        self.live_bytes: defaultdict[int, int] = defaultdict(int)
        self.tombstone_bytes = 0
        self.total_live_bytes = 0

    @classmethod
    def load(
        cls, entries: dict[str, Entry], expiring: list[str], live_bytes: dict[int, int]
    ) -> Index:
        """An index holding ``entries`` (taken over, not copied), accounted in bulk.

        ``expiring`` names (at least) every key whose entry has an expiry, and ``live_bytes``
        gives the entries' total size per segment. This is the open path, where a key-by-key
        :meth:`put` would cost seconds for a million keys.
        """
        index = cls()
        index._entries = entries
        index.live_bytes.update(live_bytes)
        index.total_live_bytes = sum(live_bytes.values())
        key_bytes = sum(map(len, map(str.encode, entries)))  # UTF-8 lengths, at C speed
        index.tombstone_bytes = len(entries) * tombstone_size("") + 2 * key_bytes
        index._expiries = [
            (entry.expiry, key)
            for key in set(expiring)
            if (entry := entries.get(key)) is not None and entry.expiry
        ]
        heapq.heapify(index._expiries)
        return index

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

    def get_live(self, key: str, now: float) -> Entry | None:
        """The entry of ``key`` unless it is missing or expired."""
        entry = self._entries.get(key)
        if entry is None or is_expired(entry, now):
            return None
        return entry

    def put(self, key: str, entry: Entry) -> None:
        old = self._entries.get(key)
        if old is None:
            self.tombstone_bytes += tombstone_size(key)
        else:
            self.live_bytes[old.segment] -= old.size
            self.total_live_bytes -= old.size
        self._entries[key] = entry
        self.live_bytes[entry.segment] += entry.size
        self.total_live_bytes += entry.size
        if entry.expiry:
            heapq.heappush(self._expiries, (entry.expiry, key))

    def relocate(self, key: str, old: Entry, new: Entry) -> bool:
        """Point ``key`` at ``new`` (the same record, copied by compaction) if it is still at
        ``old``; return whether it was. A key written again meanwhile is left alone."""
        if self._entries.get(key) is not old:
            return False
        self._entries[key] = new
        self.live_bytes[old.segment] -= old.size
        self.live_bytes[new.segment] += new.size
        return True

    def remove(self, key: str) -> Entry | None:
        old = self._entries.pop(key, None)
        if old is not None:
            self.tombstone_bytes -= tombstone_size(key)
            self.live_bytes[old.segment] -= old.size
            self.total_live_bytes -= old.size
        return old

    def drop_expired(self, now: float, limit: int) -> int:
        """Remove up to ``limit`` keys whose deadline has passed; return how many were removed.

        A heap item may be stale (its key was deleted or re-created since); the key is removed
        only if the entry in the index now is itself expired.
        """
        removed = 0
        heap = self._expiries
        while heap and heap[0][0] <= now and removed < limit:
            _deadline, key = heapq.heappop(heap)
            entry = self._entries.get(key)
            if entry is not None and is_expired(entry, now):
                self.remove(key)
                removed += 1
        return removed

    def forget_segment(self, segment_id: int) -> None:
        """Drop the accounting of a removed segment (no entry may point into it any more)."""
        self.live_bytes.pop(segment_id, None)

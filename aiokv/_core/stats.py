"""``StoreStats``: a snapshot of a store's size and shape."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StoreStats:
    """What ``stats()`` reports. Sizes are in bytes.

    :param live_keys: keys in the index (an expired key counts until the reaper drops it).
    :param live_bytes: the records of those keys: headers, keys and values.
    :param dead_bytes: every other record byte: overwritten, deleted and expired records and
        tombstones; what compaction can reclaim (tombstones once no older file needs them).
    :param disk_bytes: every file in the store directory, as ``max_size`` counts it.
    :param segment_count: data files.
    :param last_compaction: when the last compaction step finished (the store's clock, Unix
        seconds), or ``None`` if none has run since the store was opened.
    """

    live_keys: int
    live_bytes: int
    dead_bytes: int
    disk_bytes: int
    segment_count: int
    last_compaction: float | None

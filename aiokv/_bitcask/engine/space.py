"""What the engine's parts share, each piece with one owner: ``Space`` and ``Shared``.

The writer and the compactor both grow the store directory and both take numbers: the writer
numbers records (sequence numbers) and the log segments it rolls over to; compaction numbers
its output segments, which record the next sequence number as their ``created_seq``. Both ask
:class:`Space`, on the event-loop thread, rather than reaching into each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

from aiokv._bitcask.format.names import MAX_SEGMENT_ID
from aiokv._bitcask.index.index import Index
from aiokv._bitcask.options import Options
from aiokv._bitcask.system.segment import ReadGate, Segment
from aiokv.errors import StoreIOError


class Space:
    """The directory's bytes as ``max_size`` counts them, and the next numbers to give out.

    ``disk_bytes`` is every file in the directory, kept as files are written and removed (the
    open measures it once). ``compaction_bytes`` is the part of it a compaction output being
    written has claimed: creates leave room for one compaction step, less what that step
    already holds.
    """

    __slots__ = (
        "_next_segment_id",
        "_next_seq",
        "compaction_bytes",
        "disk_bytes",
        "largest_segment",
    )

    def __init__(
        self, disk_bytes: int, next_seq: int, next_segment_id: int, largest_segment: int = 0
    ) -> None:
        self.disk_bytes = disk_bytes
        self.compaction_bytes = 0
        # The largest segment since the open (a batch larger than segment_max_bytes makes one
        # larger): compacting it may need that much room, which creates leave free.
        self.largest_segment = largest_segment
        self._next_seq = next_seq
        self._next_segment_id = next_segment_id

    @property
    def next_seq(self) -> int:
        """The sequence number the next record will get."""
        return self._next_seq

    def take_seq(self) -> int:
        seq = self._next_seq
        self._next_seq = seq + 1
        return seq

    def take_seqs(self, count: int) -> range:
        """``count`` consecutive sequence numbers."""
        seq = self._next_seq
        self._next_seq = seq + count
        return range(seq, seq + count)

    def take_segment_id(self) -> int:
        """The next unused segment number.

        :raises StoreIOError: every number a segment's name can carry has been used.
        """
        segment_id = self._next_segment_id
        if segment_id > MAX_SEGMENT_ID:
            raise StoreIOError(
                f"segment numbers exhausted (the last is {MAX_SEGMENT_ID}); "
                "the store accepts no more writes"
            )
        self._next_segment_id = segment_id + 1
        return segment_id

    @contextlib.contextmanager
    def claim_for_compaction(self, size: int) -> Iterator[None]:
        """Count ``size`` bytes of compaction output before a byte of it is written (the cap
        counts every file, temporary ones too); given back if the output is not kept."""
        self.disk_bytes += size
        self.compaction_bytes = size
        try:
            yield
        except BaseException:
            self.disk_bytes -= size
            raise
        finally:
            self.compaction_bytes = 0


@dataclasses.dataclass(slots=True, eq=False)
class Shared:
    """The running store's state that more than one part of the engine uses.

    Changed on the event-loop thread only, each field by the owners named:

    * ``index``: the writer (a batch's puts and deletes), compaction (records it moved or
      dropped) and the reaper (expired keys), each change whole between two awaits;
    * ``segments``: the writer adds the segment it rolls over to, compaction adds its output
      and removes its source; readers in other threads look segments up in it;
    * ``active``: the writer alone, at a roll-over; compaction leaves that segment alone;
    * ``space``: see :class:`Space`;
    * ``batch_lock``: held by the writer from planning a batch to indexing it, and by
      compaction while it points the index at the records it moved (see
      ``Compactor._switch``).
    """

    directory: Path
    options: Options
    index: Index
    segments: dict[int, Segment]
    active: Segment
    space: Space
    read_gate: ReadGate = dataclasses.field(default_factory=ReadGate)
    batch_lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)

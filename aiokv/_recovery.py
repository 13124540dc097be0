"""Open-time rebuild: scan every segment in order and build the index from the records.

Runs in a worker thread (it reads every byte of the store), before the writer starts.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from . import _files
from ._index import Entry, Index
from ._record import FILE_HEADER, FILE_HEADER_SIZE, KIND_PUT, BadRecord
from ._segment import Segment, has_valid_header, parse_segment_name, scan
from .errors import CorruptionError

logger = logging.getLogger("aiokv")


@dataclasses.dataclass
class Recovered:
    """What a store needs to go on from where it left off."""

    index: Index
    segments: dict[int, Segment]
    next_seq: int
    disk_bytes: int
    dropped_bytes: int  # cut off a torn tail of the newest segment


def recover(directory: Path, now: float) -> Recovered:
    """Rebuild the index of the store in ``directory`` (locked by the caller).

    The newest record of each key wins by sequence number, whatever file it lies in. A put
    that has since expired, and a tombstone, leave the key absent; both still hide every older
    record of that key.

    Only the newest segment can end in a torn write: a segment is fsynced before the next one
    is created. So a bad record there is a crash's torn tail and is cut off (and logged), while
    a bad record anywhere else is corruption and raises :class:`CorruptionError`.
    """
    ids = sorted(
        segment_id
        for name in os.listdir(directory)
        if (segment_id := parse_segment_name(name)) is not None
    )
    segments: dict[int, Segment] = {}
    newest: dict[str, tuple[int, int, Entry]] = {}  # key -> (seq, kind, entry)
    max_seq = 0
    dropped = 0
    try:
        for position, segment_id in enumerate(ids):
            segment = Segment.open(directory, segment_id)
            segments[segment_id] = segment
            is_newest = position == len(ids) - 1
            data = segment.read_all()
            if not has_valid_header(data):
                if is_newest and len(data) <= FILE_HEADER_SIZE:
                    dropped += _reinitialise(segment, len(data))
                    continue
                raise CorruptionError(f"{segment.path}: not an aiokv segment (bad file header)")
            try:
                for offset, record in scan(data):
                    key = _decode_key(segment.path, offset, record.key)
                    max_seq = max(max_seq, record.seq)
                    held = newest.get(key)
                    if held is None or record.seq > held[0]:
                        entry = Entry(segment_id, offset, record.size, record.expiry)
                        newest[key] = (record.seq, record.kind, entry)
            except BadRecord as bad:
                if not is_newest:
                    raise CorruptionError(
                        f"{segment.path}: bad record at offset {bad.offset}: {bad.reason}"
                    ) from None
                dropped += _cut_tail(segment, bad.offset, len(data), bad.reason)
            else:
                segment.size = len(data)
        index = Index()
        for key, (_seq, kind, entry) in newest.items():
            if kind == KIND_PUT and not (entry.expiry and now >= entry.expiry):
                index.put(key, entry)
    except BaseException:
        for segment in segments.values():
            segment.close()
        raise
    return Recovered(index, segments, max_seq + 1, _files.directory_bytes(directory), dropped)


def _decode_key(path: Path, offset: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # the CRC matched, so this was written wrong, not damaged
        raise CorruptionError(
            f"{path}: record at offset {offset} has a key that is not UTF-8"
        ) from None


def _cut_tail(segment: Segment, offset: int, size: int, reason: str) -> int:
    """Cut a torn tail off the newest segment at the last good record; return the bytes cut."""
    logger.warning(
        "aiokv: %s: cutting off %d bytes at offset %d after the last good record (%s); "
        "they were a write interrupted by a crash",
        segment.path,
        size - offset,
        offset,
        reason,
    )
    segment.truncate(offset)
    # Synced so that the cut is final before new records are appended after it.
    segment.sync()
    return size - offset


def _reinitialise(segment: Segment, size: int) -> int:
    """Rewrite the header of a newest segment whose creation was interrupted."""
    logger.warning(
        "aiokv: %s: segment creation was interrupted (%d bytes); rewriting its header",
        segment.path,
        size,
    )
    segment.truncate(0)
    segment.append(FILE_HEADER)
    segment.sync()
    return size

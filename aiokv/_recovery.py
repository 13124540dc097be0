"""Open-time rebuild: scan every segment and build the index from the records.

Runs in a worker thread (it reads every byte of the store), before the writer starts.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from . import _files
from ._index import Entry, Index
from ._record import (
    FILE_COMPACTED,
    FILE_HEADER_SIZE,
    FILE_LOG,
    KIND_PUT,
    BadRecord,
    FileHeader,
    decode_file_header,
)
from ._segment import TMP_SUFFIX, Segment, parse_segment_name, scan, segment_name
from .errors import CorruptionError

logger = logging.getLogger("aiokv")


@dataclasses.dataclass
class Recovered:
    """What a store needs to go on from where it left off."""

    index: Index
    segments: dict[int, Segment]
    active: Segment | None  # the newest log segment, the only one that may be appended to
    next_seq: int
    next_segment_id: int
    disk_bytes: int
    dropped_bytes: int  # cut off a torn tail of the newest log segment


def recover(directory: Path, now: float) -> Recovered:
    """Rebuild the index of the store in ``directory`` (locked by the caller).

    The newest record of each key wins by sequence number, whatever file it lies in. A put
    that has since expired, and a tombstone, leave the key absent; both still hide every older
    record of that key.

    Only the newest *log* segment can end in a torn write: a log segment is fsynced before the
    next one is created, and a compacted one is complete before it gets its name. So a bad
    record there is a crash's torn tail and is cut off (and logged), while a bad record or
    file header anywhere else is corruption and raises :class:`CorruptionError`.
    """
    ids = _prepare(directory)
    segments: dict[int, Segment] = {}
    newest: dict[str, tuple[int, int, Entry]] = {}  # key -> (seq, kind, entry)
    max_seq = 0
    dropped = 0
    try:
        for segment_id in ids:
            try:
                segments[segment_id] = Segment.open(directory, segment_id)
            except BadRecord as bad:
                raise CorruptionError(
                    f"{directory / f'{segment_id:08d}.data'}: bad file header: {bad.reason}"
                ) from None
        logs = [s.id for s in segments.values() if s.kind == FILE_LOG]
        active = segments[max(logs)] if logs else None
        for segment in segments.values():
            data = segment.read_all()
            try:
                for offset, record in scan(data):
                    key = _decode_key(segment.path, offset, record.key)
                    max_seq = max(max_seq, record.seq)
                    held = newest.get(key)
                    if held is None or record.seq > held[0]:
                        entry = Entry(segment.id, offset, record.size, record.expiry)
                        newest[key] = (record.seq, record.kind, entry)
            except BadRecord as bad:
                if segment is not active:
                    raise CorruptionError(
                        f"{segment.path}: bad record at offset {bad.offset}: {bad.reason}"
                    ) from None
                dropped += _cut_tail(segment, bad.offset, len(data), bad.reason)
            else:
                segment.size = len(data)
            max_seq = max(max_seq, segment.created_seq - 1)
        index = Index()
        for key, (_seq, kind, entry) in newest.items():
            if kind == KIND_PUT and not (entry.expiry and now >= entry.expiry):
                index.put(key, entry)
    except BaseException:
        for segment in segments.values():
            segment.close()
        raise
    return Recovered(
        index,
        segments,
        active,
        max_seq + 1,
        max(ids, default=0) + 1,
        _files.directory_bytes(directory),
        dropped,
    )


def _prepare(directory: Path) -> list[int]:
    """Remove what a crash left half-made; return the ids of the segments, in order.

    A compaction's temporary output was never published, so its sources are all still here.
    A log segment whose creation a crash cut off holds no more than a bad file header (the
    header is synced before any record is written to it, so nothing in it was acknowledged).
    Only the newest log segment can be one, so only the highest-numbered segment, or one
    followed by compacted files alone (compaction numbers its output concurrently), is taken
    for one; anywhere else a bad header is corruption, reported when the file is opened.
    """
    ids = []
    removed = False
    for name in os.listdir(directory):
        path = directory / name
        if name.endswith(TMP_SUFFIX) and parse_segment_name(name[: -len(TMP_SUFFIX)]) is not None:
            logger.warning("aiokv: %s: removing an unfinished compaction output", path)
            path.unlink()
            removed = True
        elif (segment_id := parse_segment_name(name)) is not None:
            ids.append(segment_id)
    ids.sort()
    for segment_id in reversed(ids):
        path = directory / segment_name(segment_id)
        head = _read_head(path)
        if head is None:
            logger.warning("aiokv: %s: removing a segment whose creation was cut off", path)
            path.unlink()
            ids.remove(segment_id)
            removed = True
            break
        if head.kind != FILE_COMPACTED:
            break
    if removed:
        _files.sync_directory(directory)
    return ids


def _read_head(path: Path) -> FileHeader | None:
    """The file header of ``path``, or None if it is no more than a bad header.

    A longer file, or a valid header, is returned as found (a bad header of a longer file
    is reported when the segment is opened).
    """
    with open(path, "rb") as file:
        data = file.read(FILE_HEADER_SIZE + 1)
    try:
        return decode_file_header(data)
    except BadRecord:
        if len(data) > FILE_HEADER_SIZE:
            return FileHeader(FILE_LOG, 0, 0)  # not a cut-off creation; open() will judge
        return None


def _decode_key(path: Path, offset: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # the CRC matched, so this was written wrong, not damaged
        raise CorruptionError(
            f"{path}: record at offset {offset} has a key that is not UTF-8"
        ) from None


def _cut_tail(segment: Segment, offset: int, size: int, reason: str) -> int:
    """Cut a torn tail off the newest log segment at the last good record."""
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

"""Open-time rebuild: scan every segment and build the index from the records.

Runs in a worker thread (it reads every byte of the store), before the writer starts.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from . import _files
from ._hint import BadHint, HintBuilder, decode_hint, entries, hint_name, parse_hint_name
from ._index import Entry, Index
from ._record import (
    FILE_COMPACTED,
    FILE_HEADER_SIZE,
    FILE_LOG,
    KIND_DELETE,
    KIND_PUT,
    BadRecord,
    FileHeader,
    decode_file_header,
    tombstone_target,
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
    active_hint: HintBuilder  # its hint entries, to go on adding to
    active_hint_file: int  # the size of its hint file on disk, 0 if none
    next_seq: int
    next_segment_id: int
    disk_bytes: int
    dropped_bytes: int  # cut off a torn tail of the newest log segment


class _Rebuild:
    """The newest record of each key, gathered segment by segment."""

    def __init__(self) -> None:
        self.newest: dict[str, tuple[int, int, Entry]] = {}  # key -> (seq, kind, entry)
        self.max_seq = 0

    def add(self, key: str, seq: int, kind: int, entry: Entry) -> None:
        if seq > self.max_seq:
            self.max_seq = seq
        held = self.newest.get(key)
        if held is None or seq > held[0]:
            self.newest[key] = (seq, kind, entry)

    def index(self, now: float) -> Index:
        index = Index()
        for key, (_seq, kind, entry) in self.newest.items():
            if kind == KIND_PUT and not (entry.expiry and now >= entry.expiry):
                index.put(key, entry)
        return index


def recover(directory: Path, now: float) -> Recovered:
    """Rebuild the index of the store in ``directory`` (locked by the caller).

    The newest record of each key wins by sequence number, whatever file it lies in. A put
    that has since expired, and a tombstone, leave the key absent; both still hide every older
    record of that key. A segment's hint, where it has a good one, stands in for reading the
    part of the segment it covers.

    Only the newest *log* segment can end in a torn write: a log segment is fsynced before the
    next one is created, and a compacted one is complete before it gets its name. So a bad
    record there is a crash's torn tail and is cut off (and logged), while a bad record or
    file header anywhere else is corruption and raises :class:`CorruptionError`.
    """
    ids = _prepare(directory)
    segments: dict[int, Segment] = {}
    rebuild = _Rebuild()
    dropped = 0
    active_hint = HintBuilder()
    active_hint_file = 0
    try:
        for segment_id in ids:
            try:
                segments[segment_id] = Segment.open(directory, segment_id)
            except BadRecord as bad:
                raise CorruptionError(
                    f"{directory / segment_name(segment_id)}: bad file header: {bad.reason}"
                ) from None
        _remove_orphan_hints(directory, segments)
        logs = [s.id for s in segments.values() if s.kind == FILE_LOG]
        active = segments[max(logs)] if logs else None
        for segment in segments.values():
            builder = active_hint if segment is active else None
            covered, hint_file = _read_hint(directory, segment, rebuild, builder)
            if segment is active:
                active_hint_file = hint_file
            dropped += _scan_rest(segment, covered, rebuild, builder, segment is active)
            rebuild.max_seq = max(rebuild.max_seq, segment.created_seq - 1)
        index = rebuild.index(now)
    except BaseException:
        for segment in segments.values():
            segment.close()
        raise
    return Recovered(
        index,
        segments,
        active,
        active_hint,
        active_hint_file,
        rebuild.max_seq + 1,
        max(ids, default=0) + 1,
        _files.directory_bytes(directory),
        dropped,
    )


def _read_hint(
    directory: Path, segment: Segment, rebuild: _Rebuild, builder: HintBuilder | None
) -> tuple[int, int]:
    """Take ``segment``'s entries from its hint, if it has one to trust.

    Returns how far into the data file the hint reached (the file header's end if there was
    no usable hint) and the hint file's size. A hint in any doubt is removed, and the segment
    is scanned instead.
    """
    path = directory / hint_name(segment.id)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return FILE_HEADER_SIZE, 0
    try:
        hint = decode_hint(data)
        if hint.segment_id != segment.id or hint.created_seq != segment.created_seq:
            raise BadHint("it belongs to another segment")
        if not FILE_HEADER_SIZE <= hint.covered <= segment.size:
            raise BadHint("it covers more than the segment holds")
        found = list(entries(hint))
        keys = [entry.key.decode("utf-8") for entry in found]
    except (BadHint, UnicodeDecodeError) as bad:
        logger.warning("aiokv: %s: ignoring the hint (%s); scanning the segment", path, bad)
        path.unlink()
        return FILE_HEADER_SIZE, 0
    segment_id = segment.id
    for key, e in zip(keys, found, strict=True):
        rebuild.add(key, e.seq, e.kind, Entry(segment_id, e.offset, e.size, e.expiry))
        if builder is not None:
            builder.add(e.kind, e.key, e.offset, e.size, e.seq, e.expiry, e.target)
    return hint.covered, len(data)


def _scan_rest(
    segment: Segment,
    start: int,
    rebuild: _Rebuild,
    builder: HintBuilder | None,
    is_active: bool,
) -> int:
    """Scan ``segment`` from ``start`` to its end; return the bytes cut off a torn tail."""
    end = segment.size
    data = segment.read(start, end - start)
    try:
        for position, record in scan(data, 0):
            offset = start + position
            key = _decode_key(segment.path, offset, record.key)
            target = tombstone_target(data, record) if record.kind == KIND_DELETE else 0
            rebuild.add(
                key, record.seq, record.kind, Entry(segment.id, offset, record.size, record.expiry)
            )
            if builder is not None:
                builder.add(
                    record.kind, record.key, offset, record.size, record.seq, record.expiry, target
                )
    except BadRecord as bad:
        offset = start + bad.offset
        if not is_active:
            raise CorruptionError(
                f"{segment.path}: bad record at offset {offset}: {bad.reason}"
            ) from None
        return _cut_tail(segment, offset, end, bad.reason)
    return 0


def _remove_orphan_hints(directory: Path, segments: dict[int, Segment]) -> None:
    """Hints left by a crash between removing a segment and removing its hint."""
    for name in os.listdir(directory):
        segment_id = parse_hint_name(name)
        if segment_id is not None and segment_id not in segments:
            (directory / name).unlink()


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
        stem = name[: -len(TMP_SUFFIX)]
        if name.endswith(TMP_SUFFIX) and (
            parse_segment_name(stem) is not None or parse_hint_name(stem) is not None
        ):
            logger.warning("aiokv: %s: removing an unfinished file", path)
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

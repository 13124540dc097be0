"""Open-time rebuild: scan every segment and build the index from the records.

Runs in a worker thread (it reads every byte of the store), before the writer starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import itertools
import logging
import mmap
import traceback
from pathlib import Path

from aiokv import errors
from aiokv._bitcask.engine.reader import record_holds
from aiokv._bitcask.format.hint import (
    HINT_OVERHEAD,
    BadHint,
    Hint,
    HintBuilder,
    decode_hint,
    first_entry_seq,
    has_expiries,
    split_keys,
)
from aiokv._bitcask.format.names import (
    BACKUP_MARKER,
    TMP_SUFFIX,
    hint_name,
    parse_hint_name,
    parse_segment_name,
    segment_name,
)
from aiokv._bitcask.format.record import (
    FILE_COMPACTED,
    FILE_HEADER_SIZE,
    FILE_LOG,
    HEADER_SIZE,
    KIND_DELETE,
    KIND_PUT,
    MAX_SEQ,
    BadRecord,
    FileHeader,
    Record,
    decode_file_header,
    record_seq,
    scan,
    tombstone_target,
)
from aiokv._bitcask.index.index import Index, location
from aiokv._bitcask.index.keydir import check_hint_entries
from aiokv._bitcask.system import files as _files
from aiokv._bitcask.system.segment import Segment
from aiokv.errors import CorruptionError

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


class _Rebuild:
    """The newest record of each key, built by applying segments oldest first.

    Every file's records lie within the sequence range of one log segment (compaction copies
    records in file order, and only from one segment), and log segments' ranges do not
    overlap. So applying files in the order of their first sequence number, each in file
    order, lets the last record seen for a key win, with no comparison: a tombstone removes
    the key, a put sets it. A file and its compacted copy, both left by a crash, would overlap;
    the file is removed before the rebuild (see :func:`_finish_compactions`).
    """

    def __init__(self, segments: dict[int, Segment]) -> None:
        self.index = Index(record_holds(segments))
        # key -> (deadline, location) of every put with an expiry: it counts at the end if
        # that put is still the key's newest record.
        self.deadlines: dict[bytes, tuple[float, int]] = {}
        self.max_seq = 0

    def apply_hint(self, segment_id: int, hint: Hint) -> None:
        count = hint.length
        if not count:
            return
        index = self.index
        # The batch records between the entries (the only gaps a hint's entries may leave).
        index.add_framing(segment_id, hint.covered - FILE_HEADER_SIZE - sum(hint.columns[3]))
        keys = hint.keys
        kinds, lengths, offsets, sizes, seqs, expiries, _targets = hint.columns
        start = pos = 0
        try:
            while True:
                # Puts of keys not yet indexed (nearly every entry of most segments) are
                # added in C, with no Python object per key; the loop stops at each entry
                # that concerns a key (or a hash) already there, which is decided here.
                start, pos = index.load(segment_id, keys, hint.columns, start, pos)
                if start == count:
                    break
                end = pos + lengths[start]
                key = bytes(keys[pos:end])
                if kinds[start] == KIND_PUT:
                    index.put(key, location(segment_id, offsets[start], sizes[start]), 0.0)
                else:
                    index.remove(key)
                start, pos = start + 1, end + 1
        except ValueError as exc:  # the directory's own checks of the entries
            raise BadHint(str(exc)) from None
        if has_expiries(hint):
            for key, kind, offset, size, expiry in itertools.compress(
                zip(split_keys(hint), kinds, offsets, sizes, expiries, strict=True), expiries
            ):
                if kind == KIND_PUT:
                    self.deadlines[key] = (expiry, location(segment_id, offset, size))
        self.max_seq = max(self.max_seq, seqs[-1])

    def apply_record(self, segment_id: int, offset: int, record: Record) -> None:
        if record.kind == KIND_PUT:
            loc = location(segment_id, offset, record.size)
            self.index.put(record.key, loc, 0.0)
            if record.expiry:
                self.deadlines[record.key] = (record.expiry, loc)
        else:
            self.index.remove(record.key)
        if record.seq > self.max_seq:
            self.max_seq = record.seq

    def finish(self, now: float) -> Index:
        index = self.index
        deadlines: dict[bytes, float] = {}
        for key, (deadline, loc) in self.deadlines.items():
            if not index.points_at(key, loc):
                continue  # written again or deleted since
            if now >= deadline:
                index.remove(key, at=loc)
            else:
                deadlines[key] = deadline
        index.set_deadlines(deadlines)
        return index


def recover(directory: Path, now: float, max_size: int) -> Recovered:
    """Rebuild the index of the store in ``directory`` (locked by the caller).

    The newest record of each key wins, whatever file it lies in. A put that has since
    expired, and a tombstone, leave the key absent; both still hide every older record of
    that key. A segment's hint, where it has a good one, stands in for reading the part of
    the segment it covers.

    Only the newest *log* segment can end in a torn write: a log segment is fsynced before the
    next one is created, and a compacted one is complete before it gets its name. So a bad
    record there is a crash's torn tail and is cut off (and logged), while a bad record or
    file header anywhere else is corruption and raises :class:`CorruptionError`.
    """
    ids = _prepare(directory)
    segments: dict[int, Segment] = {}
    hints: dict[int, tuple[Hint | None, int]] = {}
    try:
        _open_segments(directory, ids, segments)
        _finish_compactions(directory, segments)
        _remove_orphan_hints(directory, segments)
        logs = [s.id for s in segments.values() if s.kind == FILE_LOG]
        active = segments[max(logs)] if logs else None
        hints.update((s.id, _load_hint(directory, s)) for s in segments.values())
        while True:
            # Rebuilt from the start if a hint turns out unusable while it is applied (its
            # checksum matched, but its keys do not lie where its lengths say): that hint is
            # dropped and its segment scanned, as for a hint refused before.
            try:
                replayed = _replay(directory, segments, hints, active, now)
                break
            except _UnusableHint as bad:
                _drop_hint(directory / hint_name(bad.segment_id), bad.reason)
                _unmap_hints({bad.segment_id: hints.pop(bad.segment_id)}, bad)
                hints[bad.segment_id] = (None, 0)
        if replayed.max_seq >= MAX_SEQ:
            # No store makes 2**64 writes; a number this high was written wrong, and the
            # store could not number another record.
            raise CorruptionError(
                f"{directory}: a record or file header carries sequence number "
                f"{replayed.max_seq}, the highest there is"
            )
        _rewrite_hints(directory, replayed.lost_hints, max_size)
        for segment in segments.values():
            segment.map()
    except BaseException as exc:
        for segment in segments.values():
            segment.close()
        _unmap_hints(hints, exc)
        raise
    _unmap_hints(hints, None)
    return Recovered(
        replayed.index,
        segments,
        active,
        replayed.active_hint,
        replayed.active_hint_file,
        replayed.max_seq + 1,
        max(ids, default=0) + 1,
        _files.directory_bytes(directory),
    )


def _open_segments(directory: Path, ids: list[int], segments: dict[int, Segment]) -> None:
    """Open every segment of ``ids`` into ``segments`` (the caller closes them on failure)."""
    for segment_id in ids:
        try:
            segments[segment_id] = Segment.open(directory, segment_id)
        except BadRecord as bad:
            raise CorruptionError(
                f"{directory / segment_name(segment_id)}: bad file header: {bad.reason}"
            ) from None


class _UnusableHint(Exception):
    def __init__(self, segment_id: int, reason: BadHint) -> None:
        super().__init__(segment_id, reason)
        self.segment_id = segment_id
        self.reason = reason


@dataclasses.dataclass
class _Replayed:
    index: Index
    max_seq: int
    active_hint: HintBuilder
    active_hint_file: int
    lost_hints: list[tuple[Segment, HintBuilder]]  # sealed segments that need their hint back


def _replay(
    directory: Path,
    segments: dict[int, Segment],
    hints: dict[int, tuple[Hint | None, int]],
    active: Segment | None,
    now: float,
) -> _Replayed:
    """Apply every segment, oldest first: its hint where it has one, then a scan of the rest.

    :raises _UnusableHint: a hint that passed its checks turned out unusable as it was applied.
    """
    rebuild = _Rebuild(segments)
    replayed = _Replayed(rebuild.index, 0, HintBuilder(), 0, [])
    for segment in sorted(segments.values(), key=lambda s: _first_seq(s, hints[s.id])):
        hint, hint_file = hints[segment.id]
        covered = FILE_HEADER_SIZE
        if hint is not None:
            try:
                rebuild.apply_hint(segment.id, hint)
            except BadHint as bad:
                raise _UnusableHint(segment.id, bad) from None
            covered = hint.covered
        builder = None
        if segment is active:
            replayed.active_hint_file = hint_file
            builder = replayed.active_hint
            if hint is not None:
                builder.inherit(directory / hint_name(segment.id), hint)
        elif hint is None:
            builder = HintBuilder()  # a sealed segment that lost its hint gets it back
            replayed.lost_hints.append((segment, builder))
        _scan_rest(segment, covered, rebuild, builder, segment is active)
        rebuild.max_seq = max(rebuild.max_seq, segment.created_seq - 1)
    replayed.index = rebuild.finish(now)
    replayed.max_seq = rebuild.max_seq
    return replayed


def _rewrite_hints(directory: Path, lost: list[tuple[Segment, HintBuilder]], max_size: int) -> None:
    """Write the hints of sealed segments that had none (or a bad one), where they fit.

    Their room was kept when the segments were written, so they fit unless the directory
    was filled by other means meanwhile; then they are left out, and the next open scans.
    """
    if not lost:
        return
    used = _files.directory_bytes(directory)
    for segment, builder in lost:
        data = builder.encode(segment.id, segment.created_seq, segment.size)
        if used + len(data) > max_size:
            continue
        _files.write_whole(directory / hint_name(segment.id), data)
        used += len(data)
    _files.sync_directory(directory)


def _load_hint(directory: Path, segment: Segment) -> tuple[Hint | None, int]:
    """``segment``'s hint and its file's size, if it has one to trust, else (None, 0).

    A hint in any doubt is removed, and the segment is scanned instead.
    """
    path = directory / hint_name(segment.id)
    try:
        # A hint entry is at most 2 bytes longer than its record.
        data = _files.fs.map_file(path, HINT_OVERHEAD + 2 * segment.size)
    except FileNotFoundError:
        return None, 0
    except OSError as exc:
        # A symlink (refused by O_NOFOLLOW), a FIFO, a directory or an outsized file where a
        # hint should be is not one the store wrote. Any other error is the disk's: reported.
        if not isinstance(exc, _files.NotRegularFileError) and exc.errno != errno.ELOOP:
            raise
        _drop_hint(path, exc)
        return None, 0
    try:
        hint = decode_hint(data)
        check_hint(hint, segment)
    except BadHint as bad:
        _drop_hint(path, bad)
        return None, 0
    return hint, len(data)


def check_hint(hint: Hint, segment: Segment) -> None:
    """Raise :class:`BadHint` unless ``hint``, whose framing and checksum ``decode_hint``
    checked, is one to trust for ``segment``: its own, covering no more than the segment
    holds, its entries sound. (The open's test, and ``verify``'s.)"""
    if hint.segment_id != segment.id or hint.created_seq != segment.created_seq:
        raise BadHint("it belongs to another segment")
    if not FILE_HEADER_SIZE <= hint.covered <= segment.size:
        raise BadHint("it covers more than the segment holds")
    check_hint_entries(hint)


def _unmap_hints(hints: dict[int, tuple[Hint | None, int]], error: BaseException | None) -> None:
    """Empty ``hints`` and unmap their files now, not whenever the garbage collector gets to
    them.

    Each map holds a file descriptor of its own (Python's ``mmap`` keeps a duplicate), so
    an open that is refused, or a hint dropped, must not leave them to the collector: a
    program that retries an open in a loop would run out. The frames of ``error``'s
    traceback (and of the errors it arose from) still refer to the hint being applied when
    it was raised; their locals are cleared, so that no view of a map is left to keep it
    open. (A view held anywhere else leaves its map to be closed with it.)
    """
    maps = [
        hint.keys.obj
        for hint, _size in hints.values()
        if hint is not None
        and isinstance(hint.keys, memoryview)
        and isinstance(hint.keys.obj, mmap.mmap)
    ]
    hints.clear()
    seen: set[int] = set()
    while error is not None and id(error) not in seen:  # the error and those it arose from
        seen.add(id(error))
        traceback.clear_frames(error.__traceback__)
        error = error.__cause__ or error.__context__
    for mapped in maps:
        with contextlib.suppress(BufferError):
            mapped.close()


def _drop_hint(path: Path, why: Exception) -> None:
    """A hint in doubt is removed, and its segment scanned instead (said in the log)."""
    logger.warning("aiokv: %s: ignoring the hint (%s); scanning the segment", path, why)
    _files.unlink(path)


def _first_seq(segment: Segment, hint: tuple[Hint | None, int]) -> int:
    """The sequence number of the segment's first record (0 for an empty segment)."""
    if hint[0] is not None and hint[0].length:
        return first_entry_seq(hint[0])
    if segment.size <= FILE_HEADER_SIZE:
        return 0
    head = segment.read(FILE_HEADER_SIZE, HEADER_SIZE)
    return record_seq(head) if len(head) == HEADER_SIZE else 0


def _scan_rest(
    segment: Segment,
    start: int,
    rebuild: _Rebuild,
    builder: HintBuilder | None,
    is_active: bool,
) -> None:
    """Scan ``segment`` from ``start`` to its end, cutting off a torn tail of the active one."""
    end = segment.size
    if start >= end:
        return
    data = segment.read(start, end - start)
    framing = expected = 0  # the batch records scanned past (the gaps between records)
    try:
        for position, record in scan(data, 0):
            framing += position - expected
            expected = position + record.size
            offset = start + position
            _check_key(segment.path, offset, record.key)
            rebuild.apply_record(segment.id, offset, record)
            if builder is not None:
                target = tombstone_target(data, record) if record.kind == KIND_DELETE else 0
                builder.add(
                    record.kind, record.key, offset, record.size, record.seq, record.expiry, target
                )
    except BadRecord as bad:
        offset = start + bad.offset
        if not is_active:
            raise errors.bad_record(segment.path, offset, bad.reason) from None
        _cut_tail(segment, offset, end, bad.reason)
    finally:
        rebuild.index.add_framing(segment.id, framing)


def _finish_compactions(directory: Path, segments: dict[int, Segment]) -> None:
    """Remove the source of every compacted file whose source is still here.

    A compacted file is complete before it gets its name, and holds every record of its
    source that was still needed; a crash after that rename but before the source's removal
    leaves both. The source is removed now, as the compaction would have done. Left in place,
    it would be compacted a second time, into a file holding the same records under the same
    sequence numbers as the first copy but fewer of them (only the tombstones still needed):
    two overlapping copies, which the rebuild cannot order, so an old tombstone in the second
    could hide a newer put in the first.
    """
    # A compacted file is numbered after its source existed, so a source numbered the same or
    # higher is not one (a damaged header): nothing is removed on its word.
    sources = {s.source for s in segments.values() if s.kind == FILE_COMPACTED and s.source < s.id}
    finished = sorted(sources & segments.keys())
    for segment_id in finished:
        source = segments.pop(segment_id)
        source.close()
        logger.warning(
            "aiokv: %s: removing a segment already compacted (its compaction was interrupted)",
            source.path,
        )
        _files.unlink(source.path)  # its hint goes with the orphans
    if finished:
        _files.sync_directory(directory)


def _remove_orphan_hints(directory: Path, segments: dict[int, Segment]) -> None:
    """Hints left by a crash between removing a segment and removing its hint."""
    for name in _files.fs.listdir(directory):
        segment_id = parse_hint_name(name)
        if segment_id is not None and segment_id not in segments:
            _files.unlink(directory / name)


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
    names = _files.fs.listdir(directory)
    if BACKUP_MARKER in names:
        raise errors.incomplete_backup(directory)
    for name in names:
        path = directory / name
        stem = name[: -len(TMP_SUFFIX)]
        if name.endswith(TMP_SUFFIX) and (
            parse_segment_name(stem) is not None or parse_hint_name(stem) is not None
        ):
            logger.warning("aiokv: %s: removing an unfinished file", path)
            _files.unlink(path)
            removed = True
        elif (segment_id := parse_segment_name(name)) is not None:
            ids.append(segment_id)
    ids.sort()
    for segment_id in reversed(ids):
        path = directory / segment_name(segment_id)
        head = _read_head(path)
        if head is None:
            logger.warning("aiokv: %s: removing a segment whose creation was cut off", path)
            _files.unlink(path)
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
    data = _files.fs.read_head(path, FILE_HEADER_SIZE + 1)
    try:
        return decode_file_header(data)
    except BadRecord:
        if len(data) > FILE_HEADER_SIZE:
            return FileHeader(FILE_LOG, 0, 0)  # not a cut-off creation; open() will judge
        return None


def _check_key(path: Path, offset: int, raw: bytes) -> None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:  # the CRC matched, so this was written wrong, not damaged
        raise CorruptionError(
            f"{path}: record at offset {offset} has a key that is not UTF-8"
        ) from None


def _cut_tail(segment: Segment, offset: int, size: int, reason: str) -> None:
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

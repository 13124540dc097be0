"""``verify()``: read every record and hint of an open store, and check them and the index.

Each segment the store has when verify starts is checked, oldest first:

* its file header, against what the store read when it opened the file;
* every record, with the parser every reader uses (``format.record.scan``): its checksum and
  framing, its key's UTF-8 (an open refuses a store otherwise), and its sequence number,
  strictly rising in a file and, in a log file, not below the file's ``created_seq``;
* its hint, if it has one: the checks an open makes before it trusts one, then each entry
  against the record it describes (a hint that disagrees would make a reopen wrong);
* the index: every entry there when verify starts must point at a sound put record of its
  key (the index holds hashes, the record the key) with the key's deadline. Entries are
  confirmed as the records are read; any left unconfirmed are looked at again at the end.

The store stays usable throughout. Files are read a chunk at a time in worker threads, each
read counted in through the store's :class:`~aiokv._bitcask.system.segment.ReadGate`, as a
reader in another thread is, so compaction can retire a segment between two chunks; a
segment retired meanwhile is skipped and not counted. The active segment is read up to its
size when verify reaches it, never written. Records and files written after verify starts
may or may not be checked.

What is found is reported, never raised: only the store closing under verify raises.
"""

from __future__ import annotations

import bisect
import contextlib
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from aiokv._bitcask.engine.recovery import check_hint
from aiokv._bitcask.engine.space import Shared
from aiokv._bitcask.format.hint import (
    HINT_HEADER_SIZE,
    HINT_OVERHEAD,
    BadHint,
    Hint,
    decode_hint,
)
from aiokv._bitcask.format.names import hint_name, segment_name
from aiokv._bitcask.format.record import (
    FILE_HEADER_SIZE,
    FILE_LOG,
    KIND_DELETE,
    KIND_PUT,
    MAX_RECORD_SIZE,
    BadRecord,
    FileHeader,
    Record,
    decode,
    decode_file_header,
    scan,
    tombstone_target,
)
from aiokv._bitcask.index.index import SEGMENT_SHIFT, Index, offset_of, segment_of, size_of
from aiokv._bitcask.system import files as _files
from aiokv._bitcask.system import threads as _threads
from aiokv._bitcask.system.segment import Segment
from aiokv._core.verify_report import Problem, VerifyReport
from aiokv.errors import StoreClosedError, describe_key

CHUNK_BYTES: Final = 1 << 20
"""Bytes of a data file read and checked per worker-thread call: a few ms of the thread's
time, after which the event loop has had its turns (a whole segment at once would hold tens
of megabytes and keep compaction from retiring it for as long)."""

MAX_PROBLEMS_PER_FILE: Final = 100
"""A file with more problems than this is not read further: a file of garbage would
otherwise fill the report with one problem per record."""

_LOCAL: Final = (1 << SEGMENT_SHIFT) - 1  # a location's offset and size, without its segment


class _Retired(Exception):
    """The segment left the store (compaction retired it) while it was being checked."""


async def verify(shared: Shared, check_open: Callable[[], None]) -> VerifyReport:
    """Check every data file, hint and index entry of the open store ``shared``.

    :param check_open: raises :class:`StoreClosedError` once the store is no longer open;
        asked before each file.
    :raises StoreClosedError: the store is not open, or was closed while it was checked.
    """
    check_open()
    # Taken on the loop thread, which alone changes the index: one consistent snapshot.
    # (One C call for the directory; the ints it makes are the one cost here that grows
    # with the number of keys, about 30 ms for a million.)
    wanted = await _threads.run(_by_segment, shared.index.locations())
    tally = _Tally()
    for segment in sorted(shared.segments.values(), key=lambda s: s.id):
        check_open()
        await _verify_segment(shared, segment, wanted.pop(segment.id, array("Q")), tally)
    for segment_id, locals_ in wanted.items():  # entries into files the store did not have
        tally.unconfirmed.extend(segment_id << SEGMENT_SHIFT | local for local in locals_)
    await _verify_unconfirmed(shared, tally)
    return tally.report()


@dataclass
class _Tally:
    files: int = 0
    records: int = 0
    bytes_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    unconfirmed: list[int] = field(default_factory=list)  # index entries no record confirmed

    def report(self) -> VerifyReport:
        return VerifyReport(self.files, self.records, self.bytes_checked, tuple(self.problems))


async def _verify_segment(
    shared: Shared, segment: Segment, wanted: array[int], tally: _Tally
) -> None:
    """Check ``segment`` and its hint; ``wanted``: the index's entries into it (local parts)."""
    hint = await _threads.run(_load_hint, shared, segment)
    try:
        check = await _threads.run(_SegmentCheck.begin, shared, segment, hint, wanted)
        while not check.done:
            await _threads.run(check.step)
    except _Retired:
        # Its live records were moved first, so its entries are elsewhere now; any left
        # pointing into it are found at the end.
        tally.unconfirmed.extend(segment.id << SEGMENT_SHIFT | local for local in wanted)
        return
    if hint is not None:
        tally.files += 1
        tally.bytes_checked += hint.size
        tally.problems.extend(hint.problems)
    tally.files += 1
    tally.records += check.records
    tally.bytes_checked += check.pos
    tally.problems.extend(check.problems)
    tally.unconfirmed.extend(check.unconfirmed)


# -- reading a segment as a reader in another thread does ------------------------------------


@contextlib.contextmanager
def _counted_in(shared: Shared, segment: Segment) -> Iterator[None]:
    """Keep ``segment``'s descriptor open for the ``with`` block (see ``ReadGate``).

    :raises _Retired: compaction has taken ``segment`` out of the store.
    :raises StoreClosedError: the store has closed its files.
    """
    gate = shared.read_gate
    with gate.cond:
        if shared.segments.get(segment.id) is not segment:
            raise _Retired
        if segment.fd < 0:  # the close leaves segments in the table, their files closed
            raise StoreClosedError("the store was closed while verify() was reading it")
        gate.readers += 1
    try:
        yield
    finally:
        gate.leave()


def _file_end(shared: Shared, segment: Segment) -> tuple[int, int]:
    """How far to read ``segment``, and how far the store wrote it: the active one up to its
    size now (the writer may be appending past it), a sealed one to the end of the file, as
    an open would read it."""
    with _counted_in(shared, segment):
        if segment is shared.active:
            return segment.size, segment.size
        return _files.fs.size(segment.fd), segment.size


# -- a segment's hint ---------------------------------------------------------------------------


@dataclass
class _HintFile:
    path: Path
    size: int
    cursor: _HintCursor | None  # None if it cannot be trusted (and that is a problem)
    problems: list[Problem]


def _load_hint(shared: Shared, segment: Segment) -> _HintFile | None:
    """``segment``'s hint, checked as an open checks one; None if it has none."""
    path = shared.directory / hint_name(segment.id)
    try:
        # A hint entry is at most 2 bytes longer than its record (as the open reads it).
        data = _files.fs.read_file(path, HINT_OVERHEAD + 2 * segment.size)
    except FileNotFoundError:
        return None  # a hint is optional: its segment is scanned at open instead
    except OSError as exc:
        return _HintFile(path, 0, None, [Problem(path, 0, f"cannot be read: {exc}")])
    try:
        hint = decode_hint(data)
        check_hint(hint, segment)
    except BadHint as bad:
        return _HintFile(path, len(data), None, [Problem(path, 0, f"bad hint: {bad}")])
    return _HintFile(path, len(data), _HintCursor(path, hint), [])


class _HintCursor:
    """Walks a checked hint's entries alongside its segment's records, in file order.

    The entries lie back to back from the file header to ``covered`` (the open's checks
    vouch for that), as the records do; so the next entry is always the next record's. At
    the first entry that disagrees the hint is followed no further: every entry after a
    wrong one is in doubt, and one problem says that the hint is wrong.
    """

    __slots__ = ("_entry", "_key_at", "covered", "hint", "path")

    def __init__(self, path: Path, hint: Hint) -> None:
        self.path = path
        self.hint = hint
        self.covered = hint.covered  # 0 once given up
        self._entry = 0
        self._key_at = 0  # where the next entry's key begins in the keys blob

    def match(self, offset: int, record: Record, target: int) -> Problem | None:
        """The problem, if the next entry does not describe ``record``, lying at ``offset``."""
        kinds, lengths, offsets, sizes, seqs, expiries, targets = self.hint.columns
        n = self._entry
        if n >= self.hint.length or offsets[n] != offset:
            return self.give_up(f"no entry describes the record at offset {offset}")
        key = bytes(self.hint.keys[self._key_at : self._key_at + lengths[n]])
        self._entry, self._key_at = n + 1, self._key_at + lengths[n] + 1
        said = (kinds[n], key, sizes[n], seqs[n], expiries[n], targets[n])
        found = (record.kind, record.key, record.size, record.seq, record.expiry, target)
        wrong = [
            f"{name} {entry!r} (the record's: {actual!r})"
            for name, entry, actual in zip(_ENTRY_FIELDS, said, found, strict=True)
            if entry != actual
        ]
        if not wrong:
            return None
        self._entry = n  # the problem names this entry
        return self.give_up(
            f"entry {n}, for the record at offset {offset}, says " + ", ".join(wrong)
        )

    def give_up(self, what: str) -> Problem:
        self.covered = 0
        count = self.hint.length
        # The entry's offset field: after the kinds and key lengths columns (a byte each).
        position = HINT_HEADER_SIZE + 2 * count + 4 * min(self._entry, count)
        return Problem(self.path, position, what)

    def resume_after(self, offset: int) -> int | None:
        """Where the first record after ``offset`` begins, by the entries (after a damaged
        record, whose own length cannot be trusted); None if the hint cannot tell."""
        if offset >= self.covered:
            return None
        lengths, offsets = self.hint.columns[1], self.hint.columns[2]
        n = bisect.bisect_right(offsets, offset, lo=self._entry)
        if n >= self.hint.length:
            return None
        self._key_at += sum(lengths[self._entry : n]) + (n - self._entry)
        self._entry = n
        return int(offsets[n])


_ENTRY_FIELDS: Final = ("kind", "key", "size", "seq", "expiry", "target")


# -- a segment's records ------------------------------------------------------------------------


class _SegmentCheck:
    """One segment's check, advanced a chunk at a time (:meth:`step`, in a worker thread).

    ``wanted`` holds the index's entries into the segment at verify's start (their offset and
    size), sorted: records come in offset order, so each entry is met in turn, and one left
    behind was not confirmed by a record.
    """

    def __init__(
        self,
        shared: Shared,
        segment: Segment,
        end: int,
        hint: _HintCursor | None,
        wanted: array[int],
    ) -> None:
        self._shared = shared
        self._index = shared.index
        self.segment = segment
        self.end = end
        self.hint = hint
        self._wanted = wanted
        self._next_wanted = 0
        self.unconfirmed: list[int] = []  # whole locations
        self.pos = 0  # the next byte to read; how far the file is checked
        self._length = CHUNK_BYTES  # of the next read: more for a batch longer than a chunk
        self.records = 0
        self.problems: list[Problem] = []
        self.done = False
        self._last_seq = -1

    @classmethod
    def begin(
        cls, shared: Shared, segment: Segment, hint: _HintFile | None, wanted: array[int]
    ) -> _SegmentCheck:
        """Size the segment up, after its hint was read: a hint never covers more than its
        segment held when it was written."""
        cursor = hint.cursor if hint is not None else None
        entries = array("Q", sorted(wanted))
        try:
            end, written = _file_end(shared, segment)
        except OSError as exc:
            check = cls(shared, segment, 0, None, entries)
            check.stop(0, f"cannot be read: {exc}")
            return check
        if hint is not None and cursor is not None and cursor.covered > end:
            what = f"it covers {cursor.covered} bytes, but the segment holds {end}"
            hint.problems.append(Problem(hint.path, 0, what))
            cursor = None
        check = cls(shared, segment, end, cursor, entries)
        if end != written:
            check.problem(min(end, written), f"the file is {end} bytes; the store wrote {written}")
        check.done = end <= 0
        return check

    def step(self) -> None:
        """Read and check the next chunk of the file."""
        length = min(self._length, self.end - self.pos)
        try:
            with _counted_in(self._shared, self.segment):
                data = self.segment.pread(self.pos, length)
        except OSError as exc:
            self.stop(self.pos, f"cannot be read: {exc}")
            return
        if len(data) < length:  # cut short under the store
            self.problem(self.pos + len(data), f"the file ends here, short of {self.end} bytes")
            self.end = self.pos + len(data)
        start = 0
        if self.pos == 0:
            self._check_header(data)
            start = FILE_HEADER_SIZE
        self._take(data, start)
        if self.pos >= self.end and not self.done:
            self._finish()

    def _take(self, data: bytes, start: int) -> None:
        base = self.pos
        try:
            for position, record in scan(data, start):
                self._record(data, base + position, record)
                if self.done:  # too many problems
                    return
        except BadRecord as bad:
            if base + len(data) < self.end and _maybe_cut(data, bad.offset):
                # Read again from there: a longer piece if it began the chunk already.
                self._length = 2 * len(data) if bad.offset == 0 else CHUNK_BYTES
                self.pos = base + bad.offset
            else:
                self._bad(base + bad.offset, bad.reason)
            return
        self.pos = base + len(data)
        self._length = CHUNK_BYTES

    def _check_header(self, data: bytes) -> None:
        try:
            header = decode_file_header(data[:FILE_HEADER_SIZE])
        except BadRecord as bad:
            self.problem(0, f"bad file header: {bad.reason}")
            return
        segment = self.segment
        opened = FileHeader(segment.kind, segment.created_seq, segment.source)
        if header != opened:
            self.problem(0, f"the file header says {header}, but it was opened as {opened}")

    def _record(self, data: bytes, offset: int, record: Record) -> None:
        self.records += 1
        if record.seq <= self._last_seq:
            self.problem(offset, f"sequence number {record.seq} after {self._last_seq}")
        elif self.segment.kind == FILE_LOG and record.seq < self.segment.created_seq:
            self.problem(
                offset, f"sequence number {record.seq} below the file's {self.segment.created_seq}"
            )
        self._last_seq = record.seq
        try:
            record.key.decode("utf-8")
        except UnicodeDecodeError:  # the checksum matched: written wrong, not damaged
            self.problem(offset, "a key that is not UTF-8 (an open refuses the store)")
        if self.hint is not None and offset < self.hint.covered:
            target = tombstone_target(data, record) if record.kind == KIND_DELETE else 0
            wrong = self.hint.match(offset, record, target)
            if wrong is not None:
                self.problems.append(wrong)
        if record.kind == KIND_PUT:
            self._confirm(offset, record)

    def _confirm(self, offset: int, record: Record) -> None:
        """Tick off the index's entry at this record, if it has one and it is this key's."""
        local = offset << 16 | record.size
        wanted, n = self._wanted, self._next_wanted
        while n < len(wanted) and wanted[n] < local:  # entries no record starts at
            self.unconfirmed.append(self.segment.id << SEGMENT_SHIFT | wanted[n])
            n += 1
        if n < len(wanted) and wanted[n] == local:
            loc = self.segment.id << SEGMENT_SHIFT | local
            if _entry_fault(self._index, loc, record) is not None:
                self.unconfirmed.append(loc)  # or it changed since: asked again at the end
            first = n
            n += 1
            while n < len(wanted) and wanted[n] == local:
                n += 1
            if n - first > 1:  # the snapshot is of one instant, when no two could share it
                self.problem(offset, f"{n - first} index entries point at this one record")
        self._next_wanted = n

    def _bad(self, offset: int, reason: str) -> None:
        """A record that does not decode: go on after it where the hint says the next one
        begins, or stop."""
        resume = self.hint.resume_after(offset) if self.hint is not None else None
        if resume is None or resume >= self.end:
            unchecked = self.end - offset
            self.stop(
                offset, f"bad record: {reason}; the {unchecked} bytes from here were not checked"
            )
            return
        self.problem(offset, f"bad record: {reason}")
        self.pos = resume

    def problem(self, offset: int, what: str) -> None:
        self.problems.append(Problem(self.segment.path, offset, what))
        if len(self.problems) >= MAX_PROBLEMS_PER_FILE and not self.done:
            self.stop(offset, "too many problems: the rest of the file was not checked")

    def stop(self, offset: int, what: str) -> None:
        """Check no further, from ``offset`` on, saying why."""
        if not self.done:
            self.done = True
            self.problems.append(Problem(self.segment.path, offset, what))
            self.pos = offset
            self._finish()

    def _finish(self) -> None:
        """The index's entries into the file that no record was found for."""
        self.done = True
        base = self.segment.id << SEGMENT_SHIFT
        self.unconfirmed.extend(base | local for local in self._wanted[self._next_wanted :])
        self._next_wanted = len(self._wanted)


def _maybe_cut(data: bytes, offset: int) -> bool:
    """Whether the bad record at ``data[offset]`` may only be cut off by the end of ``data``.

    Put and delete records are never longer than ``MAX_RECORD_SIZE``; a record that decodes
    whole but still failed the scan is the head of a batch, whose records may run on past
    ``data``, however long.
    """
    if len(data) - offset < MAX_RECORD_SIZE:
        return True
    try:
        decode(data, offset)
    except BadRecord:
        return False
    return True


# -- the index --------------------------------------------------------------------------------


def _by_segment(locations: list[int]) -> dict[int, array[int]]:
    """The locations' offsets and sizes, by segment (8 bytes each, not an int object)."""
    groups: defaultdict[int, list[int]] = defaultdict(list)
    for loc in locations:
        groups[loc >> SEGMENT_SHIFT].append(loc & _LOCAL)
    return {segment_id: array("Q", group) for segment_id, group in groups.items()}


def _entry_fault(index: Index, loc: int, record: Record) -> str | None:
    """What is wrong with the index's entry at ``loc``, where ``record`` (sound, and of the
    entry's size) lies; None if nothing."""
    if record.kind != KIND_PUT:
        return "the record there is a tombstone"
    if not index.points_at(record.key, loc):
        return f"the record there is a put of {describe_key(record.key)}, not of the entry's key"
    deadline = index.deadline(record.key)
    if deadline != record.expiry:
        return f"its deadline is {deadline}, the record's {record.expiry}"
    return None


async def _verify_unconfirmed(shared: Shared, tally: _Tally) -> None:
    """Look again at the entries no record confirmed, and report those still wrong.

    Most were changed while verify ran (a key written again, deleted, expired, or moved by
    compaction). A location, once the index lets go of it, never comes back (nothing is
    written twice in one place), so an entry there at verify's start and again after it is
    looked at was there all along: only those are reported.
    """
    if not tally.unconfirmed:
        return
    found = await _threads.run(_explain_all, shared, sorted(set(tally.unconfirmed)))
    if found:
        lasting = {loc for loc, _problem in found}.intersection(shared.index.locations())
        tally.problems.extend(problem for loc, problem in found if loc in lasting)


def _explain_all(shared: Shared, locations: list[int]) -> list[tuple[int, Problem]]:
    found = []
    for loc in locations:
        problem = _explain(shared, loc)
        if problem is not None:
            found.append((loc, problem))
    return found


def _explain(shared: Shared, loc: int) -> Problem | None:
    """What is wrong with the live index entry at ``loc``; None if nothing is (now)."""
    segment_id, offset, size = segment_of(loc), offset_of(loc), size_of(loc)
    segment = shared.segments.get(segment_id)
    path = shared.directory / segment_name(segment_id)
    prefix = f"the index's entry for a live key ({size} bytes here)"
    if segment is None:
        return Problem(path, offset, f"{prefix} points into a file the store does not have")
    try:
        with _counted_in(shared, segment):
            data = segment.pread(offset, size)
    except _Retired:
        return None  # its record was moved, and the entry with it
    except OSError as exc:
        return Problem(path, offset, f"{prefix}: the record cannot be read: {exc}")
    try:
        record = decode(data)
    except BadRecord as bad:
        return Problem(path, offset, f"{prefix}: no sound record there ({bad.reason})")
    if record.size != size:
        return Problem(path, offset, f"{prefix}: the record there is {record.size} bytes")
    fault = _entry_fault(shared.index, loc, record)
    return None if fault is None else Problem(path, offset, f"{prefix}: {fault}")

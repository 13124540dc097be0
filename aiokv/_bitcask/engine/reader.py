"""The one read kernel: a key's value from the record its index entry points at.

A read never waits for the writer. It looks the key's location up in the index, takes the
record's bytes from its segment, checks them against their CRC and against the key asked for,
and decodes the value. The index holds hashes, not keys, so a sound put of *another* key at
that location means the key is absent (see ``index.index``); anything else that is not a sound
put of the key is corruption.

Two entry points share it: :meth:`Reader.on_loop` for ``await store.read`` and
:meth:`Reader.in_thread` for ``DataStore.read`` in the caller's thread. They differ only in how
the bytes are fetched safely (see each). :func:`record_holds` is the index's own question,
asked on the thread that changes the index.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable
from typing import Any

import orjson

from aiokv import errors
from aiokv._bitcask.engine.space import Shared
from aiokv._bitcask.format.record import (
    KIND_PUT,
    BadRecord,
    check_put,
    decode,
    put_value,
    value_start,
)
from aiokv._bitcask.index.index import (
    OFFSET_MASK,
    SEGMENT_SHIFT,
    SIZE_BITS,
    SIZE_MASK,
    RecordHolds,
    offset_of,
    segment_of,
    size_of,
)
from aiokv._bitcask.system import threads as _threads
from aiokv._bitcask.system.segment import Segment
from aiokv._core.clock import Clock
from aiokv._core.codec import check_key, decode_value
from aiokv.errors import CorruptionError, KeyNotFoundError

_in_flight = _threads.in_flight  # read by every read on the loop: one global, not two lookups


class Reader:
    """Reads values for a store; ``state`` tells whether the store is still open."""

    __slots__ = ("_clock", "_gate", "_index", "_segments", "_state")

    def __init__(self, shared: Shared, clock: Clock, state: Callable[[], str]) -> None:
        self._index = shared.index
        self._segments = shared.segments
        self._gate = shared.read_gate
        self._clock = clock
        self._state = state

    def on_loop(self, key: str) -> dict[str, Any]:
        """The value of ``key``, read on the store's event loop.

        The hottest path of the store, so written flat: the location's fields are taken
        apart here rather than by three calls. A segment found in the table is open for the
        whole read, since only this thread takes one out.
        """
        key_bytes = check_key(key)
        loc = self._index.locate(key_bytes, self._clock)
        if loc is None:
            raise errors.key_not_found(key)
        segment = self._segments[loc >> SEGMENT_SHIFT]
        offset, size = loc >> SIZE_BITS & OFFSET_MASK, loc & SIZE_MASK
        # The record in the segment's memory map (taken once: the map and its length belong
        # together), unless it lies past the map, or a worker thread of the store is busy:
        # the loop would then hold the GIL nearly all the time, and pread lets go of it for
        # the worker (see aiokv._bitcask.system.threads).
        buf: bytes | mmap.mmap | None = segment.mapped
        if buf is None or offset + size > len(buf) or _in_flight.busy:
            buf, offset = segment.pread(offset, size), 0
        # The common case (a sound put of this key, no deadline, orjson's encoding): its
        # value's bytes, checked and copied out in one call, decoded here. _value has the
        # rest, and says what is wrong.
        value_bytes = put_value(buf, offset, size, key_bytes)
        if value_bytes is not None:
            try:
                value: dict[str, Any] = orjson.loads(value_bytes)
            except ValueError:
                pass  # _value below says why it does not decode
            else:
                return value
        return self._value(key, key_bytes, segment, loc, buf[offset : offset + size])

    def in_thread(self, key: str) -> dict[str, Any]:
        """The value of ``key``, read in the calling thread, not on the store's loop.

        The index is only changed on the loop, one call at a time, each of which the GIL
        makes atomic. A record inside its segment's memory map is checked, and its value
        copied out, in the map with no lock at all: a map stays valid for as long as the
        reader holds it, even once the store has let go of the segment. Otherwise (the
        newest part of the segment being appended to, or a segment that could not be mapped)
        the read is a ``pread``, and a descriptor closed under it could be reused by the next
        file opened: the reader counts itself in through the
        :class:`~aiokv._bitcask.system.segment.ReadGate`, which closing waits for. A record
        that compaction has just moved (its segment already out of the table) is looked up
        again: the index points at the copy by then.
        """
        key_bytes = check_key(key)
        while True:
            loc = self._index.locate(key_bytes, self._clock)
            if loc is None:
                raise errors.key_not_found(key)
            segment_id = loc >> SEGMENT_SHIFT
            offset, size = loc >> SIZE_BITS & OFFSET_MASK, loc & SIZE_MASK
            segment = self._segments.get(segment_id)
            if segment is None:
                self._check_open()
                continue  # moved by compaction: the index points at the copy now
            buf: bytes | mmap.mmap | None = segment.mapped  # taken once, as in on_loop
            if buf is None or offset + size > len(buf):
                gate = self._gate
                with gate.cond:
                    self._check_open()
                    if self._segments.get(segment_id) is not segment:
                        continue  # closed or moved since the lookup: look again
                    gate.readers += 1
                try:
                    buf, offset = segment.pread(offset, size), 0
                finally:
                    gate.leave()
            value_bytes = put_value(buf, offset, size, key_bytes)  # the common case, as in on_loop
            if value_bytes is not None:
                try:
                    value: dict[str, Any] = orjson.loads(value_bytes)
                except ValueError:
                    pass
                else:
                    return value
            return self._value(key, key_bytes, segment, loc, buf[offset : offset + size])

    def stored(self, key: str) -> tuple[int, bytes, int]:
        """``(location, value bytes, encoding)`` of ``key``'s live record, not decoded, read
        on the store's event loop: what a rewrite of the record (``touch``) carries over.

        :raises KeyNotFoundError: ``key`` is not live.
        :raises CorruptionError: the record indexed for it is damaged.
        """
        key_bytes = check_key(key)
        loc = self._index.locate(key_bytes, self._clock)
        if loc is None:
            raise errors.key_not_found(key)
        segment = self._segments[segment_of(loc)]  # on the loop: found means open (on_loop)
        data = segment.read(offset_of(loc), size_of(loc))
        begins, encoding = self._checked(key, key_bytes, segment, loc, data)
        return loc, bytes(data[begins:]), encoding

    def _check_open(self) -> None:
        state = self._state()
        if state != "open":
            raise errors.not_open(state)

    def _value(
        self, key: str, key_bytes: bytes, segment: Segment, loc: int, data: bytes
    ) -> dict[str, Any]:
        """The value in ``data``, the record read from ``loc`` for ``key``: every case but
        the common one."""
        begins, encoding = self._checked(key, key_bytes, segment, loc, data)
        try:
            return decode_value(memoryview(data)[begins:], encoding)
        except (ValueError, RecursionError) as exc:
            # The checksum matched, so the bytes are as written, but this process cannot
            # decode them (an integer beyond its int_max_str_digits, say).
            raise CorruptionError(
                f"{segment.path}: the value at offset {offset_of(loc)} does not decode: {exc}"
            ) from None

    def _checked(
        self, key: str, key_bytes: bytes, segment: Segment, loc: int, data: bytes
    ) -> tuple[int, int]:
        """``(value start, encoding)`` of ``data`` if it is a sound, unexpired put of
        ``key``; else the error that says why not."""
        checked = check_put(data, key_bytes)
        if checked is None:
            raise self._bad_record(key, key_bytes, segment, loc, data)
        begins, expiry, encoding = checked
        if expiry and self._clock.time() >= expiry:
            # The index said live, but a reader in another thread can see a location and a
            # deadline from either side of a re-create; the record's own deadline decides.
            raise errors.key_not_found(key)
        return begins, encoding

    def _bad_record(
        self, key: str, key_bytes: bytes, segment: Segment, loc: int, data: bytes
    ) -> KeyNotFoundError | CorruptionError:
        """Why ``data``, read for ``key``, is not a put record of ``key``.

        A sound put of another key whose hash is ``key``'s is what the index finds for
        ``key`` when it is absent; anything else is corruption.
        """
        offset = offset_of(loc)
        try:
            record = decode(data)
        except BadRecord as bad:
            return errors.bad_record(segment.path, offset, bad.reason)
        if (
            record.kind == KIND_PUT
            and record.size == len(data)
            and record.key != key_bytes
            and self._index.same_hash(record.key, key_bytes)
        ):
            return errors.key_not_found(key)
        return CorruptionError(
            f"{segment.path}: the record at offset {offset} (a {record.size}-byte "
            f"{'put' if record.kind == KIND_PUT else 'tombstone'} of {record.key!r}, "
            f"indexed as {size_of(loc)} bytes) is not the one indexed for key "
            f"{errors.describe_key(key)}"
        )


def record_holds(segments: dict[int, Segment]) -> RecordHolds:
    """Tells whether the record at a location is a put of a key, for the index.

    Over ``segments`` as it is when asked: the same table serves the open, then the running
    store. Called only on the thread that changes the index (the open's, then the loop's),
    which is also the one that takes a segment out of ``segments`` before it is closed: a
    segment found there is open for the whole read.
    """

    def holds(loc: int, key: bytes) -> bool:
        segment = segments.get(segment_of(loc))
        if segment is None:
            return True  # nothing to tell by: the entry is taken for the key's own
        try:
            data = segment.read(offset_of(loc), size_of(loc))
            if value_start(data, key) > 0:  # the common case, checked in C where built
                return True
            record = decode(data)
        except (BadRecord, OSError):
            # Never raised: the index asks this while it applies a write already on disk. A
            # read of the key's own value reports the damage or the failing disk.
            return True
        return record.kind != KIND_PUT or record.key == key

    return holds

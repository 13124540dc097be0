"""``AsyncDataStore``: the store's lifecycle and its public coroutines.

The store owns one task group, run by a single runner task, whose children are the writer and
the reaper. ``open()`` starts the runner; ``close()`` lets the writer finish what is queued,
cancels the rest of the group and waits for the runner to end, so nothing outlives ``close()``.
The runner is a task of its own (rather than the group living in ``open()``'s caller) because
``await store.open()`` and ``await store.close()`` may be called from different tasks, and a
task group must be entered and left in one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import functools
import logging
import os
import stat
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import orjson
import platformdirs

from aiokv import errors
from aiokv._bitcask.engine.compaction import Compactor
from aiokv._bitcask.engine.reaper import run_reaper
from aiokv._bitcask.engine.recovery import recover
from aiokv._bitcask.engine.writer import Op, Writer
from aiokv._bitcask.format.hint import HintBuilder
from aiokv._bitcask.format.record import (
    FILE_HEADER_SIZE,
    KIND_DELETE,
    KIND_PUT,
    BadRecord,
    check_put,
    decode,
    value_start,
)
from aiokv._bitcask.index.index import (
    OFFSET_MASK,
    SEGMENT_SHIFT,
    SIZE_BITS,
    SIZE_MASK,
    Index,
    offset_of,
    size_of,
)
from aiokv._bitcask.options import DEFAULT_MAX_SIZE, Durability, Options
from aiokv._bitcask.system import files as _files
from aiokv._bitcask.system import threads as _threads
from aiokv._bitcask.system.lock import StoreLock
from aiokv._bitcask.system.segment import ReadGate, Segment
from aiokv._core.clock import Clock, SystemClock
from aiokv._core.codec import (
    VALUE_JSON,
    check_key,
    check_ttl,
    decode_value,
    encode_value,
)
from aiokv._core.stats import StoreStats
from aiokv.errors import (
    CorruptionError,
    DataStoreError,
    InvalidOptionError,
    KeyNotFoundError,
    StoreClosedError,
    StoreIOError,
    StorePathError,
    describe_key,
)

StrPath = str | os.PathLike[str]

logger = logging.getLogger("aiokv")

READS_PER_YIELD = 32
"""A read lets other tasks run once in this many: a few µs of loop time, never a stall."""

_in_flight = _threads.in_flight  # read by every read on the loop: one global, not two lookups


class _State(enum.Enum):
    NEW = "new"
    OPENING = "opening"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


def default_path() -> Path:
    """``<user data dir>/aiokv/default``; on Linux ``$XDG_DATA_HOME/aiokv/default``."""
    return platformdirs.user_data_path("aiokv", appauthor=False) / "default"


def resolve_path(path: StrPath | None) -> Path:
    """The absolute store directory, so a later ``chdir`` cannot move the store."""
    if path is None:
        return default_path().absolute()
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidOptionError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise InvalidOptionError("path must be a str path, not bytes")
    if not text:
        raise InvalidOptionError("path must not be empty")
    return Path(os.path.abspath(text))


def prepare_directory(path: Path) -> None:
    """Make ``path`` (and its parents) a directory, or raise :class:`StorePathError`.

    Nothing is created when ``path`` exists and is not a directory.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        try:
            # Only the store directory itself gets 0700; parents get the usual umask mode.
            os.makedirs(path, mode=_files.DIR_MODE, exist_ok=True)
            # The new directory's name must survive a power loss like any file's.
            _files.sync_directory(path.parent)
        except OSError as exc:
            raise StorePathError(
                f"cannot create the store directory {path}: {exc.strerror or exc}"
            ) from exc
        return
    except OSError as exc:
        raise StorePathError(f"cannot use {path} as a store: {exc.strerror or exc}") from exc
    if not stat.S_ISDIR(mode):
        raise StorePathError(f"{path} exists and is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise StorePathError(f"the store directory {path} is not writable")


class AsyncDataStore:
    """A key-value store in a directory, for asyncio code.

    ::

        async with AsyncDataStore("data/kv") as store:
            await store.create("user:1", {"name": "Ada"}, ttl=3600)
            print(await store.read("user:1"))
            await store.delete("user:1")

    Keys are ``str`` of 1 to 32 characters; values are ``dict`` (JSON objects) whose compact
    JSON is at most 16384 bytes. All methods must be called from the event loop that opened
    the store. Use :class:`aiokv.DataStore` from threads.

    :param path: the store directory, created with its parents if missing;
        ``None`` means :func:`platformdirs.user_data_path` ``("aiokv") / "default"``.
    :param max_size: bound in bytes on the total size of the store directory (at least 1 MiB).
    :param durability: ``"flush"`` (default): a write is acknowledged once the OS has it, so it
        survives the process being killed; ``"fsync"``: once it is on the disk, so it survives
        a power loss. Concurrent writers share each fsync.
    :param segment_max_bytes: size at which a data file is sealed and the next begun;
        by default 64 MiB, or ``max_size / 16`` for a small store.
    :param reaper_interval_s: how often expired keys are dropped from the in-memory index.
    :param compact_dead_ratio: background compaction runs while more than this fraction of the
        sealed segments' bytes is dead (0.3: the store stays within about 1.5 times its live
        data plus one segment); ``None`` leaves compaction to :meth:`compact` and to creates
        that would not fit otherwise.
    :param clock: an object with ``time() -> float`` (Unix seconds); the system clock by
        default. TTL deadlines are taken from it.
    :raises InvalidOptionError: an option is out of range.
    """

    def __init__(
        self,
        path: StrPath | None = None,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        durability: Durability = "flush",
        segment_max_bytes: int | None = None,
        reaper_interval_s: float = 1.0,
        compact_dead_ratio: float | None = 0.3,
        clock: Clock | None = None,
    ) -> None:
        self._options = Options(
            max_size=max_size,
            durability=durability,
            segment_max_bytes=segment_max_bytes,
            reaper_interval_s=reaper_interval_s,
            compact_dead_ratio=compact_dead_ratio,
            clock=SystemClock() if clock is None else clock,
        )
        self._clock = self._options.clock
        self._path = resolve_path(path)
        self._state = _State.NEW
        self._index = Index()
        self._segments: dict[int, Segment] = {}
        # Reads from other threads (_read_from_thread) against segments being closed.
        self._read_gate = ReadGate()
        self._lock: StoreLock | None = None
        self._writer: Writer | None = None
        self._compactor: Compactor | None = None
        self._runner: asyncio.Task[None] | None = None
        self._opening: asyncio.Future[None] | None = None
        self._closing: asyncio.Future[None] | None = None
        self._cleanup: asyncio.Future[None] | None = None  # a close after a cancelled open
        self._reads = 0
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the store runs on
        self._waiting: set[asyncio.Task[None]] = set()  # thread writes waiting for room

    @property
    def path(self) -> Path:
        """The store directory."""
        return self._path

    @property
    def options(self) -> Options:
        return self._options

    def __repr__(self) -> str:
        state = self._state.value
        if self._state is _State.OPEN:
            state += f" keys={len(self._index)} segments={len(self._segments)}"
        return f"<AsyncDataStore {str(self._path)!r} {state}>"

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        """Lock the directory, rebuild the index from the data files and start the writer.

        :raises StoreLockedError: the store is open elsewhere, in this process or another.
        :raises StorePathError: the path is not a directory or cannot be written.
        :raises CorruptionError: a data file other than the newest one is damaged.
        :raises StoreClosedError: this store object was already closed.
        """
        if self._state is _State.CLOSED:
            raise StoreClosedError("this store was closed; make a new AsyncDataStore to reopen")
        if self._state is not _State.NEW:
            raise DataStoreError(f"this store is already {self._state.value}")
        self._state = _State.OPENING
        # Opening runs as a task of its own, so that a caller cancelled halfway (a timeout
        # around open(), say) cannot leave the lock taken by a half-open store: the opening
        # finishes regardless, and is then closed again.
        opening = self._opening = asyncio.ensure_future(self._open())
        try:
            await asyncio.shield(opening)
        except asyncio.CancelledError:
            self._cleanup = asyncio.ensure_future(self.close())
            raise

    async def _open(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            # One worker-thread call: it reads every data file, which may take a while.
            writer = await _threads.run(self._open_files)
        except BaseException:
            self._state = _State.NEW
            raise
        self._writer = writer
        compactor = Compactor(
            self._path, self._options, self._index, self._segments, writer, self._read_gate
        )
        writer.reclaim = compactor.reclaim
        writer.on_batch = compactor.wakeup.set
        self._compactor = compactor
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._runner = asyncio.ensure_future(self._run(writer, compactor, started))
        await started
        self._state = _State.OPEN

    def _open_files(self) -> Writer:
        prepare_directory(self._path)
        lock = StoreLock(self._path)
        lock.acquire()
        try:
            recovered = recover(self._path, self._clock.time(), self._options.max_size)
            segments = recovered.segments
            disk_bytes = recovered.disk_bytes
            active = recovered.active
            next_segment_id = recovered.next_segment_id
            if active is None:
                try:
                    active = Segment.create(self._path, next_segment_id, recovered.next_seq)
                    segments[active.id] = active
                    # The segment's name must be durable before anything in it is.
                    _files.sync_directory(self._path)
                except BaseException:
                    for segment in segments.values():
                        segment.close()
                    raise
                next_segment_id += 1
                disk_bytes += FILE_HEADER_SIZE
        except OSError as exc:
            lock.release()
            raise StoreIOError(f"{self._path}: the store cannot be opened: {exc}") from exc
        except BaseException:
            lock.release()
            raise
        self._lock = lock
        self._index = recovered.index
        self._segments = segments
        return Writer(
            self._path,
            self._options,
            self._index,
            segments,
            active,
            recovered.next_seq,
            next_segment_id,
            disk_bytes,
            recovered.active_hint if active is recovered.active else HintBuilder(),
            recovered.active_hint_file if active is recovered.active else 0,
        )

    async def _run(
        self, writer: Writer, compactor: Compactor, started: asyncio.Future[None]
    ) -> None:
        """The runner task: the store's task group and its children.

        If any child fails (a bug, or the loop shutting down), the store stops accepting
        writes and every queued one is answered with the error, rather than left waiting.
        """
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(
                    run_reaper,
                    self._index,
                    self._clock,
                    self._options.reaper_interval_s,
                    compactor.wakeup.set,
                )
                group.start_soon(compactor.run)
                compactor.wakeup.set()  # a store may open with dead bytes to reclaim
                started.set_result(None)
                await writer.run()  # returns once close() has asked it to stop
                # A compaction step in progress is let finish (its files must not be left
                # half-switched); then the reaper and the background compactor are cancelled.
                await compactor.stop()
                group.cancel_scope.cancel()
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):  # cancelled: the loop is ending
                logger.error("aiokv: %s: the store's background tasks failed: %r", self._path, exc)
            writer.break_down(exc)
            if not started.done():
                started.set_exception(exc)
            raise

    async def close(self) -> None:
        """Finish the writes already queued, sync and close the files, release the lock.

        Safe to call more than once, and from several tasks at once; each returns when the
        store is closed. A close that is cancelled still completes in the background.
        Operations called after ``close()`` has begun raise :class:`StoreClosedError`.

        :raises StoreIOError: the OS failed the final fsync or hint write. The store is closed
            and unlocked all the same, but its last writes may not have reached the disk.
        """
        if self._state is _State.OPENING:
            assert self._opening is not None
            # Let the opening finish (or fail) first; then close what it opened.
            await asyncio.wait([self._opening])
        if self._state in (_State.NEW, _State.CLOSED):
            self._state = _State.CLOSED
            return
        if self._closing is None:
            self._state = _State.CLOSING
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        writer, runner = self._writer, self._runner
        assert writer is not None
        assert runner is not None
        try:
            writer.stop()
            await asyncio.wait([runner])
            if not runner.cancelled():
                runner.exception()  # logged by the runner; the files are closed all the same
        finally:
            await _threads.run(self._close_files, writer)
            self._state = _State.CLOSED

    def _close_files(self, writer: Writer) -> None:
        try:
            writer.close_sync()
        except OSError as exc:
            raise StoreIOError(
                f"{self._path}: closing: {exc}; the last writes may not be on disk"
            ) from exc
        finally:
            self._read_gate.close(self._segments.values())
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    async def __aenter__(self) -> AsyncDataStore:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- the operations ----------------------------------------------------------------

    def _check_open(self) -> None:
        if self._state is not _State.OPEN:
            raise errors.not_open(self._state.value)

    def _open_writer(self) -> Writer:
        self._check_open()
        assert self._writer is not None
        return self._writer

    async def create(self, key: str, value: dict[str, Any], ttl: int | None = None) -> None:
        """Store ``value`` under ``key``, which must not be live.

        :param ttl: seconds until the key expires, from 1 to 2**31 - 1; ``None``: never.
        :raises KeyExistsError: ``key`` is live; the stored value is left as it was.
        :raises InvalidKeyError, InvalidValueError, ValueTooLargeError, InvalidTTLError: a bad
            argument; nothing is written.
        :raises StoreFullError: the store would grow past ``max_size``; nothing is written.
        :raises StoreClosedError: the store is not open.
        """
        writer = self._open_writer()
        key_bytes = check_key(key)
        seconds = check_ttl(ttl)
        data, encoding = encode_value(value)
        now = self._clock.time()
        if self._index.get_live(key_bytes, now) is not None:
            raise errors.key_exists(key)
        # The deadline keeps sub-second precision: rounding it would expire keys early.
        expiry = now + seconds if seconds is not None else 0.0
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await writer.submit(Op(KIND_PUT, key, key_bytes, data, expiry, future, encoding))

    async def read(self, key: str) -> dict[str, Any]:
        """Return a fresh copy of the value stored under ``key``.

        :raises KeyNotFoundError: ``key`` is missing, deleted or expired.
        :raises CorruptionError: the record on disk fails its checksum.
        """
        if self._state is not _State.OPEN:
            self._open_writer()  # raises
        # A read never waits, so a task reading in a loop would hold the event loop for as
        # long as it runs; every READS_PER_YIELD-th read lets other tasks run first.
        self._reads += 1
        if not self._reads % READS_PER_YIELD:
            await asyncio.sleep(0)
            self._open_writer()  # the store may have been closed meanwhile
        # The hottest path of the store, so written flat: the location's fields are taken
        # apart here (see _index.location) rather than by three calls.
        key_bytes = check_key(key)
        loc = self._index.locate(key_bytes, self._clock)
        if loc is None:
            raise errors.key_not_found(key)
        segment = self._segments[loc >> SEGMENT_SHIFT]
        offset, size = loc >> SIZE_BITS & OFFSET_MASK, loc & SIZE_MASK
        # A slice of the segment's memory map (taken once: the map and its length belong
        # together), unless the record lies past it, or a worker thread of the store is busy:
        # the loop would then hold the GIL nearly all the time, and pread lets go of it for
        # the worker (see aiokv._bitcask.system.threads).
        mapped = segment.mapped
        if mapped is not None and offset + size <= len(mapped) and not _in_flight.busy:
            data = mapped[offset : offset + size]
        else:
            data = segment.pread(offset, size)
        # The common case (a sound put of this key, no deadline, orjson's encoding) decoded
        # here; _value has the rest, and says what is wrong.
        start = value_start(data, key_bytes)
        if start > 0:
            try:
                value: dict[str, Any] = orjson.loads(memoryview(data)[start:])
            except ValueError:
                pass  # _value below says why it does not decode
            else:
                return value
        return self._value(key, key_bytes, segment, loc, data)

    def _read_from_thread(self, key: str) -> dict[str, Any]:
        """:meth:`read`, made in the calling thread rather than on the store's event loop.

        For :class:`DataStore`, whose reads would otherwise each pay a round trip to the loop
        thread. The index is only changed on the loop, one dict operation at a time, which
        the GIL makes atomic. A record inside its segment's memory map is sliced from the map
        with no lock at all: a map stays valid for as long as the reader holds it, even once
        the store has let go of the segment. Otherwise (the newest part of the segment being
        appended to, or a segment that could not be mapped) the read is a ``pread``, and a
        descriptor closed under it could be reused by the next file opened: the reader counts
        itself in through the :class:`ReadGate`, which closing waits for. A record that
        compaction has just moved (its segment already out of ``_segments``) is looked up
        again: the index points at the copy by then.
        """
        if self._state is not _State.OPEN:
            raise errors.not_open(self._state.value)
        key_bytes = check_key(key)
        while True:
            loc = self._index.locate(key_bytes, self._clock)
            if loc is None:
                raise errors.key_not_found(key)
            # The location's fields taken apart here, not by three calls (see read()).
            segment_id, offset, size = (
                loc >> SEGMENT_SHIFT,
                loc >> SIZE_BITS & OFFSET_MASK,
                loc & SIZE_MASK,
            )
            segment = self._segments.get(segment_id)
            if segment is None:
                if self._state is not _State.OPEN:
                    raise errors.not_open(self._state.value)
                continue  # moved by compaction: the index points at the copy now
            mapped = segment.mapped  # taken once: the map and its length belong together
            if mapped is not None and offset + size <= len(mapped):
                data = mapped[offset : offset + size]
                # The common case decoded here, as in read(); _value has the rest.
                start = value_start(data, key_bytes)
                if start > 0:
                    try:
                        value: dict[str, Any] = orjson.loads(memoryview(data)[start:])
                    except ValueError:
                        pass
                    else:
                        return value
            else:
                gate = self._read_gate
                with gate.cond:
                    if self._state is not _State.OPEN:
                        raise errors.not_open(self._state.value)
                    if self._segments.get(segment_id) is not segment:
                        continue  # closed or moved since the lookup: look again
                    gate.readers += 1
                try:
                    data = segment.pread(offset, size)
                finally:
                    gate.leave()
            return self._value(key, key_bytes, segment, loc, data)

    def _value(
        self, key: str, key_bytes: bytes, segment: Segment, loc: int, data: bytes
    ) -> dict[str, Any]:
        """The value in ``data``, the record read from ``loc`` for ``key``."""
        checked = check_put(data, key_bytes)
        if checked is None:
            raise self._bad_record(key, key_bytes, segment, offset_of(loc), size_of(loc), data)
        begins, expiry, encoding = checked
        if expiry and self._clock.time() >= expiry:
            # The index said live, but a reader in another thread can see a location and a
            # deadline from either side of a re-create; the record's own deadline decides.
            raise errors.key_not_found(key)
        try:
            return decode_value(memoryview(data)[begins:], encoding)
        except (ValueError, RecursionError) as exc:
            # The checksum matched, so the bytes are as written, but this process cannot
            # decode them (an integer beyond its int_max_str_digits, say).
            raise CorruptionError(
                f"{segment.path}: the value at offset {offset_of(loc)} does not decode: {exc}"
            ) from None

    def _bad_record(
        self, key: str, key_bytes: bytes, segment: Segment, offset: int, size: int, data: bytes
    ) -> KeyNotFoundError | CorruptionError:
        """Why ``data``, read for ``key``, is not a put record of ``key``.

        A sound put of another key whose hash is ``key``'s is what the index finds for
        ``key`` when it is absent (see aiokv._bitcask.index.index); anything else is corruption.
        """
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
            f"indexed as {size} bytes) is not the one indexed for key {describe_key(key)}"
        )

    async def delete(self, key: str) -> None:
        """Delete ``key``.

        :raises KeyNotFoundError: ``key`` is missing, deleted or expired.
        :raises StoreClosedError: the store is not open.
        """
        writer = self._open_writer()
        key_bytes = check_key(key)
        # Refused here only if surely absent, which reads no record; the writer decides.
        if self._index.surely_absent(key_bytes, self._clock.time()):
            raise errors.key_not_found(key)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await writer.submit(Op(KIND_DELETE, key, key_bytes, b"", 0.0, future))

    def _create_from_thread(
        self, key: str, value: Any, ttl: int | None
    ) -> concurrent.futures.Future[None]:
        """:meth:`create` from a thread other than the store's loop (for :class:`DataStore`).

        The arguments are checked and the value encoded here, in the calling thread, with
        :meth:`create`'s errors; the op is then handed to the loop (see :meth:`_hand_over`).
        The returned future resolves when the writer has written or refused it.
        """
        self._check_open()
        key_bytes = check_key(key)
        seconds = check_ttl(ttl)
        data, encoding = encode_value(value)
        expiry = self._clock.time() + seconds if seconds is not None else 0.0
        return self._hand_over((KIND_PUT, key, key_bytes, data, expiry, encoding))

    def _delete_from_thread(self, key: str) -> concurrent.futures.Future[None]:
        """:meth:`delete` from a thread other than the store's loop (for :class:`DataStore`)."""
        self._check_open()
        key_bytes = check_key(key)
        # Refused here only if surely absent: telling whether an entry found is this key's
        # reads its record, which only the loop thread may do; the writer decides the rest.
        if self._index.surely_absent(key_bytes, self._clock.time()):
            raise errors.key_not_found(key)
        return self._hand_over((KIND_DELETE, key, key_bytes, b"", 0.0, VALUE_JSON))

    def _hand_over(
        self, fields: tuple[int, str, bytes, bytes, float, int]
    ) -> concurrent.futures.Future[None]:
        """Queue an op checked in another thread, with one ``call_soon_threadsafe``.

        A portal round trip runs a task per call and costs twice as much. The op and its
        asyncio future are made by the callback, on the loop thread: neither may be touched
        from this one.
        """
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._submit_from_thread, fields, done)
        return done

    def _submit_from_thread(
        self,
        fields: tuple[int, str, bytes, bytes, float, int],
        done: concurrent.futures.Future[None],
    ) -> None:
        """On the loop: queue the op for the writer; its outcome goes to ``done``."""
        try:
            writer = self._open_writer()
        except DataStoreError as exc:
            done.set_exception(exc)
            return
        assert self._loop is not None
        kind, key, key_bytes, data, expiry, encoding = fields
        future: asyncio.Future[None] = self._loop.create_future()
        future.add_done_callback(functools.partial(_relay, done))
        op = Op(kind, key, key_bytes, data, expiry, future, encoding)
        if not writer.submit_nowait(op):
            task = asyncio.ensure_future(self._submit_when_room(writer, op))
            self._waiting.add(task)
            task.add_done_callback(self._waiting.discard)

    @staticmethod
    async def _submit_when_room(writer: Writer, op: Op) -> None:
        # The outcome travels by op.future's callback; here it is only waited for.
        with contextlib.suppress(DataStoreError):
            await writer.submit(op)

    async def compact(self) -> int:
        """Reclaim the space of dead records in every sealed segment, one at a time.

        The active segment (the one being appended to) is left alone, so up to one segment of
        dead bytes may remain. Reads and writes go on meanwhile.

        :returns: the bytes reclaimed.
        :raises StoreClosedError: the store is not open.
        :raises CorruptionError: a segment being compacted is damaged.
        """
        self._open_writer()
        assert self._compactor is not None
        return await self._compactor.compact()

    async def stats(self) -> StoreStats:
        """A snapshot of the store's size: keys, live and dead bytes, files.

        :raises StoreClosedError: the store is not open.
        """
        writer = self._open_writer()
        assert self._compactor is not None
        segments = self._segments.values()
        return StoreStats(
            live_keys=len(self._index),
            live_bytes=self._index.total_live_bytes,
            dead_bytes=sum(self._compactor.dead_bytes(segment) for segment in segments),
            disk_bytes=writer.disk_bytes,
            segment_count=len(self._segments),
            last_compaction=self._compactor.last_compaction,
        )


def _relay(done: concurrent.futures.Future[None], future: asyncio.Future[None]) -> None:
    """Pass an op's outcome from the loop's future to the waiting thread's."""
    if future.cancelled():
        done.set_exception(errors.closed_before_write())
    elif (error := future.exception()) is not None:
        done.set_exception(error)
    else:
        done.set_result(None)

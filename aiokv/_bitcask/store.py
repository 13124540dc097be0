"""``AsyncDataStore``: a local store's lifecycle and its public coroutines.

The face over the local engine (``aiokv._bitcask.engine``): it checks its arguments, keeps the
store's state (new, opening, open, closing, closed) and hands the work to the engine. The
engine's task group is run by a single runner task; ``open()`` starts it and ``close()`` lets
the writer finish what is queued and waits for the runner to end, so nothing outlives
``close()``. The runner is a task of its own (rather than the group living in ``open()``'s
caller) because ``await store.open()`` and ``await store.close()`` may be called from
different tasks, and a task group must be entered and left in one.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import os
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from aiokv import errors
from aiokv._bitcask.engine.backup import backup as _backup
from aiokv._bitcask.engine.iterate import Iteration, iterate_items, iterate_keys
from aiokv._bitcask.engine.lifecycle import Engine
from aiokv._bitcask.engine.plan import Batch, Op, RecordMoved
from aiokv._bitcask.engine.verify import verify as _verify
from aiokv._bitcask.engine.writer import Writer
from aiokv._bitcask.format.record import KIND_BATCH, KIND_DELETE, KIND_PUT
from aiokv._bitcask.index.index import Index
from aiokv._bitcask.native import warn_if_missing
from aiokv._bitcask.options import DEFAULT_MAX_SIZE, Durability, Options
from aiokv._bitcask.system import files as _files
from aiokv._bitcask.system import threads as _threads
from aiokv._bitcask.system.paths import StrPath, resolve_path
from aiokv._core import jsonl as _jsonl
from aiokv._core.checks import batch_chunks, check_prefix, checked_keys, encoded, refuse_repeats
from aiokv._core.clock import Clock, SystemClock
from aiokv._core.codec import VALUE_JSON, check_key, check_ttl, encode_value
from aiokv._core.handoff import Handoff
from aiokv._core.stats import StoreStats
from aiokv._core.verify_report import VerifyReport
from aiokv.errors import DataStoreError, KeyExistsError, KeyNotFoundError

READS_PER_YIELD = 32
"""A read lets other tasks run once in this many: a few µs of loop time, never a stall."""


class _State(enum.Enum):
    NEW = "new"
    OPENING = "opening"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"
    FORKED = errors.FORKED  # inherited by a child process: its parent owns the files


_OPEN: Final = _State.OPEN
"""Every read and write asks whether the store is open: a member fetched from its enum class
costs about 70 ns on Python 3.11, a module global a tenth of that."""


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
        _stores.add(self)
        self._engine: Engine | None = None
        # The engine's index and read kernel, kept here too for the hot paths (a create's
        # check, every read): each attribute read saved is a few percent of a read.
        self._index = Index()  # empty until the open
        self._read_on_loop: Callable[[str], dict[str, Any]] = self._read_before_open
        self._read_in_thread: Callable[[str], dict[str, Any]] = self._read_before_open
        self._runner: asyncio.Task[None] | None = None
        self._opening: asyncio.Future[None] | None = None
        self._closing: asyncio.Future[None] | None = None
        self._cleanup: asyncio.Future[None] | None = None  # a close after a cancelled open
        self._reads = 0
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the store runs on
        # Its create_future, bound at the open: asyncio.get_running_loop() makes a getpid()
        # system call on every call before Python 3.12, a tenth of a create's time here.
        self._new_future: Callable[[], asyncio.Future[None]] = _no_loop
        self._waiting: set[asyncio.Task[None]] = set()  # thread writes waiting for room
        # The iterations made by keys() and items(), let go of at the close.
        self._iterations: weakref.WeakSet[Iteration[Any]] = weakref.WeakSet()

    @property
    def path(self) -> Path:
        """The store directory."""
        return self._path

    @property
    def options(self) -> Options:
        return self._options

    def __repr__(self) -> str:
        state = self._state.value
        if self._state is _OPEN and self._engine is not None:
            engine = self._engine
            state += f" keys={len(engine.shared.index)} segments={len(engine.shared.segments)}"
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
            raise errors.reopened("AsyncDataStore")
        if self._state is _State.FORKED:
            raise errors.used_across_fork()
        if self._state is not _State.NEW:
            raise errors.opened_twice(self._state.value)
        warn_if_missing()  # once per process: a store on the pure-Python parts unasked
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
        self._new_future = self._loop.create_future
        try:
            # One worker-thread call: it reads every data file, which may take a while.
            engine = await _threads.run(Engine.open, self._path, self._options, self._state_name)
        except BaseException:
            self._state = _State.NEW
            raise
        self._engine = engine
        self._index = engine.shared.index
        self._read_on_loop = engine.reader.on_loop
        self._read_in_thread = engine.reader.in_thread
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._runner = asyncio.ensure_future(engine.run(started))
        await started
        self._state = _OPEN

    def _state_name(self) -> str:
        return self._state.value

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
        if self._state in (_State.NEW, _State.CLOSED, _State.FORKED):
            # A forked child's copy holds nothing of its own to close: the files, the lock
            # and the writer belong to the parent (filelock drops the child's lock copy).
            self._state = _State.CLOSED
            return
        if self._closing is None:
            self._state = _State.CLOSING
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        engine, runner = self._engine, self._runner
        assert engine is not None
        assert runner is not None
        try:
            # An iteration in the middle of a step (a hint read in a worker thread) ends it,
            # then lets go of the maps it holds, before the files are closed.
            for iteration in list(self._iterations):
                await iteration.aclose()
            engine.stop()
            await asyncio.wait([runner])
            if not runner.cancelled():
                runner.exception()  # logged by the runner; the files are closed all the same
        finally:
            await _threads.run(engine.close_files)
            self._state = _State.CLOSED

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
        if self._state is not _OPEN:
            raise errors.not_open(self._state.value)

    def _open_engine(self) -> Engine:
        if self._state is not _OPEN:  # _check_open, inline: every write asks this
            raise errors.not_open(self._state.value)
        assert self._engine is not None
        return self._engine

    async def create(self, key: str, value: dict[str, Any], ttl: int | None = None) -> None:
        """Store ``value`` under ``key``, which must not be live.

        :param ttl: seconds until the key expires, from 1 to 2**31 - 1; ``None``: never.
        :raises KeyExistsError: ``key`` is live; the stored value is left as it was.
        :raises InvalidKeyError, InvalidValueError, ValueTooLargeError, InvalidTTLError: a bad
            argument; nothing is written.
        :raises StoreFullError: the store would grow past ``max_size``; nothing is written.
        :raises StoreClosedError: the store is not open.
        """
        writer = self._open_engine().writer
        key_bytes = check_key(key)
        seconds = None if ttl is None else check_ttl(ttl)
        data, encoding = encode_value(value)
        now = self._clock.time()
        if self._index.get_live(key_bytes, now) is not None:
            raise errors.key_exists(key)
        # The deadline keeps sub-second precision: rounding it would expire keys early.
        expiry = now + seconds if seconds is not None else 0.0
        future = self._new_future()
        op = Op(KIND_PUT, key, key_bytes, data, expiry, future, encoding)
        # Writer.submit, written out: a coroutine frame less on the hottest write path.
        if not writer.queue(op):
            await writer.queue_when_room(op)
        try:
            await future
        except asyncio.CancelledError:
            await writer.cancelled(op)
            raise

    async def read(self, key: str) -> dict[str, Any]:
        """Return a fresh copy of the value stored under ``key``.

        :raises KeyNotFoundError: ``key`` is missing, deleted or expired.
        :raises CorruptionError: the record on disk fails its checksum.
        """
        if self._state is not _OPEN:
            raise errors.not_open(self._state.value)
        # A read never waits, so a task reading in a loop would hold the event loop for as
        # long as it runs; every READS_PER_YIELD-th read lets other tasks run first.
        self._reads += 1
        if not self._reads % READS_PER_YIELD:
            await asyncio.sleep(0)
            self._check_open()  # the store may have been closed meanwhile
        return self._read_on_loop(key)

    async def exists(self, key: str) -> bool:
        """Whether ``key`` is live (not missing, deleted or expired).

        :raises InvalidKeyError: ``key`` is not a valid key.
        :raises StoreClosedError: the store is not open.
        :raises CorruptionError: the record indexed for ``key`` is damaged.
        """
        if self._state is not _OPEN:
            raise errors.not_open(self._state.value)
        if self._index.locate(check_key(key), self._clock) is None:
            return False  # surely absent: no record read
        # The index holds hashes: the record (read as read() reads it) tells whose it is.
        try:
            await self.read(key)
        except KeyNotFoundError:
            return False
        return True

    async def read_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The values of the live keys among ``keys``, each as :meth:`read` gives it; keys
        missing, deleted or expired are left out. Every key is checked before any is read.

        :raises InvalidKeyError: a key is not valid, or ``keys`` is one ``str``.
        :raises StoreClosedError: the store is not open.
        :raises CorruptionError: a stored value is damaged.
        """
        if self._state is not _OPEN:
            raise errors.not_open(self._state.value)
        wanted = checked_keys(keys, "read_many")
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), READ_MANY_PER_YIELD):
            if start:  # the loop is not held for long, as a task reading in a loop is not
                await asyncio.sleep(0)
                self._check_open()
            _read_into(found, self._read_on_loop, wanted[start : start + READ_MANY_PER_YIELD])
        return found

    async def touch(self, key: str, ttl: int | None) -> None:
        """Make ``key`` expire ``ttl`` seconds from now (``None``: never), keeping its value.

        Written as a new record of the same value: after a crash the key has its old deadline
        or its new one, never neither.

        :raises KeyNotFoundError: ``key`` is missing, deleted or expired.
        :raises InvalidKeyError, InvalidTTLError: a bad argument; nothing is written.
        :raises StoreFullError: no room for the new record; nothing is written.
        :raises StoreClosedError: the store is not open.
        """
        engine = self._open_engine()
        key_bytes = check_key(key)
        seconds = None if ttl is None else check_ttl(ttl)
        while True:
            loc, value, encoding = engine.reader.stored(key)
            expiry = self._clock.time() + seconds if seconds is not None else 0.0
            op = Op(KIND_PUT, key, key_bytes, value, expiry, self._new_future(), encoding, loc)
            try:
                await engine.writer.submit(op)
            except RecordMoved:
                continue  # replaced or moved by compaction meanwhile: read it again
            return

    async def create_many(
        self,
        items: Mapping[str, dict[str, Any]] | Iterable[tuple[str, dict[str, Any]]],
        *,
        ttl: int | None = None,
    ) -> None:
        """Store every ``(key, value)`` of ``items`` (a mapping, or an iterable of pairs), all
        or none: every argument is checked first, and the batch is written as one unit, so
        that after a crash at any point either all of it is there or none.

        :param ttl: as for :meth:`create`, for every key of the batch.
        :raises KeyExistsError: some keys are live (the first ten are named); nothing is
            written.
        :raises InvalidKeyError: a key is invalid or given twice; nothing is written.
        :raises InvalidValueError, ValueTooLargeError, InvalidTTLError: a bad argument (the
            message names its key); nothing is written.
        :raises StoreFullError: the whole batch does not fit under ``max_size``; nothing is
            written.
        :raises StoreClosedError: the store is not open.
        """
        writer = self._open_engine().writer
        seconds = None if ttl is None else check_ttl(ttl)
        batch = Batch(KIND_PUT, [], [])
        async for keys, values in batch_chunks(items, "create_many"):
            batch.keys += keys
            batch.key_bytes += map(check_key, keys)
            data, encodings = encoded(keys, values)
            batch.values += data
            batch.encodings += encodings
        refuse_repeats(batch.keys, batch.key_bytes)
        if not batch.keys:
            return
        now = self._clock.time()
        batch.expiries = [now + seconds if seconds is not None else 0.0] * len(batch.keys)
        await self._submit_puts(writer, batch, now)

    async def _submit_puts(self, writer: Writer, batch: Batch, now: float) -> None:
        # The writer decides, but a batch surely refused need not be queued. (A bulk load's
        # keys are usually all new: one C-level pass tells, with no lookup per key.)
        if self._index.any_indexed(batch.key_bytes):
            live = [
                key
                for key, key_bytes in zip(batch.keys, batch.key_bytes, strict=True)
                if self._index.get_live(key_bytes, now) is not None
            ]
            if live:
                raise errors.keys_exist(live)
        await writer.submit(Op(KIND_BATCH, "", b"", b"", 0.0, self._new_future(), batch=batch))

    async def export_jsonl(self, path: StrPath, *, prefix: str = "") -> int:
        """Write the live keys that start with ``prefix`` to ``path`` as JSON Lines, one
        ``{"key": ..., "value": ..., "expires_at": <Unix seconds> or null}`` a line (UTF-8).

        The file is written under a temporary name beside ``path``, fsynced and renamed over
        it, so ``path`` is never a half file; each key is in or out whole, as :meth:`items`
        yields them; the export streams (its memory does not grow with the store).

        :returns: how many keys were written.
        :raises InvalidKeyError: ``prefix`` is not a valid prefix.
        :raises StorePathError: ``path`` exists and is not a regular file (a device, a FIFO,
            a directory or a symbolic link); nothing was written.
        :raises StoreFullError, StoreIOError: the file could not be written (a full disk,
            say); nothing is left at ``path`` or beside it.
        :raises StoreClosedError: the store is not open.
        """
        self._open_engine()
        target = resolve_path(path)
        items = self.items(prefix)
        try:
            return await _jsonl.export(self._with_deadlines(items), target, _FILES)
        finally:
            await items.aclose()

    async def _with_deadlines(
        self, items: AsyncIterator[tuple[str, dict[str, Any]]]
    ) -> AsyncIterator[tuple[str, dict[str, Any], float]]:
        """``items`` with each key's deadline, asked as the key is written; a key no longer
        live by then is left out."""
        async for key, value in items:
            deadline = self._deadline_of(key)
            if deadline is not None:
                yield key, value, deadline

    async def import_jsonl(self, path: StrPath, *, skip_existing: bool = False) -> int:
        """Create the entries of a JSON Lines file as :meth:`export_jsonl` writes them,
        keeping each ``expires_at`` as the key's deadline; entries already expired are passed
        over, and with ``skip_existing`` so are keys already live.

        The file is checked whole first and a bad one imports nothing; then its entries are
        written in atomic batches (a crash leaves a prefix of whole batches).

        :returns: how many keys were created.
        :raises ImportFileError: a line is wrong (bad JSON or UTF-8, a missing field, an
            invalid key, value or deadline, a key given twice); it names the line.
        :raises KeyExistsError: a key is live and ``skip_existing`` is false.
        :raises StoreFullError: the entries do not fit (batches already written stay).
        :raises StoreClosedError: the store is not open.
        """
        engine = self._open_engine()
        writer = engine.writer

        async def write(entries: list[_jsonl.Entry]) -> int:
            while entries:
                batch = Batch(KIND_PUT, [], [])
                for entry in entries:
                    batch.keys.append(entry.key)
                    batch.key_bytes.append(check_key(entry.key))
                    data, encoding = encode_value(entry.value)
                    batch.values.append(data)
                    batch.encodings.append(encoding)
                    batch.expiries.append(entry.expires_at)
                try:
                    await self._submit_puts(writer, batch, self._clock.time())
                except KeyExistsError:
                    if not skip_existing:
                        raise
                    # Created meanwhile by someone else: left as they are, as asked.
                    entries = [entry for entry in entries if not self._is_live(entry.key)]
                    continue
                return len(entries)
            return 0

        async def live_among(keys: list[str]) -> set[str]:
            return {key for key in keys if self._is_live(key)}

        return await _jsonl.import_(
            resolve_path(path), self._clock.time, live_among, write, skip_existing, _FILES
        )

    def _deadline_of(self, key: str) -> float | None:
        """``key``'s deadline (0.0: none), or None if it is no longer live."""
        key_bytes = check_key(key)
        if self._index.locate(key_bytes, self._clock) is None:
            return None
        return self._index.deadline(key_bytes)

    def _is_live(self, key: str) -> bool:
        return self._holds(key, self._read_on_loop)

    def _holds(self, key: str, read: Callable[[str], dict[str, Any]]) -> bool:
        """Whether ``key`` is live, told by the index when surely absent, else by ``read``
        (the loop's or the calling thread's kernel): the index holds hashes, the record says
        whose it is."""
        if self._index.locate(check_key(key), self._clock) is None:
            return False
        try:
            read(key)
        except KeyNotFoundError:
            return False
        return True

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete every live key among ``keys`` as one unit (all or none after a crash);
        keys that are not live are passed over.

        :returns: how many keys were deleted.
        :raises InvalidKeyError: a key is invalid, or ``keys`` is one ``str``; nothing is
            written.
        :raises StoreFullError: no room for the delete markers; nothing is written.
        :raises StoreClosedError: the store is not open.
        """
        writer = self._open_engine().writer
        if isinstance(keys, str):
            raise errors.keys_not_str("delete_many")
        listed = list(keys)
        # Each checked (before it is hashed) and kept once, in order, with its bytes.
        wanted = dict(zip(listed, map(check_key, listed), strict=True))
        now = self._clock.time()
        # Left out here only if surely absent, which reads no record; the writer decides.
        present = [
            (key, raw) for key, raw in wanted.items() if not self._index.surely_absent(raw, now)
        ]
        if not present:
            return 0
        batch = Batch(KIND_DELETE, [key for key, _raw in present], [raw for _key, raw in present])
        await writer.submit(Op(KIND_BATCH, "", b"", b"", 0.0, self._new_future(), batch=batch))
        return batch.written

    async def backup(self, dest: StrPath) -> None:
        """Copy the store, as it is now, to ``dest``: a new or empty directory.

        The copy opens as a store holding exactly the keys live when ``backup`` was called
        (writes running alongside may or may not be in it, a batch whole or not at all) and
        is synced before this returns; it shares no file that can change with this store.
        Reads and writes go on meanwhile. Sealed segments are hard-linked where ``dest`` is on
        the same file system, else copied. A copy cut off by a crash does not open.

        :raises StorePathError: ``dest`` exists and is not an empty directory, or lies inside
            the store; nothing is touched.
        :raises StoreFullError, StoreIOError: the copy failed; nothing is left in ``dest``.
        :raises StoreClosedError: the store is not open.
        """
        engine = self._open_engine()
        await _backup(engine.shared, resolve_path(dest))

    def _read_before_open(self, key: str) -> dict[str, Any]:
        raise errors.not_open(self._state.value)

    def _read_many_from_thread(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """:meth:`read_many` in the calling thread, as :meth:`_read_from_thread` reads."""
        wanted = checked_keys(keys, "read_many")
        found: dict[str, dict[str, Any]] = {}
        for key in wanted:
            with contextlib.suppress(KeyNotFoundError):
                found[key] = self._read_from_thread(key)
        return found

    def _exists_from_thread(self, key: str) -> bool:
        """:meth:`exists` in the calling thread."""
        if self._state is not _OPEN:
            raise errors.not_open(self._state.value)
        return self._holds(key, self._read_in_thread)

    def _read_from_thread(self, key: str) -> dict[str, Any]:
        """:meth:`read`, made in the calling thread rather than on the store's event loop
        (for :class:`DataStore`, whose reads would otherwise each pay a round trip to the
        loop thread); see ``Reader.in_thread``."""
        if self._state is not _OPEN:
            raise errors.not_open(self._state.value)
        return self._read_in_thread(key)

    async def delete(self, key: str) -> None:
        """Delete ``key``.

        :raises KeyNotFoundError: ``key`` is missing, deleted or expired.
        :raises StoreClosedError: the store is not open.
        """
        writer = self._open_engine().writer
        key_bytes = check_key(key)
        # Refused here only if surely absent, which reads no record; the writer decides.
        if self._index.surely_absent(key_bytes, self._clock.time()):
            raise errors.key_not_found(key)
        future = self._new_future()
        await writer.submit(Op(KIND_DELETE, key, key_bytes, b"", 0.0, future))

    def _create_from_thread(self, key: str, value: Any, ttl: int | None) -> Handoff:
        """:meth:`create` from a thread other than the store's loop (for :class:`DataStore`).

        The arguments are checked and the value encoded here, in the calling thread, with
        :meth:`create`'s errors; the op is then handed to the loop (see :meth:`_hand_over`).
        The returned handoff is answered when the writer has written or refused it.
        """
        self._check_open()
        key_bytes = check_key(key)
        seconds = None if ttl is None else check_ttl(ttl)
        data, encoding = encode_value(value)
        expiry = self._clock.time() + seconds if seconds is not None else 0.0
        return self._hand_over(KIND_PUT, key, key_bytes, data, expiry, encoding)

    def _delete_from_thread(self, key: str) -> Handoff:
        """:meth:`delete` from a thread other than the store's loop (for :class:`DataStore`)."""
        self._check_open()
        key_bytes = check_key(key)
        # Refused here only if surely absent: telling whether an entry found is this key's
        # reads its record, which only the loop thread may do; the writer decides the rest.
        if self._index.surely_absent(key_bytes, self._clock.time()):
            raise errors.key_not_found(key)
        return self._hand_over(KIND_DELETE, key, key_bytes, b"", 0.0, VALUE_JSON)

    def _hand_over(
        self, kind: int, key: str, key_bytes: bytes, data: bytes, expiry: float, encoding: int
    ) -> Handoff:
        """Queue an op checked in another thread, with one ``call_soon_threadsafe``.

        A portal round trip runs a task per call and costs twice as much. The op is made
        here, but queued by the callback, on the loop thread: the writer's queue may not be
        touched from this one. The writer answers the handoff itself, from the loop thread.
        """
        done = Handoff()
        op = Op(kind, key, key_bytes, data, expiry, done, encoding)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._submit_from_thread, op)
        return done

    def _submit_from_thread(self, op: Op) -> None:
        """On the loop: queue a handed-over op for the writer, which answers it."""
        try:
            writer = self._open_engine().writer
            if writer.submit_nowait(op):
                return
        except DataStoreError as exc:
            op.future.set_exception(exc)
            return
        task = asyncio.ensure_future(self._submit_when_room(writer, op))
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    @staticmethod
    async def _submit_when_room(writer: Writer, op: Op) -> None:
        try:
            await writer.queue_when_room(op)
        except DataStoreError as exc:  # the writer finished meanwhile
            op.future.set_exception(exc)

    def keys(self, prefix: str = "") -> Iteration[str]:
        """The live keys that start with ``prefix`` (``""``: every key), in no set order::

            async for key in store.keys("user:"):
                ...

        Every key live from the iteration's start to its end is yielded exactly once; a key
        created, deleted or expiring meanwhile may be or not; no key is yielded twice. Writes
        and compaction go on meanwhile, and the loop is given back about every millisecond.
        It holds no memory per key of the store. ``await iteration.aclose()`` ends it early;
        so do dropping it and closing the store.

        :raises InvalidKeyError: ``prefix`` is not a str, or is longer than a key.
        :raises StoreClosedError: the store is not open (from the iteration too, once the
            store is closed).
        :raises CorruptionError: a record read is damaged (from the iteration).
        """
        engine = self._open_engine()
        iteration = iterate_keys(engine.shared, self._state_name, check_prefix(prefix))
        self._iterations.add(iteration)
        return iteration

    def items(self, prefix: str = "") -> Iteration[tuple[str, dict[str, Any]]]:
        """``(key, value)`` of the live keys that start with ``prefix``, as :meth:`keys`
        yields them; each value a fresh copy, as :meth:`read` gives it. A key that can no
        longer be read when its turn comes (deleted or expired meanwhile) is passed over.

        :raises InvalidKeyError: ``prefix`` is not a str, or is longer than a key.
        :raises StoreClosedError: the store is not open (from the iteration too).
        :raises CorruptionError: a value read is damaged (from the iteration).
        """
        engine = self._open_engine()
        iteration = iterate_items(
            engine.shared, engine.reader, self._state_name, check_prefix(prefix)
        )
        self._iterations.add(iteration)
        return iteration

    async def compact(self) -> int:
        """Reclaim the space of dead records in every sealed segment, one at a time.

        The active segment (the one being appended to) is left alone, so up to one segment of
        dead bytes may remain. Reads and writes go on meanwhile.

        :returns: the bytes reclaimed.
        :raises StoreClosedError: the store is not open.
        :raises CorruptionError: a segment being compacted is damaged.
        """
        return await self._open_engine().compactor.compact()

    async def verify(self) -> VerifyReport:
        """Read every record of every data file and every hint, check every checksum, and
        check that the index agrees with the files; reads and writes go on meanwhile.

        What is found wrong is reported, never raised: each problem names its file, its
        offset and what is wrong. The data file being appended to is checked up to its size
        when verify reaches it; records written after verify starts may or may not be checked.

        :returns: the files, records and bytes checked, and the problems found.
        :raises StoreClosedError: the store is not open, or was closed while verify ran.
        """
        return await _verify(self._open_engine().shared, self._check_open)

    async def stats(self) -> StoreStats:
        """A snapshot of the store's size: keys, live and dead bytes, files.

        :raises StoreClosedError: the store is not open.
        """
        engine = self._open_engine()
        shared, compactor = engine.shared, engine.compactor
        segments = shared.segments.values()
        return StoreStats(
            live_keys=len(shared.index),
            live_bytes=shared.index.total_live_bytes,
            dead_bytes=sum(compactor.dead_bytes(segment) for segment in segments),
            disk_bytes=shared.space.disk_bytes,
            segment_count=len(segments),
            last_compaction=compactor.last_compaction,
        )


READ_MANY_PER_YIELD: Final = 256
"""Keys ``read_many`` reads between two yields to the loop: about half a millisecond."""


def _read_into(
    found: dict[str, dict[str, Any]], read: Callable[[str], dict[str, Any]], keys: list[str]
) -> None:
    for key in keys:
        try:  # noqa: SIM105 - contextlib.suppress would cost a context manager per key
            found[key] = read(key)
        except KeyNotFoundError:
            pass


_FILES: Final = _jsonl.FileCalls(
    _threads.run,
    _files.create_file,
    _files.sync_directory,
    functools.partial(_files.unlink, missing_ok=True),
)
"""The file calls of an export or import: counted threads (see ``system.threads``), and the
store's own file system, which the fault tests fail."""

_stores: weakref.WeakSet[AsyncDataStore] = weakref.WeakSet()
"""Every store object of this process, to be told of a fork."""


def _after_fork_in_child() -> None:
    """In a child made by ``fork()``: every store the parent had opened is unusable here.

    The child has a copy of the store's state, but not the parent's loop, writer task or
    threads: its reads would run on files only the parent writes and its writes would never
    be answered. Each such store now refuses everything, saying why.
    """
    for store in list(_stores):
        if store._state not in (_State.NEW, _State.CLOSED):
            store._state = _State.FORKED


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _no_loop() -> asyncio.Future[None]:
    raise AssertionError("a future asked for before the store's loop is known")

"""Export to and import from JSON Lines: one ``{"key", "value", "expires_at"}`` object a line.

The file I/O goes through aiofiles, so the event loop is never held by a read or a write of
the file: each is a worker-thread call. Both directions stream, a piece at a time. The file
format and both passes are the same for every backend: a backend gives its entries to export
(with their deadlines), says which keys are live and writes a batch of entries; and names the
calls that create, sync and remove files and run them in threads (:class:`FileCalls`: the
local engine's own, which its fault tests can fail, or :data:`PLAIN_FILES`).

An export is written under a temporary name beside its target, fsynced and renamed over it:
the target is never a half file, also after a crash or on a full disk. An import reads its
file twice: first to check every line (nothing is written if one is wrong), then to write
the entries in atomic batches.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import secrets
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import aiofiles
import aiofiles.os
import orjson
from aiofiles.threadpool.binary import AsyncBufferedReader

from aiokv import errors
from aiokv._core import osfiles
from aiokv._core.codec import MAX_TTL_S, check_key, encode_value, has_long_digits
from aiokv.errors import DataStoreError, ImportFileError, KeyExistsError

FIELDS: Final = frozenset({"key", "value", "expires_at"})
WRITE_BYTES: Final = 1 << 20
"""About how much an export gathers before one write to its file."""
READ_BYTES: Final = 1 << 16
MAX_LINE_BYTES: Final = 1 << 20
"""The longest line an import reads: a value's stored JSON is at most 16 KiB, and escapes and
spaces in the file may make it a few times longer; a longer line is refused, not read."""
BATCH_ENTRIES: Final = 1000
"""Entries an import writes in one atomic batch (``create_many``)."""


T = TypeVar("T")


@dataclass(frozen=True)
class FileCalls:
    """How an export or import reaches the file system."""

    run: Callable[..., Awaitable[Any]]
    """``await run(func, *args)``: ``func(*args)`` in a worker thread."""
    create_file: Callable[[Path], int]
    """Create a new file (it must not exist), private to its user; a descriptor to write."""
    sync_directory: Callable[[Path], None]
    unlink: Callable[[Path], None]
    """Remove a file, if it is there."""


async def _in_thread(func: Callable[..., T], *args: object) -> T:
    return await asyncio.to_thread(func, *args)


def _unlink_if_there(path: Path) -> None:
    path.unlink(missing_ok=True)


PLAIN_FILES: Final = FileCalls(
    _in_thread, osfiles.create_private, osfiles.sync_directory, _unlink_if_there
)
"""The plain calls, for a backend with no file system of its own (Redis)."""


# -- export ------------------------------------------------------------------------------


async def export(
    entries: AsyncIterator[tuple[str, dict[str, Any], float]], path: Path, files: FileCalls
) -> int:
    """Write ``entries`` (key, value and deadline, 0.0 for none) to ``path`` as JSON Lines;
    return how many were written. A backend leaves out a key no longer live when its deadline
    is asked (deleted or expired since its value was read), rather than write it with no
    deadline and bring it back."""
    await files.run(_check_target, path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    count = 0
    try:
        with errors.map_os_errors(f"exporting to {path} (nothing was left there)"):
            fd = await files.run(files.create_file, temporary)
            async with aiofiles.open(fd, "wb", closefd=True) as file:
                pending: list[bytes] = []
                size = 0
                async for key, value, deadline in entries:
                    line = _line(key, value, deadline)
                    pending.append(line)
                    size += len(line)
                    count += 1
                    if size >= WRITE_BYTES:
                        await file.write(b"".join(pending))
                        pending, size = [], 0
                await file.write(b"".join(pending))
                await file.flush()
                await files.run(os.fsync, file.fileno())
            await aiofiles.os.replace(temporary, path)
            await files.run(files.sync_directory, path.parent)
    except BaseException:
        await files.run(files.unlink, temporary)
        raise
    return count


def _check_target(path: Path) -> None:
    """Refuse a target the rename would wrongly replace: a device (``/dev/stdout``: root may
    rename over the node), a FIFO, a directory or a symlink (the link, not its file, would be
    replaced)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return  # absent (the usual case); else the write below says what is wrong there
    if stat.S_ISREG(mode):
        return
    kinds = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"))
    what = next((name for test, name in kinds if test(mode)), "a device, FIFO or socket")
    raise errors.not_a_file_target(path, what)


def _line(key: str, value: dict[str, Any], deadline: float) -> bytes:
    entry = {"key": key, "value": value, "expires_at": deadline or None}
    try:
        return orjson.dumps(entry) + b"\n"
    except TypeError:  # an integer beyond 64 bits, which orjson cannot write
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


# -- import ------------------------------------------------------------------------------


@dataclass(slots=True)
class Entry:
    """One checked line of an import file."""

    line: int
    key: str
    value: dict[str, Any]
    expires_at: float  # 0.0: never


class _Checked:
    """What the check of a whole file found: its identity and the keys, each once."""

    def __init__(self) -> None:
        self.keys: dict[str, int] = {}  # key -> the line it is on
        self.identity: tuple[int, int, int] | None = None


LiveAmong = Callable[[list[str]], Awaitable[set[str]]]
"""Which of some keys are live in the store, asked a batch at a time."""


async def import_(
    path: Path,
    now: Callable[[], float],
    live_among: LiveAmong,
    write: Callable[[list[Entry]], Awaitable[int]],
    skip_existing: bool,
    files: FileCalls,
) -> int:
    """Check ``path`` whole, then write its entries in batches with ``write`` (which returns
    how many of a batch it wrote); return how many were written.

    Both passes read one open file, which must not change in between (checked by its size
    and modification time).

    :raises ImportFileError: a line is wrong (its number, 1-based, and what is wrong said);
        nothing is written.
    :raises KeyExistsError: a key is live and ``skip_existing`` is false; nothing is written.
    """
    checked = _Checked()
    with errors.map_os_errors(f"reading {path}"):
        async with aiofiles.open(path, "rb") as file:
            checked.identity = await _identity(file.fileno(), files)
            async for batch in _batches(_entries(file, now)):
                for entry in batch:
                    _check_once(entry, checked)
                if not skip_existing:
                    _refuse_live(batch, await live_among([entry.key for entry in batch]))
            if await _identity(file.fileno(), files) != checked.identity:
                raise ImportFileError(f"{path} changed while it was read; nothing was imported")
            await file.seek(0)
            return await _write_entries(path, file, now, live_among, write, skip_existing)


async def _write_entries(
    path: Path,
    file: AsyncBufferedReader,
    now: Callable[[], float],
    live_among: LiveAmong,
    write: Callable[[list[Entry]], Awaitable[int]],
    skip_existing: bool,
) -> int:
    """The second pass: the entries not expired (nor live, with ``skip_existing``) written
    in batches; an error after some were written says how many."""
    written = 0
    try:
        async for batch in _batches(_entries(file, now)):
            # Expired already: not brought back.
            batch = [entry for entry in batch if not entry.expires_at or entry.expires_at > now()]
            if skip_existing and batch:
                live = await live_among([entry.key for entry in batch])
                batch = [entry for entry in batch if entry.key not in live]
            if batch:
                written += await write(batch)
    except DataStoreError as exc:
        if written:
            note = f" ({written} entries of {path} were imported before it, in whole batches)"
            raise type(exc)(f"{exc}{note}") from exc
        raise
    return written


async def _batches(entries: AsyncIterator[Entry]) -> AsyncIterator[list[Entry]]:
    """``entries`` in lists of :data:`BATCH_ENTRIES` (the last one shorter)."""
    batch: list[Entry] = []
    async for entry in entries:
        batch.append(entry)
        if len(batch) == BATCH_ENTRIES:
            yield batch
            batch = []
    if batch:
        yield batch


def _check_once(entry: Entry, checked: _Checked) -> None:
    first = checked.keys.setdefault(entry.key, entry.line)
    if first != entry.line:
        raise ImportFileError(
            f"line {entry.line}: key {errors.describe_key(entry.key)} is also on line "
            f"{first}; nothing was imported"
        )


def _refuse_live(batch: list[Entry], live: set[str]) -> None:
    for entry in batch:
        if entry.key in live:
            raise KeyExistsError(
                f"line {entry.line}: key {errors.describe_key(entry.key)} already exists "
                "(pass skip_existing=True to leave it as it is); nothing was imported"
            )


async def _identity(fd: int, files: FileCalls) -> tuple[int, int, int]:
    stat = await files.run(os.fstat, fd)
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


async def _entries(file: AsyncBufferedReader, now: Callable[[], float]) -> AsyncIterator[Entry]:
    """Each line of ``file`` as a checked entry; :class:`ImportFileError` at the first bad
    one."""
    number = 0
    async for line in _lines(file):
        number += 1
        if line.strip():
            yield _entry(number, line, now())


async def _lines(file: AsyncBufferedReader) -> AsyncIterator[bytes]:
    """The lines of ``file``, read a piece at a time; a line longer than
    :data:`MAX_LINE_BYTES` is refused before it is read whole."""
    number = 1
    buffer = b""
    while chunk := await file.read(READ_BYTES):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            yield line
            number += 1
        if len(buffer) > MAX_LINE_BYTES:
            raise ImportFileError(
                f"line {number}: longer than {MAX_LINE_BYTES} bytes; nothing was imported"
            )
    if buffer:
        yield buffer


def _entry(number: int, line: bytes, now: float) -> Entry:
    def bad(what: str) -> ImportFileError:
        return ImportFileError(f"line {number}: {what}; nothing was imported")

    try:
        # orjson reads an integer beyond 64 bits as a float: a line with a long run of digits
        # goes to the json module, which keeps it exact (as the store does: see codec).
        entry = json.loads(line) if has_long_digits(line) else orjson.loads(line)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise bad(f"not JSON in UTF-8 ({exc})") from None
    if not isinstance(entry, dict):
        raise bad("not a JSON object")
    if set(entry) != FIELDS:
        missing = ", ".join(sorted(FIELDS - set(entry))) or "none"
        extra = ", ".join(sorted(set(entry) - FIELDS)) or "none"
        raise bad(f"the fields are key, value and expires_at (missing: {missing}; extra: {extra})")
    key, value, expires_at = entry["key"], entry["value"], entry["expires_at"]
    try:
        check_key(key)
        encode_value(value)
    except DataStoreError as exc:
        raise bad(str(exc)) from None
    return Entry(number, key, value, _deadline(expires_at, bad, now))


def _deadline(expires_at: object, bad: Callable[[str], ImportFileError], now: float) -> float:
    if expires_at is None:
        return 0.0
    if type(expires_at) not in (int, float):
        raise bad(f"expires_at must be a number of Unix seconds or null, not {expires_at!r}")
    try:
        deadline = float(expires_at)  # type: ignore[arg-type]
    except OverflowError:  # an integer of hundreds of digits
        deadline = math.inf
    if not math.isfinite(deadline):
        raise bad(f"expires_at {expires_at!r} is not a deadline a TTL can set")
    if deadline <= 0 or deadline - now > MAX_TTL_S:
        raise bad(f"expires_at {expires_at!r} is not a deadline a TTL can set")
    return deadline

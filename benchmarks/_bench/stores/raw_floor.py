"""The raw floor: not a store, the least a log-structured store can do."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from _bench.stores.base import KeyExistsError, SyncHandle, SyncOps
from _bench.values import DECODE, ENCODE, Value

RAW_FILE = "data.log"


def write_all(fd: int, data: bytes) -> int:
    """Append ``data`` with one ``os.write``; a short write is an error, not a retry."""
    written = os.write(fd, data)
    if written != len(data):
        raise OSError(f"short write: {written} of {len(data)} bytes")
    return written


def pread_all(fd: int, size: int, offset: int) -> bytes:
    """``size`` bytes at ``offset``, with one ``os.pread``; a short read is an error."""
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise OSError(f"short read at {offset}: {len(data)} of {size} bytes")
    return data


class RawFloor(SyncHandle):
    """The floor: one append-only file of ``key TAB json NEWLINE`` lines, a dict of ``key ->
    (offset, size)`` and ``os.pread``. No checksums, no cap, no compaction, no recovery beyond
    rereading the lines; a delete appends ``key TAB NEWLINE``. Appends are serialised by a
    lock so that threads can share it; ``fsync=True`` syncs the file before each write returns.
    """

    def __init__(self, path: Path, *, fsync: bool = False) -> None:
        path.mkdir(exist_ok=True)
        self.fd = os.open(path / RAW_FILE, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self.end = os.fstat(self.fd).st_size
        self.index: dict[str, tuple[int, int]] = {}
        self.lock = threading.Lock()
        self.fsync = fsync
        if self.end:
            self._scan()

    def _scan(self) -> None:
        offset = 0
        with open(self.fd, "rb", closefd=False) as log:
            for line in log:
                tab = line.index(b"\t")
                key = line[:tab].decode()
                if len(line) == tab + 2:
                    self.index.pop(key, None)
                else:
                    self.index[key] = (offset + tab + 1, len(line) - tab - 2)
                offset += len(line)

    def _append(self, record: bytes) -> int:
        offset = self.end
        self.end += write_all(self.fd, record)
        if self.fsync:
            os.fsync(self.fd)
        return offset

    def create(self, key: str, value: Value) -> None:
        encoded_key = key.encode()
        body = ENCODE(value).encode()
        with self.lock:
            if key in self.index:
                raise KeyExistsError(key)
            offset = self._append(encoded_key + b"\t" + body + b"\n")
            self.index[key] = (offset + len(encoded_key) + 1, len(body))

    def read(self, key: str) -> Value:
        offset, size = self.index[key]
        return DECODE(pread_all(self.fd, size, offset))  # type: ignore[no-any-return]

    def delete(self, key: str) -> None:
        with self.lock:
            del self.index[key]
            self._append(key.encode() + b"\t\n")

    def ops(self) -> SyncOps:
        return SyncOps(self.create, self.read, self.delete)

    def close(self) -> None:
        os.close(self.fd)


def raw_floor_fsync(path: Path) -> RawFloor:
    """The floor with an ``fsync`` per append."""
    return RawFloor(path, fsync=True)


REOPEN_IMPORT = ""
REOPEN_OPEN = (
    "index = {}\noffset = 0\n"
    f"with open(os.path.join(path, {RAW_FILE!r}), 'rb') as log:\n"
    "    for line in log:\n"
    "        tab = line.index(b'\\t')\n"
    "        key = line[:tab].decode()\n"
    "        if len(line) == tab + 2:\n"
    "            index.pop(key, None)\n"
    "        else:\n"
    "            index[key] = (offset + tab + 1, len(line) - tab - 2)\n"
    "        offset += len(line)\n"
    f"fd = os.open(os.path.join(path, {RAW_FILE!r}), os.O_RDONLY)\n"
    "def read(key):\n"
    "    offset, size = index[key]\n"
    "    return json.loads(os.pread(fd, size, offset))\n"
    "def close():\n    os.close(fd)"
)

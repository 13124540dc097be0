"""The asyncio floor: not a store, the least a one-writer asyncio design can do for creates."""

from __future__ import annotations

import asyncio
import os
import struct
import zlib
from pathlib import Path

import orjson

from _bench.stores.base import AsyncHandle, AsyncOps
from _bench.stores.raw_floor import pread_all, write_all
from _bench.values import Value

FLOOR_FILE = "records.log"

# A record: the header, then the key's UTF-8, then the value's compact JSON (orjson's).
#
#   +---------+---------+-----------+-----+-------+
#   | crc u32 | key u16 | value u32 | key | value |
#   +---------+---------+-----------+-----+-------+
#
# crc is the CRC-32 of the key and value bytes; the widths are little-endian.
HEADER = struct.Struct("<IHI")


class AsyncioFloor(AsyncHandle):
    """The floor of a one-writer asyncio store's creates, which aiokv's are measured against.

    A create encodes its value (``orjson.dumps``), makes its record with a CRC-32, appends
    ``(record, future)`` to a list, sets an event if it is not set and awaits its future. One
    writer task waits on the event, clears it, swaps the list out, joins the records, makes one
    ``os.write`` to an append-only file and resolves the futures. Nothing else: no index, no
    check that a key is new, no cap, no delete.

    Reads exist so that a run can check every create landed (untimed): the first read after a
    write builds a dict of ``key -> (offset, size)`` by scanning the file, checking each CRC,
    then each read is one ``os.pread`` (the raw floor's) and ``orjson.loads``.
    """

    def __init__(self, path: Path) -> None:
        path.mkdir(exist_ok=True)
        self.fd = os.open(path / FLOOR_FILE, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self.loop = asyncio.get_running_loop()
        self.pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self.wake = asyncio.Event()
        self.closing = False
        self.index: dict[str, tuple[int, int]] | None = None  # built by the first read
        self.writer = self.loop.create_task(self._write_loop())

    @classmethod
    async def open(cls, path: Path) -> AsyncioFloor:
        return cls(path)

    async def create(self, key: str, value: Value) -> None:
        encoded_key = key.encode()
        body = orjson.dumps(value)
        crc = zlib.crc32(body, zlib.crc32(encoded_key))
        future = self.loop.create_future()
        self.pending.append(
            (HEADER.pack(crc, len(encoded_key), len(body)) + encoded_key + body, future)
        )
        if not self.wake.is_set():
            self.wake.set()
        await future

    async def _write_loop(self) -> None:
        while not self.closing:
            await self.wake.wait()
            self.wake.clear()
            self._write()

    def _write(self) -> None:
        """Write every queued record with one ``os.write``, then resolve their futures."""
        batch, self.pending = self.pending, []
        if not batch:
            return
        self.index = None  # the next read scans again
        try:
            write_all(self.fd, b"".join([record for record, _future in batch]))
        except OSError as exc:
            for _record, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for _record, future in batch:
            if not future.done():  # its caller may have been cancelled
                future.set_result(None)

    async def read(self, key: str) -> Value:
        if self.index is None:
            self.index = self._scan()
        offset, size = self.index[key]
        return orjson.loads(pread_all(self.fd, size, offset))  # type: ignore[no-any-return]

    def _scan(self) -> dict[str, tuple[int, int]]:
        index: dict[str, tuple[int, int]] = {}
        data = pread_all(self.fd, os.fstat(self.fd).st_size, 0)
        offset = 0
        while offset < len(data):
            crc, key_size, value_size = HEADER.unpack_from(data, offset)
            start = offset + HEADER.size
            end = start + key_size + value_size
            if end > len(data) or zlib.crc32(data[start:end]) != crc:
                raise OSError(f"{FLOOR_FILE}: a bad record at {offset}")
            index[data[start : start + key_size].decode()] = (start + key_size, value_size)
            offset = end
        return index

    async def delete(self, key: str) -> None:
        raise NotImplementedError("the asyncio floor measures creates only")

    def ops(self) -> AsyncOps:
        return AsyncOps(self.create, self.read, self.delete)

    async def close(self) -> None:
        self.closing = True
        self.wake.set()
        await self.writer
        self._write()  # anything queued after the writer's last pass
        os.close(self.fd)

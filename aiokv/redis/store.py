"""``AsyncRedisStore``: the aiokv contract on Redis or a Redis Cluster.

Each operation is one Redis command (or one Lua script, which Redis runs whole, alone):

=================  ==========================================================================
``create``         ``SET name value NX [PX ms]``
``read``           ``GET``; ``read_many`` ``MGET`` (per slot on a cluster)
``delete``         ``DEL``; ``delete_many`` one ``DEL`` of every key
``exists``         ``EXISTS``
``touch``          a script: ``PEXPIRE``, or ``PERSIST`` for no TTL, if the key exists
``create_many``    a script that checks that no key exists, then ``SET``\\ s them all
``keys``/``items`` ``SCAN MATCH`` on the store's escaped prefix (on every master of a cluster),
                   duplicates filtered; ``items`` reads each page with ``MGET``
=================  ==========================================================================

Keys, values, TTLs and batches are checked by the same code as the local store's, before
anything is sent, so they fail the same way with the same messages. Redis expires keys itself
(to the millisecond), so the store has no clock. Values are stored as their compact JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Final, TypeVar

from redis.exceptions import RedisClusterException, RedisError

from aiokv import errors
from aiokv._core import jsonl as _jsonl
from aiokv._core.checks import (
    batch_chunks,
    check_path,
    check_prefix,
    checked_keys,
    encoded,
    refuse_repeats,
)
from aiokv._core.codec import check_key, check_ttl, decode_json, encode_value
from aiokv._core.jsonl import PLAIN_FILES
from aiokv._core.stats import StoreStats
from aiokv._core.verify_report import VerifyReport
from aiokv.errors import (
    CorruptionError,
    InvalidKeyError,
    NotSupportedError,
)
from aiokv.redis.connect import (
    DEFAULT_PREFIX,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    DEFAULT_URL,
    Client,
    Options,
    backoff_s,
    check_options,
    make_client,
)
from aiokv.redis.durable import check_durability, refuse_server, waiting_for_disk
from aiokv.redis.failures import never_ran, translate
from aiokv.redis.lease import (
    LEASE_MS,
    LEASE_SUFFIX,
    RELEASE,
    RENEW,
    held_elsewhere,
    keep_renewing,
    lost,
    new_token,
)
from aiokv.redis.naming import by_slot, glob_escape, own_key
from aiokv.redis.scripts import CREATE_MANY, TOUCH

T = TypeVar("T")

_REDIS_ERRORS: Final = (RedisError, RedisClusterException)
SCAN_COUNT: Final = 1000
"""Names a ``SCAN`` step asks each node for: a page of ``keys``, and one ``MGET`` of ``items``."""
READ_MANY_PER_CALL: Final = 1024
"""Keys of a ``read_many`` fetched by one ``MGET``."""
_NEW, _OPEN, _CLOSING, _CLOSED = "new", "open", "closing", "closed"
_LOST: Final = "lost"
"""The state of an exclusive store whose lease another store took."""
_GONE: Final = -2
"""What ``PTTL`` answers for a key that is not there."""


class AsyncRedisStore:
    """A key-value store on a Redis server or a Redis Cluster, for asyncio code::

        async with AsyncRedisStore("redis://localhost:6379/0", prefix="app:") as store:
            await store.create("user:1", {"name": "Ada"}, ttl=3600)

    The API and errors of :class:`aiokv.AsyncDataStore`; what does not carry over to Redis
    (``backup``, ``verify``, ``max_size``, a lock on the store) is said in the README.

    :param url: ``redis://``, ``rediss://`` (TLS) or ``unix://``; ``redis+cluster://`` or
        ``rediss+cluster://`` for a Redis Cluster (any of its nodes).
    :param prefix: put before every key in Redis; stores with different prefixes share a
        server without seeing each other's keys. On a cluster, a prefix holding a hash tag
        (``{app}:``) puts the whole store in one slot, so that every batch is atomic.
    :param cluster: whether the server is a cluster; ``None``: as the URL's scheme says.
    :param timeout: seconds a connection or a reply may take before it counts as failed.
    :param retries: how many times a failed connection is retried (with exponential
        backoff from 50 ms to 1 s) before the call raises :class:`StoreUnavailableError`.
    :param exclusive: take a lease on the store (its prefix on this server) while it is open,
        so that a second store opened with ``exclusive=True`` fails with
        :class:`StoreLockedError` (see :mod:`aiokv.redis.lease`); stores opened without it
        are not kept out, as Redis serves every client.
    :param durability: ``"flush"`` (the default): a write returns once Redis has it, and
        reaches its disk as the server's ``appendfsync`` says; ``"fsync"``: once Redis says
        it is in its append-only file on disk (``WAITAOF``: Redis 7.2 or Valkey, with
        ``appendonly yes``; not on a cluster). See :mod:`aiokv.redis.durable`.
    :raises InvalidOptionError: an argument is out of range or of the wrong type.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = DEFAULT_PREFIX,
        cluster: bool | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
        exclusive: bool = False,
        durability: str = "flush",
    ) -> None:
        self._options: Options = check_options(url, cluster, prefix, timeout, retries)
        if not isinstance(exclusive, bool):
            raise errors.not_a_bool("exclusive", exclusive)
        self._fsync = check_durability(durability, self._options.cluster)
        self._exclusive = exclusive
        self._lease_name = self._options.prefix + LEASE_SUFFIX
        self._lease_token = new_token()
        self._renewer: asyncio.Task[None] | None = None
        self._closing: asyncio.Future[None] | None = None
        self._prefix = self._options.prefix
        self._where = self._options.where
        self._state = _NEW
        self._clients: tuple[Client, Client] | None = None
        self._busy = 0  # calls under way, which close() lets finish
        self._idle: asyncio.Event | None = None

    def __repr__(self) -> str:
        kind = "cluster" if self._options.cluster else "server"
        return f"<AsyncRedisStore {kind} {self._where} prefix={self.prefix!r} {self._state}>"

    @property
    def prefix(self) -> str:
        """What every key of the store is stored under in Redis, before the key itself."""
        return self._prefix.decode("utf-8")

    # -- opening and closing --------------------------------------------------------------

    async def open(self) -> None:
        """Connect, and check that the server answers.

        :raises StoreUnavailableError: the server cannot be reached (after the retries).
        :raises StoreClosedError: this store object was already closed.
        """
        if self._state == _CLOSED:
            raise errors.reopened("AsyncRedisStore")
        if self._state != _NEW:
            raise errors.opened_twice(self._state)
        client = make_client(self._options, retry=True)
        # A cluster's client never retries a command sent to a node named outright (see
        # _write), so one client serves both, and shares what it learns of the slots.
        once = client if self._options.cluster else make_client(self._options, retry=False)
        clients = (client, once)
        try:
            await _call("open", None, self._where, clients[0].ping)
            if self._fsync:
                await self._check_server(clients[0])
            if self._exclusive:
                await self._take_lease(clients[1])
        except BaseException:
            await _close_clients(clients)
            raise
        self._clients = clients
        self._idle = asyncio.Event()
        self._state = _OPEN
        if self._exclusive:
            self._renewer = asyncio.ensure_future(keep_renewing(self._renew, self._lose))

    async def _check_server(self, client: Client) -> None:
        server = await _call("open", None, self._where, client.info, "server")
        persistence = await _call("open", None, self._where, client.info, "persistence")
        refuse_server(server, persistence, self._where)

    async def _take_lease(self, client: Client) -> None:
        name, token = self._lease_name, self._lease_token
        if not await _call(
            "open", None, self._where, client.set, name, token, None, LEASE_MS, True
        ):
            raise held_elsewhere(self._where, self.prefix)

    async def _renew(self) -> int:
        client = self._client()
        name, token = self._lease_name, self._lease_token
        return await self._run(
            "renewal of the lease", None, client.eval, RENEW, 1, name, token, LEASE_MS
        )

    def _lose(self) -> None:
        if self._state == _OPEN:
            self._state = _LOST

    async def close(self) -> None:
        """Let the calls under way finish (each bounded by the timeout and retries), then
        close the connections. Safe to call more than once, from several tasks at once: each
        returns once the store is closed; a close that is cancelled still completes. Returns
        promptly, without raising, when the server is gone."""
        if self._state == _NEW:
            self._state = _CLOSED
        if self._state == _CLOSED:
            return
        if self._closing is None:
            self._state = _CLOSING
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        assert self._idle is not None
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.wait([self._renewer])
        if self._busy:
            await self._idle.wait()
        clients, self._clients = self._clients, None
        self._state = _CLOSED
        if clients is not None:
            if self._exclusive:
                await self._release_lease(clients[1])
            await _close_clients(clients)

    async def _release_lease(self, client: Client) -> None:
        # Best effort, and bounded by one timeout (a dead server must not hold close() up):
        # a lease not given back ends by itself within LEASE_MS.
        release = client.eval(RELEASE, 1, self._lease_name, self._lease_token)
        with contextlib.suppress(*_REDIS_ERRORS, asyncio.TimeoutError):
            await asyncio.wait_for(release, self._options.timeout_s)

    async def __aenter__(self) -> AsyncRedisStore:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _client(self, index: int = 0) -> Client:
        if self._state != _OPEN:
            if self._state == _LOST:
                raise lost(self._where, self.prefix)
            raise errors.not_open(self._state)
        assert self._clients is not None
        return self._clients[index]

    async def _run(
        self, what: str, key: str | None, call: Callable[..., Awaitable[T]], *args: Any
    ) -> T:
        """``await call(*args)`` for the operation ``what`` (of ``key``), counted as under
        way, its redis-py errors translated. (:func:`_call` written out: a coroutine frame
        less on every read.)"""
        self._busy += 1
        try:
            return await call(*args)
        except _REDIS_ERRORS as exc:
            raise translate(exc, what, key, self._where) from exc
        finally:
            self._done()

    async def _run_once(
        self, what: str, key: str | None, call: Callable[..., Awaitable[T]], *args: Any
    ) -> T:
        """As :meth:`_run`, for a write that must not run twice: retried here only while
        it surely never reached Redis; a lost reply is an unknown outcome."""
        self._busy += 1
        try:
            for attempt in range(self._options.retries + 1):
                try:
                    return await call(*args)
                except _REDIS_ERRORS as exc:
                    if not never_ran(exc) or attempt == self._options.retries:
                        raise translate(exc, what, key, self._where, once=True) from exc
                await asyncio.sleep(backoff_s(attempt))
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            self._done()

    def _done(self) -> None:
        self._busy -= 1
        if not self._busy and self._state == _CLOSING:
            assert self._idle is not None
            self._idle.set()

    # -- one key ----------------------------------------------------------------------------

    async def create(self, key: str, value: dict[str, Any], ttl: int | None = None) -> None:
        """Store ``value`` under ``key``, which must not be live (``SET NX``).

        :raises KeyExistsError: ``key`` is live; the stored value is left as it was.
        :raises InvalidKeyError, InvalidValueError, ValueTooLargeError, InvalidTTLError: a bad
            argument; nothing is sent.
        :raises StoreFullError: Redis is out of memory; nothing is written.
        :raises StoreUnavailableError: Redis cannot be reached; if the request may have
            reached it, the message says the outcome is unknown.
        :raises StoreClosedError: the store is not open.
        """
        client = self._client(1)
        name = self._prefix + check_key(key)
        seconds = None if ttl is None else check_ttl(ttl)
        data, _encoding = encode_value(value)
        ttl_args = () if seconds is None else ("PX", seconds * 1000)
        send = self._write(client, name, once=True)
        if not await self._run_once("create", key, send, "SET", name, data, "NX", *ttl_args):
            raise errors.key_exists(key)

    def _write(self, client: Client, name: bytes, *, once: bool) -> Callable[..., Awaitable[Any]]:
        """``execute_command`` for a write of ``name`` (and keys in its slot): followed by
        ``WAITAOF`` with ``durability="fsync"``; ``once``, for a write that must not run twice
        (on the client that never retries one), on a cluster sent to the master of the slot
        named outright, which the cluster client never retries (it retries what it routes
        itself)."""
        if self._fsync:  # one server: see aiokv.redis.durable
            return waiting_for_disk(client, int(self._options.timeout_s * 1000), self._where)
        if not (once and self._options.cluster):
            return client.execute_command

        async def send(*args: Any) -> Any:
            node = client.get_node_from_key(name)  # type: ignore[union-attr, arg-type]
            return await client.execute_command(*args, target_nodes=node)

        return send

    async def read(self, key: str) -> dict[str, Any]:
        """A fresh copy of the value under ``key`` (``GET``).

        :raises KeyNotFoundError: ``key`` is missing, deleted or expired.
        :raises CorruptionError: what Redis holds there is not an aiokv value.
        """
        client = self._client()
        name = self._prefix + check_key(key)
        data = await self._run("read", key, client.get, name)
        if data is None:
            raise errors.key_not_found(key)
        return self._decode(key, data)

    def _decode(self, key: str, data: Any) -> dict[str, Any]:
        try:
            return decode_json(data)
        except ValueError as exc:
            raise CorruptionError(
                f"Redis at {self._where} holds no aiokv value under key "
                f"{errors.describe_key(key)} ({exc})"
            ) from None

    async def exists(self, key: str) -> bool:
        """Whether ``key`` is live (``EXISTS``)."""
        client = self._client()
        name = self._prefix + check_key(key)
        return bool(await self._run("exists", key, client.exists, name))

    async def delete(self, key: str) -> None:
        """Delete ``key`` (``DEL``).

        :raises KeyNotFoundError: ``key`` is missing, deleted or expired.
        """
        client = self._client()
        name = self._prefix + check_key(key)
        # Retried after a lost reply, as DEL is idempotent: a retry of a delete that was done
        # answers 0 and says "not found" of a key this very call deleted, which is the worse
        # of two evils than an unknown outcome for every lost reply; it is documented.
        if not await self._run("delete", key, self._write(client, name, once=False), "DEL", name):
            raise errors.key_not_found(key)

    async def touch(self, key: str, ttl: int | None) -> None:
        """Make ``key`` expire ``ttl`` seconds from now (``None``: never), keeping its value.

        :raises KeyNotFoundError: ``key`` is missing, deleted or expired.
        """
        client = self._client()
        name = self._prefix + check_key(key)
        seconds = None if ttl is None else check_ttl(ttl)
        px = 0 if seconds is None else seconds * 1000
        send = self._write(client, name, once=False)
        if not await self._run("touch", key, send, "EVAL", TOUCH, 1, name, px):
            raise errors.key_not_found(key)

    # -- many keys --------------------------------------------------------------------------

    async def read_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The values of the live keys among ``keys`` (``MGET``); absent keys are left out."""
        client = self._client()
        wanted = list(dict.fromkeys(checked_keys(keys, "read_many")))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), READ_MANY_PER_CALL):
            part = wanted[start : start + READ_MANY_PER_CALL]
            names = [self._prefix + key.encode("utf-8") for key in part]
            values = await self._run("read_many", None, self._mget(client), names)
            for key, data in zip(part, values, strict=True):
                if data is not None:
                    found[key] = self._decode(key, data)
        return found

    def _mget(self, client: Client) -> Callable[[list[bytes]], Awaitable[list[Any]]]:
        # A cluster's MGET must stay in one slot; its client splits it by slot instead.
        if self._options.cluster:
            return client.mget_nonatomic  # type: ignore[union-attr]
        return client.mget

    async def create_many(
        self,
        items: Mapping[str, dict[str, Any]] | Iterable[tuple[str, dict[str, Any]]],
        *,
        ttl: int | None = None,
        atomic: bool = True,
    ) -> None:
        """Store every ``(key, value)`` of ``items``, all or none: one script checks that no
        key is live, then writes them all. On a cluster the keys must share a slot (see the
        ``prefix``), unless ``atomic=False``: then each slot's keys are written as one unit
        of their own, and the keys already live (skipped) are named in a
        :class:`KeyExistsError` raised once the others are written.

        :raises KeyExistsError: some keys are live (the first ten named); nothing is written
            (with ``atomic=False``: only those keys were not written).
        :raises InvalidKeyError: a key is invalid or given twice; or, on a cluster, the keys
            span slots and ``atomic`` is true; nothing is written.
        :raises StoreFullError: Redis is out of memory; nothing is written.
        """
        client = self._client(1)
        seconds = None if ttl is None else check_ttl(ttl)
        names: list[bytes] = []
        all_keys: list[str] = []
        data: list[bytes] = []
        async for keys, values in batch_chunks(items, "create_many"):
            key_bytes = list(map(check_key, keys))
            data += encoded(keys, values)[0]
            all_keys += keys
            names += [self._prefix + raw for raw in key_bytes]
        refuse_repeats(all_keys, names)
        if not names:
            return
        px = 0 if seconds is None else seconds * 1000
        groups = self._groups(names, all_keys, atomic, "create_many")
        skipped: list[str] = []
        for indexes in groups:
            part = [(all_keys[i], names[i], data[i], px) for i in indexes]
            skipped += await self._create_group(client, "PX", part)
        if skipped:
            raise errors.keys_skipped(skipped) if len(groups) > 1 else errors.keys_exist(skipped)

    async def _create_group(
        self, client: Client, unit: str, part: list[tuple[str, bytes, bytes, int]]
    ) -> list[str]:
        """Write ``part``'s ``(key, name, value, expiry)`` in one script if none of its keys
        is live; the keys found live (then none was written). ``unit``: ``PX`` (expiries are
        TTLs in milliseconds) or ``PXAT`` (Unix times in milliseconds); expiry 0: none."""
        args: list[bytes | int | str] = [unit]
        for _key, _name, value, expiry in part:
            args += (value, expiry)
        names = [name for _key, name, _value, _expiry in part]
        send = self._write(client, names[0], once=True)  # one slot: see _groups
        live = await self._run_once(
            "create_many", None, send, "EVAL", CREATE_MANY, len(names), *names, *args
        )
        return [part[int(i) - 1][0] for i in live]

    def _groups(
        self, names: list[bytes], keys: list[str], atomic: bool, method: str
    ) -> list[list[int]]:
        """The indexes of ``names`` in the groups written as one unit each: all of them on
        one server; per slot on a cluster, which must be one slot if ``atomic``."""
        if not isinstance(atomic, bool):
            raise errors.not_a_bool("atomic", atomic)
        if not self._options.cluster:
            return [list(range(len(names)))]
        groups = by_slot(names)
        if atomic and len(groups) > 1:
            raise _cross_slot(method, keys[groups[0][0]], keys[groups[1][0]], self.prefix)
        return groups

    async def delete_many(self, keys: Iterable[str], *, atomic: bool = True) -> int:
        """Delete the live keys among ``keys`` with one ``DEL`` (all or none); on a cluster
        the keys must share a slot unless ``atomic=False`` (then one ``DEL`` per slot).

        :returns: how many keys were deleted.
        :raises InvalidKeyError: a key is invalid, or ``keys`` is one ``str``; or, on a
            cluster, the keys span slots and ``atomic`` is true; nothing is deleted.
        """
        client = self._client()
        wanted = list(dict.fromkeys(checked_keys(keys, "delete_many")))
        if not wanted:
            return 0
        names = [self._prefix + key.encode("utf-8") for key in wanted]
        deleted = 0
        for indexes in self._groups(names, wanted, atomic, "delete_many"):
            group = [names[i] for i in indexes]
            send = self._write(client, group[0], once=False)
            deleted += await self._run("delete_many", None, send, "DEL", *group)
        return deleted

    # -- iteration ----------------------------------------------------------------------------

    def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """The live keys that start with ``prefix``, by ``SCAN``: every key live from the
        start to the end is yielded, exactly once (Redis may return a key twice: those are
        filtered); keys created or deleted meanwhile may be or not."""
        self._client()
        return self._keys(self._pattern(prefix))

    async def _keys(self, pattern: bytes) -> AsyncIterator[str]:
        async for page in self._pages(pattern):
            for key, _name in page:
                yield key

    def items(self, prefix: str = "") -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """``(key, value)`` of the live keys that start with ``prefix``, as :meth:`keys`
        yields them; a key gone before its value was read is passed over."""
        client = self._client()
        return self._items(client, self._pattern(prefix))

    async def _items(self, client: Client, pattern: bytes) -> AsyncIterator[tuple[str, Any]]:
        async for page in self._pages(pattern):
            names = [name for _key, name in page]
            values = await self._run("items", None, self._mget(client), names)
            for (key, _name), data in zip(page, values, strict=True):
                if data is not None:
                    yield key, self._decode(key, data)

    def _pattern(self, prefix: str) -> bytes:
        """The ``SCAN MATCH`` glob of the store's keys that start with ``prefix``."""
        return glob_escape(self._prefix + check_prefix(prefix)) + b"*"

    async def _pages(self, pattern: bytes) -> AsyncIterator[list[tuple[str, bytes]]]:
        """The store's keys matching ``pattern``, a ``SCAN`` page at a time, each once."""
        client = self._client()
        seen: set[bytes] = set()
        for node in self._nodes(client):
            cursor = 0
            while True:
                self._client()  # closed meanwhile: StoreClosedError, as the contract says
                cursor, names = await self._run(
                    "keys", None, self._scan(client, node), cursor, pattern
                )
                page = []
                for name in names:
                    key = own_key(name, self._prefix)
                    if key is not None and name not in seen:
                        seen.add(name)
                        page.append((key, name))
                if page:
                    yield page
                if cursor == 0:
                    break

    def _nodes(self, client: Client) -> list[Any]:
        if self._options.cluster:
            return list(client.get_primaries())  # type: ignore[union-attr]
        return [None]

    def _scan(self, client: Client, node: Any) -> Callable[[int, bytes], Awaitable[Any]]:
        async def scan(cursor: int, pattern: bytes) -> Any:
            if node is None:
                return await client.scan(cursor, match=pattern, count=SCAN_COUNT)
            # The cluster client answers for each node it asked: {node name: cursor}.
            cursors: Any
            cursors, names = await client.scan(
                cursor, match=pattern, count=SCAN_COUNT, target_nodes=node
            )
            return next(iter(cursors.values())), names

        return scan

    # -- what Redis does itself -----------------------------------------------------------------

    async def stats(self) -> StoreStats:
        """The store's keys and the bytes of their values, counted by a ``SCAN`` of the store
        (so it takes time in proportion to its size); Redis has no dead bytes, files or
        compactions of the store's own to count."""
        client = self._client()
        live_keys = live_bytes = 0
        async for page in self._pages(self._pattern("")):
            names = [name for _key, name in page]
            sizes = await self._run("stats", None, _per_name(client, "STRLEN"), names)
            live_keys += sum(1 for size in sizes if size)
            live_bytes += sum(sizes)
        return StoreStats(live_keys, live_bytes, 0, 0, 0, None)

    async def compact(self) -> int:
        """Redis reclaims the memory of deleted keys itself: nothing to do, 0 bytes."""
        self._client()
        return 0

    async def backup(self, dest: str | os.PathLike[str]) -> None:
        """Not on Redis: its own persistence (RDB snapshots, the AOF) backs it up.

        :raises NotSupportedError: always (once the store is open).
        """
        self._client()
        raise NotSupportedError(
            "backup() is not available on Redis: use Redis's persistence instead (BGSAVE and "
            "its RDB file, or the append-only file), or export_jsonl() for a portable copy"
        )

    async def verify(self) -> VerifyReport:
        """Not on Redis, which checks its own files (``redis-check-rdb``, ``redis-check-aof``).

        :raises NotSupportedError: always (once the store is open).
        """
        self._client()
        raise NotSupportedError(
            "verify() is not available on Redis: check its files with redis-check-rdb or "
            "redis-check-aof"
        )

    async def export_jsonl(self, path: str | os.PathLike[str], *, prefix: str = "") -> int:
        """Write the live keys that start with ``prefix`` to ``path`` as JSON Lines, as
        :meth:`aiokv.AsyncDataStore.export_jsonl` does: never a half file there. Each value
        and its TTL are read together (a pipeline a ``SCAN`` page), deadlines as Unix seconds
        from this machine's clock.

        :returns: how many keys were written.
        :raises StorePathError: ``path`` exists and is not a regular file; nothing is written.
        :raises StoreFullError, StoreIOError: the file could not be written; nothing is left.
        """
        client = self._client()
        entries = self._entries(client, self._pattern(prefix))
        return await _jsonl.export(entries, check_path(path), PLAIN_FILES)

    async def _entries(
        self, client: Client, pattern: bytes
    ) -> AsyncIterator[tuple[str, dict[str, Any], float]]:
        async for page in self._pages(pattern):
            names = [name for _key, name in page]
            found = await self._run("export_jsonl", None, _per_name(client, "GET", "PTTL"), names)
            now = time.time()
            pairs = zip(found[::2], found[1::2], strict=True)
            for (key, _name), (data, pttl) in zip(page, pairs, strict=True):
                if data is not None and pttl != _GONE:  # gone since the SCAN: left out
                    deadline = now + pttl / 1000 if pttl >= 0 else 0.0
                    yield key, self._decode(key, data), deadline

    async def import_jsonl(
        self, path: str | os.PathLike[str], *, skip_existing: bool = False
    ) -> int:
        """Create the entries of a JSON Lines file as :meth:`export_jsonl` writes them, their
        deadlines kept, as :meth:`aiokv.AsyncDataStore.import_jsonl` does: the file checked
        whole first, then written in batches of 1000, each one script (one per slot on a
        cluster whose store is spread over slots).

        :returns: how many keys were created.
        :raises ImportFileError: a line is wrong (named); nothing is imported.
        :raises KeyExistsError: a key is live and ``skip_existing`` is false.
        :raises StoreFullError: Redis ran out of memory (the batches before it stay).
        """
        client = self._client(1)
        target = check_path(path)

        async def live_among(keys: list[str]) -> set[str]:
            names = [self._prefix + key.encode("utf-8") for key in keys]
            found = await self._run("import_jsonl", None, _per_name(client, "EXISTS"), names)
            return {key for key, there in zip(keys, found, strict=True) if there}

        async def write(entries: list[_jsonl.Entry]) -> int:
            part = [self._entry_to_write(entry) for entry in entries]
            names = [name for _key, name, _value, _expiry in part]
            written = 0
            for indexes in self._groups(names, [], False, "import_jsonl"):
                written += await self._import_group(
                    client, [part[i] for i in indexes], skip_existing
                )
            return written

        return await _jsonl.import_(
            target, time.time, live_among, write, skip_existing, PLAIN_FILES
        )

    def _entry_to_write(self, entry: _jsonl.Entry) -> tuple[str, bytes, bytes, int]:
        data, _encoding = encode_value(entry.value)
        # Rounded up: a key never expires before its deadline.
        expiry = math.ceil(entry.expires_at * 1000) if entry.expires_at else 0
        return entry.key, self._prefix + entry.key.encode("utf-8"), data, expiry

    async def _import_group(
        self, client: Client, part: list[tuple[str, bytes, bytes, int]], skip_existing: bool
    ) -> int:
        """Write ``part`` (one slot's entries) as one unit; with ``skip_existing``, without
        the keys created since the check (and again, until none is in the way)."""
        while part:
            live = await self._create_group(client, "PXAT", part)
            if not live:
                return len(part)
            if not skip_existing:
                raise errors.keys_exist(live)
            in_the_way = set(live)
            part = [entry for entry in part if entry[0] not in in_the_way]
        return 0


async def _call(
    what: str, key: str | None, where: str, call: Callable[..., Awaitable[T]], *args: Any
) -> T:
    try:
        return await call(*args)
    except _REDIS_ERRORS as exc:
        raise translate(exc, what, key, where) from exc


def _per_name(client: Client, *commands: str) -> Callable[[list[bytes]], Awaitable[list[Any]]]:
    """A call that sends each of ``commands`` for each name in one pipeline (not a
    transaction: a cluster's client splits it by node); the replies in that order."""

    async def send(names: list[bytes]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for name in names:
            for command in commands:
                pipe.execute_command(command, name)
        return list(await pipe.execute())

    return send


async def _close_clients(clients: tuple[Client, Client]) -> None:
    """Close both clients (one, if they are the same); a dead server is no reason to fail, or
    to wait."""
    for client in dict.fromkeys(clients):
        try:
            await client.aclose()
        except (*_REDIS_ERRORS, OSError):
            pass


def _cross_slot(method: str, first: str, second: str, prefix: str) -> InvalidKeyError:
    return InvalidKeyError(
        f"{method}() on a Redis Cluster is atomic only for keys in one hash slot, and keys "
        f"{errors.describe_key(first)} and {errors.describe_key(second)} are in different "
        f"slots; nothing was written. Give the store a prefix with a hash tag (such as "
        f"'{{{prefix.strip(':') or 'app'}}}:') to keep all its keys in one slot, or pass "
        "atomic=False to write each slot's keys on their own"
    )

"""``durability="fsync"`` on Redis: a write returns once Redis has it in its append-only
file on disk, as the local store's fsync mode does.

Redis says so with ``WAITAOF numlocal numreplicas timeout`` (Redis 7.2 and later, and Valkey),
which waits until the connection's writes so far are fsynced to the AOF. So the write and its
``WAITAOF`` are sent in one pipeline, on one connection. The server must keep an AOF
(``appendonly yes``); with ``appendfsync always`` each write is synced anyway, with
``everysec`` (Redis's default) ``WAITAOF`` waits for the next sync, up to a second. On a
cluster a pipeline is split by key among nodes, so a ``WAITAOF`` cannot follow its write
there: the option is refused on a cluster.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiokv.errors import InvalidOptionError, StoreIOError

DURABILITIES: Final = ("flush", "fsync")
WAITAOF_SINCE: Final = (7, 2)


def check_durability(durability: object, cluster: bool) -> bool:
    """Whether ``durability`` asks for fsync; refuse what Redis cannot give."""
    if durability not in DURABILITIES:
        raise InvalidOptionError(f"durability must be 'flush' or 'fsync', not {durability!r}")
    if durability == "fsync" and cluster:
        raise InvalidOptionError(
            "durability='fsync' is not available on a Redis Cluster (WAITAOF cannot follow a "
            "write there); set appendfsync always on its nodes instead"
        )
    return durability == "fsync"


def refuse_server(server: dict[str, Any], persistence: dict[str, Any], where: str) -> None:
    """Refuse a server (its ``INFO server`` and ``INFO persistence``) that cannot confirm a
    write on disk."""
    version = str(server.get("redis_version", "0"))
    parts = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if parts < WAITAOF_SINCE:
        raise InvalidOptionError(
            f"durability='fsync' needs WAITAOF (Redis 7.2 or later), and Redis at {where} is "
            f"{version}: use durability='flush', with appendfsync always on the server"
        )
    if str(persistence.get("aof_enabled", "0")) != "1":
        raise InvalidOptionError(
            f"durability='fsync' needs Redis at {where} to keep an append-only file "
            "(appendonly yes)"
        )


def waiting_for_disk(client: Any, timeout_ms: int, where: str) -> Callable[..., Awaitable[Any]]:
    """``execute_command`` whose write is followed, on its connection, by ``WAITAOF 1 0``;
    its reply once Redis says the write is on its disk."""

    async def send(*args: Any) -> Any:
        pipe = client.pipeline(transaction=False)
        pipe.execute_command(*args)
        pipe.execute_command("WAITAOF", 1, 0, timeout_ms)
        reply, (synced, _replicas) = await pipe.execute()
        if synced < 1:
            raise StoreIOError(
                f"Redis at {where} made the write but did not say within {timeout_ms} ms that "
                "it reached its disk (WAITAOF): it may be lost in a power cut"
            )
        return reply

    return send

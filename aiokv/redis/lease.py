"""``exclusive=True``: one holder of a Redis store at a time, by a lease renewed in the
background.

Redis serves many clients by design, so a store there is shared unless asked otherwise. An
exclusive store takes a lease when it opens: ``SET name token NX PX ms`` under a name no key of
the store can have (longer than a key), holding a random token of its own. A task of the store
renews it every third of its life (a script: ``PEXPIRE`` only if the token is still ours) and
the store gives it back at ``close()`` (deletes it, if still ours). A second store asking for
the lease meanwhile gets :class:`StoreLockedError`. A holder that dies without closing keeps
the store for at most one lease (:data:`LEASE_MS`). A holder whose lease was lost (it could
not renew it in time, and another took it) stops answering, with ``StoreLockedError``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Final

from aiokv.errors import DataStoreError, StoreLockedError

LEASE_MS: Final = 10_000
"""How long a lease lasts unless renewed: the longest a dead holder keeps others out."""
RENEW_EVERY_S: Final = LEASE_MS / 3 / 1000
LEASE_SUFFIX: Final = b"\x00aiokv: the exclusive lease of this store\x00"
"""Put after the store's prefix: longer than any key, so never one of the store's keys."""

RENEW: Final = """#!lua
-- KEYS[1]: the lease; ARGV[1]: our token; ARGV[2]: its life in milliseconds. 1 if renewed.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE: Final = """#!lua
-- KEYS[1]: the lease; ARGV[1]: our token. Deletes the lease if it is still ours.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def new_token() -> bytes:
    return secrets.token_hex(16).encode()


def held_elsewhere(where: str, prefix: str) -> StoreLockedError:
    return StoreLockedError(
        f"the Redis store with prefix {prefix!r} at {where} is held by another store opened "
        "with exclusive=True (its lease ends at most 10 s after that store stops)"
    )


def lost(where: str, prefix: str) -> StoreLockedError:
    return StoreLockedError(
        f"this store's exclusive lease on prefix {prefix!r} at {where} was lost (not renewed "
        "in time, and taken by another store): close it"
    )


async def keep_renewing(renew: Callable[[], Awaitable[int]], on_lost: Callable[[], None]) -> None:
    """Renew the lease every :data:`RENEW_EVERY_S` until cancelled; ``on_lost`` once a renewal
    finds it gone. A renewal that fails (the server unreachable) is tried again at the next
    turn: the lease outlives a few failed turns."""
    while True:
        await asyncio.sleep(RENEW_EVERY_S)
        try:
            renewed = await renew()
        except DataStoreError:  # the server unreachable for now: tried again next turn
            continue
        if not renewed:
            on_lost()
            return

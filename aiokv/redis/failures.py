"""What a Redis failure means to a caller of aiokv: each redis-py error mapped to one of ours.

One table, so that every operation says the same thing of the same failure. A write that is
not idempotent (``create``, ``create_many``, an import's batch) is never retried once it may
have been sent: its reply lost, Redis may or may not have done it, and a retry would answer
``KeyExistsError`` for the key it had just created itself. Such a failure says the outcome is
unknown; one met while connecting (nothing was sent) says nothing was written.
"""

from __future__ import annotations

from redis import exceptions as redis_errors

from aiokv.errors import (
    CorruptionError,
    DataStoreError,
    StoreFullError,
    StoreIOError,
    StoreUnavailableError,
    describe_key,
)

UNAVAILABLE = (
    redis_errors.ConnectionError,  # refused, reset, a node loading its data, a bad password
    redis_errors.TimeoutError,
    redis_errors.ClusterError,  # the cluster is down, or a master of a slot is
    redis_errors.TryAgainError,  # a slot being moved
    redis_errors.RedisClusterException,  # no node reachable, a slot not covered
)
"""The failures that say the server cannot answer now, not that the request was wrong."""


REFUSED = (
    redis_errors.BusyLoadingError,  # LOADING: a ConnectionError to redis-py, yet an answer
    redis_errors.ClusterDownError,  # CLUSTERDOWN, MASTERDOWN
    redis_errors.TryAgainError,  # TRYAGAIN
    redis_errors.ReadOnlyError,  # READONLY
)
"""Answers of Redis that refuse a command: it did not run."""


def never_ran(exc: BaseException) -> bool:
    """Whether ``exc`` says that the command surely did not run: Redis refused it, or it was
    raised while connecting, so the command never reached Redis.

    redis-py makes every connect failure a ``ConnectionError`` or ``TimeoutError`` whose text
    says "connecting to" (its ``_error_message``) or "Timeout connecting"; a failure on an
    open connection says "reading from", "writing to" or "Connection closed".
    """
    if isinstance(exc, REFUSED):
        return True
    text = str(exc)
    connecting = "connecting to" in text or "Timeout connecting" in text
    return isinstance(exc, UNAVAILABLE) and connecting


def translate(
    exc: Exception, operation: str, key: str | None, where: str, *, once: bool = False
) -> DataStoreError:
    """The aiokv error for the redis-py error ``exc`` met by ``operation`` (of ``key``, if it
    has one) on the server ``where``. The message is made here, only when it is needed.

    :param once: ``what`` is a write that is not retried, so a lost reply is an unknown outcome.
    """
    what = operation if key is None else f"{operation} of key {describe_key(key)}"
    if isinstance(exc, redis_errors.OutOfMemoryError):
        return StoreFullError(
            f"{what}: Redis at {where} is out of memory (its maxmemory, with the noeviction "
            "policy); nothing was written"
        )
    if isinstance(exc, redis_errors.ReadOnlyError):
        return StoreUnavailableError(
            f"{what}: Redis at {where} is a read-only replica now (a failover under way?); "
            "nothing was written"
        )
    if isinstance(exc, UNAVAILABLE):
        if once and not never_ran(exc):
            outcome = "the request may or may not have been carried out (its reply was lost)"
        else:
            outcome = "nothing was done"
        return StoreUnavailableError(f"{what}: Redis at {where} is unavailable ({exc}); {outcome}")
    if isinstance(exc, redis_errors.ResponseError) and str(exc).startswith("WRONGTYPE"):
        return CorruptionError(
            f"{what}: Redis at {where} holds something else than an aiokv value there ({exc})"
        )
    return StoreIOError(f"{what}: Redis at {where} answered an error: {exc}")

"""The options of a Redis store and the redis-py clients made from them.

On one server, two clients share the options: one retries a command whose connection failed
(with exponential backoff, ``retries`` times) and serves every idempotent call; the other
never retries inside redis-py and serves the writes that must not run twice (see
:mod:`aiokv.redis.failures`), which the store retries itself only while they surely did not
run. On a cluster one client serves both, as its client never retries a command sent to a
node named outright: one view of the slots, refreshed by whichever call meets a failover.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import redis.asyncio as redis_asyncio
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff

from aiokv.errors import InvalidOptionError

Client = redis_asyncio.Redis | RedisCluster

DEFAULT_URL: Final = "redis://localhost:6379/0"
DEFAULT_PREFIX: Final = "aiokv:"
DEFAULT_TIMEOUT_S: Final = 5.0
DEFAULT_RETRIES: Final = 3
BACKOFF_BASE_S: Final = 0.05
BACKOFF_CAP_S: Final = 1.0
_SCHEMES: Final = {
    "redis": ("redis", False),
    "rediss": ("rediss", False),
    "unix": ("unix", False),
    "redis+cluster": ("redis", True),
    "rediss+cluster": ("rediss", True),
}


@dataclass(frozen=True)
class Options:
    """A Redis store's checked options."""

    url: str  # as redis-py reads it: the ``+cluster`` of the scheme taken off
    cluster: bool
    prefix: bytes
    timeout_s: float
    retries: int

    @property
    def where(self) -> str:
        """The server, for messages: the URL without its password."""
        parts = urlsplit(self.url)
        host = parts.hostname or parts.path
        return f"{host}:{parts.port}" if parts.port else host


def check_options(
    url: object, cluster: object, prefix: object, timeout: object, retries: object
) -> Options:
    """Check the arguments of a Redis store, in the order of its signature."""
    if not isinstance(url, str):
        raise InvalidOptionError(f"url must be a str, not {type(url).__name__}")
    scheme, _, rest = url.partition("://")
    if scheme not in _SCHEMES or not rest:
        raise InvalidOptionError(
            f"url must start with one of {', '.join(s + '://' for s in _SCHEMES)}: {url!r}"
        )
    plain_scheme, cluster_scheme = _SCHEMES[scheme]
    if cluster is not None and not isinstance(cluster, bool):
        raise InvalidOptionError(f"cluster must be None or a bool, not {type(cluster).__name__}")
    use_cluster = cluster_scheme if cluster is None else cluster
    if use_cluster and plain_scheme == "unix":
        raise InvalidOptionError("a Redis Cluster is reached over TCP, not a unix socket")
    if not isinstance(prefix, str):
        raise InvalidOptionError(f"prefix must be a str, not {type(prefix).__name__}")
    try:
        prefix_bytes = prefix.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidOptionError(f"prefix is not encodable as UTF-8: {prefix!r}") from None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise InvalidOptionError(f"timeout must be a number of seconds, not {timeout!r}")
    if not (0 < timeout <= 3600 and math.isfinite(timeout)):
        raise InvalidOptionError(f"timeout must be from 0 to 3600 seconds (not 0), got {timeout}")
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 100:
        raise InvalidOptionError(f"retries must be an int from 0 to 100, got {retries!r}")
    return Options(f"{plain_scheme}://{rest}", use_cluster, prefix_bytes, float(timeout), retries)


def make_client(options: Options, *, retry: bool) -> Client:
    """A client of ``options``' server; with ``retry``, one that retries a failed connection."""
    policy = (
        Retry(ExponentialBackoff(cap=BACKOFF_CAP_S, base=BACKOFF_BASE_S), options.retries)
        if retry
        else Retry(NoBackoff(), 0)
    )
    if options.cluster:
        return RedisCluster.from_url(
            options.url,
            retry=policy,
            socket_timeout=options.timeout_s,
            socket_connect_timeout=options.timeout_s,
        )
    return redis_asyncio.Redis.from_url(
        options.url,
        retry=policy,
        socket_timeout=options.timeout_s,
        socket_connect_timeout=options.timeout_s,
    )


def backoff_s(attempt: int) -> float:
    """The pause before the store's own retry number ``attempt`` (from 0) of a write that
    never reached Redis: the backoff redis-py uses for the others."""
    return float(min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))

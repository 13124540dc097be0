"""aiokv on Redis: :class:`AsyncRedisStore` and its blocking face :class:`RedisStore`.

The same API and errors as the local store, on a Redis server or a Redis Cluster, for an app
that has outgrown one machine. Needs the extra: ``pip install 'aiokv[redis]'`` (redis-py).
"""

from __future__ import annotations

try:
    import redis as _redis  # noqa: F401 - only to say plainly what is missing
except ImportError as exc:  # pragma: no cover - tested in a subprocess without redis-py
    raise ImportError(
        "aiokv.redis needs redis-py: install it with pip install 'aiokv[redis]'"
    ) from exc

from aiokv.redis.store import AsyncRedisStore
from aiokv.redis.sync import RedisStore

__all__ = ["AsyncRedisStore", "RedisStore"]

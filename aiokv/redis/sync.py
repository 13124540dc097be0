"""``RedisStore``: the blocking, thread-safe face of :class:`AsyncRedisStore`."""

from __future__ import annotations

from aiokv._core.blocking import BlockingStore, refuse_event_loop
from aiokv._core.verify_report import VerifyReport
from aiokv.redis.connect import DEFAULT_PREFIX, DEFAULT_RETRIES, DEFAULT_TIMEOUT_S, DEFAULT_URL
from aiokv.redis.store import AsyncRedisStore


class RedisStore(BlockingStore[AsyncRedisStore]):
    """A key-value store on Redis for blocking code: safe to share between threads.

    ::

        with RedisStore("redis://localhost:6379/0", prefix="app:") as store:
            store.create("user:1", {"name": "Ada"})

    Takes the arguments of :class:`AsyncRedisStore` and connects at once.

    :raises StoreUnavailableError: the server cannot be reached.
    :raises BlockingCallError: any method called from a running event loop.
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
        refuse_event_loop(self, "__init__")
        super().__init__(
            AsyncRedisStore(
                url,
                prefix=prefix,
                cluster=cluster,
                timeout=timeout,
                retries=retries,
                exclusive=exclusive,
                durability=durability,
            )
        )

    def _async_name(self) -> str:
        return "AsyncRedisStore"  # named before the store is made: __init__ refuses first

    def verify(self) -> VerifyReport:
        """Not on Redis; see :meth:`AsyncRedisStore.verify`."""
        return self._call("verify", self._store.verify)

    @property
    def prefix(self) -> str:
        """What every key of the store is stored under in Redis, before the key itself."""
        return self._store.prefix

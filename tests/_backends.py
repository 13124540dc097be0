"""The backends the contract tests run on: :class:`Backend` makes a test's stores."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiokv import AsyncDataStore, ManualClock
from aiokv._core.contract import AsyncStore

_numbers = itertools.count()


async def listed(iterator: AsyncIterator[Any]) -> list[Any]:
    """What an ``async for`` over ``iterator`` yields, in order."""
    return [item async for item in iterator]


class Backend:
    """Makes the stores of one test on one backend, and moves time on for them."""

    def __init__(self, name: str, url: str | None, tmp_path: Path, clock: ManualClock) -> None:
        self.name = name
        self.url = url
        self.tmp_path = tmp_path
        self.clock = clock
        self.test_number = next(_numbers)
        self.made = 0

    @property
    def is_redis(self) -> bool:
        return self.name != "local"

    def default_prefix(self) -> str:
        tag = f"t{self.test_number}-{self.made}"
        return f"{{{tag}}}:" if self.name == "cluster" else f"{tag}:"

    def make(self, prefix: str | None = None) -> AsyncStore:
        """A new store, not opened; on Redis under ``prefix`` (a fresh one by default)."""
        self.made += 1
        if self.url is None:
            return AsyncDataStore(
                self.tmp_path / f"store{self.made}", clock=self.clock, reaper_interval_s=0.01
            )
        from aiokv.redis import AsyncRedisStore

        chosen = self.default_prefix() if prefix is None else prefix
        return AsyncRedisStore(self.url, prefix=chosen, timeout=2.0, retries=2)

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass for the store: on the manual clock locally, for real on Redis
        (which keeps time itself), with a margin for its millisecond expiry."""
        if self.url is None:
            self.clock.advance(seconds)
        else:
            await asyncio.sleep(seconds + 0.05)

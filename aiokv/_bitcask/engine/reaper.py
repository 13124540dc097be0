"""The reaper: drops expired keys from the index in the background.

Reads and deletes check expiry themselves, so correctness never waits on the reaper; it only
frees the index memory (and the delete room) of keys nobody reads again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import anyio
import anyio.lowlevel

from aiokv._bitcask.index.index import Index
from aiokv._core.clock import Clock

REAP_BATCH: Final = 10_000
"""Keys dropped before yielding to other tasks, so a mass expiry never stalls the loop."""


async def run_reaper(
    index: Index, clock: Clock, interval_s: float, on_reaped: Callable[[], None]
) -> None:
    """Every ``interval_s`` seconds, drop every key whose deadline has passed, and call
    ``on_reaped`` if any was (their records are now dead). Runs until cancelled by the store's
    task group."""
    while True:
        await anyio.sleep(interval_s)
        reaped = 0
        while (dropped := index.drop_expired(clock.time(), REAP_BATCH)) == REAP_BATCH:
            reaped += dropped
            await anyio.lowlevel.checkpoint()
        if reaped + dropped:
            on_reaped()

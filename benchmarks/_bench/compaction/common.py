"""What the compaction measurements share: sizes, the values, the store's figures."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import aiokv
from _bench.machine import basic

MiB = 2**20
VALUE_BYTES = 1000
RECORD_HEADER_BYTES = 28  # a put record is this header, the key and the value
TMP_PREFIX = "aiokv-bench-"


def describe() -> dict[str, Any]:
    """The machine, and where the aiokv measured comes from."""
    return {**basic(), "aiokv_path": str(Path(aiokv.__file__).resolve().parent)}


def mib(n: float) -> str:
    return f"{n / MiB:,.1f} MiB"


def stats_dict(stats: aiokv.StoreStats) -> dict[str, Any]:
    return {
        "live_keys": stats.live_keys,
        "live_bytes": stats.live_bytes,
        "dead_bytes": stats.dead_bytes,
        "disk_bytes": stats.disk_bytes,
        "segment_count": stats.segment_count,
        "last_compaction": stats.last_compaction,
    }


def format_stats(stats: aiokv.StoreStats) -> str:
    return (
        f"live_keys {stats.live_keys:,}, live_bytes {stats.live_bytes:,}, dead_bytes "
        f"{stats.dead_bytes:,}, disk_bytes {stats.disk_bytes:,}, segments {stats.segment_count}"
    )


async def gather_ops(coroutines: list[Coroutine[Any, Any, Any]]) -> list[Any]:
    return await asyncio.gather(*coroutines, return_exceptions=True)

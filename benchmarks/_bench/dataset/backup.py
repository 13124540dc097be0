"""``backup`` of a large store to a directory on the same file system."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import tempfile
from pathlib import Path

import aiokv
from _bench.core import TMP_PREFIX
from _bench.dataset.common import (
    Part,
    Settings,
    check_store,
    fill,
    max_size_for,
    sample_step,
    timed,
)
from _bench.values import LONG_KEY_CHARS, make_long_keys, sized_value_of

SECONDS, RATE = "backup, same file system", "backup, store bytes per second"
GB = 10**9


def run_backup(settings: Settings) -> Part:
    value_bytes = settings.value_bytes
    n = max(1, math.ceil(settings.backup_bytes / value_bytes))
    part = Part(
        "backup",
        f"backup: a store of {n:,} keys of {LONG_KEY_CHARS} characters and {value_bytes:,}-byte "
        f"values ({n * value_bytes / GB:.2f} GB of values), backed up to a new directory beside "
        "it on the same file system",
        settings.repeat,
    )
    part.add(SECONDS, "s", n)
    part.add(RATE, "GB/s", n)
    part.notes += [
        "sealed segments and their hints are hard-linked, the active segment is copied, and "
        "every file is synced; GB/s is the backup's bytes (10^9) over its seconds, what a user "
        "sees, not a copying speed. A backup to another file system copies every segment and "
        "is not measured here",
        "each backup is opened as a store afterwards (untimed): every key must be live and a "
        "sample of about 1,000 values equal to those written",
    ]
    print(part.title, flush=True)
    keys = make_long_keys(n)
    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=settings.dir) as tmp:
        asyncio.run(backup_runs(part, settings, Path(tmp), keys))
    return part


async def backup_runs(part: Part, settings: Settings, tmp: Path, keys: list[str]) -> None:
    n, value_bytes = len(keys), settings.value_bytes
    value_of = sized_value_of(value_bytes)
    max_size = max_size_for(n, value_bytes)
    async with aiokv.AsyncDataStore(tmp / "store", max_size=max_size) as store:
        await fill(store, keys, value_of, settings.batch)
        split = ""
        for run in range(settings.repeat):
            dest = tmp / f"backup-{run}"
            seconds, _ = await timed(store.backup(dest))
            linked, copied = link_split(dest)
            async with aiokv.AsyncDataStore(dest, max_size=max_size) as copy:
                await check_store(copy, keys, value_of, "backup", every=sample_step(n))
            part.record(run, SECONDS, seconds)
            part.record(run, RATE, (linked[1] + copied[1]) / GB / seconds)
            split = (
                f"the last backup linked {linked[0]} files ({linked[1] / GB:.3f} GB) and "
                f"copied {copied[0]} ({copied[1] / GB:.3f} GB)"
            )
            shutil.rmtree(dest)
        part.notes.append(split)


def link_split(dest: Path) -> tuple[tuple[int, int], tuple[int, int]]:
    """The files of a backup, and their bytes, that are hard links (a link count above one)
    and that are copies."""
    linked, copied = [0, 0], [0, 0]
    with os.scandir(dest) as entries:
        for entry in entries:
            info = entry.stat(follow_symlinks=False)
            counts = linked if info.st_nlink > 1 else copied
            counts[0] += 1
            counts[1] += info.st_size
    return (linked[0], linked[1]), (copied[0], copied[1])

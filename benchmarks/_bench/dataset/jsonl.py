"""``export_jsonl`` and ``import_jsonl``: megabytes of JSON Lines file per second."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiokv
from _bench.core import TMP_PREFIX
from _bench.dataset.common import (
    CheckFailedError,
    Part,
    Settings,
    check_store,
    fill,
    max_size_for,
    sample_step,
    timed,
)
from _bench.values import (
    LONG_KEY_CHARS,
    ValueOf,
    make_long_keys,
    nested_bytes_bound,
    nested_value_of,
    sized_value_of,
)

MB = 10**6


def run_jsonl(settings: Settings) -> Part:
    n, value_bytes = settings.jsonl_n, settings.value_bytes
    part = Part(
        "jsonl",
        f"jsonl: export_jsonl of a store of {n:,} keys of {LONG_KEY_CHARS} characters and "
        f"{value_bytes:,}-byte values to a file, then import_jsonl of that file into a fresh "
        "store; MB (10^6 bytes) of the file per second",
        settings.repeat,
    )
    shapes: dict[str, ValueOf] = {"flat": sized_value_of(value_bytes)}
    if nested_bytes_bound(n) <= value_bytes:
        shapes["nested"] = nested_value_of(value_bytes)
    else:
        part.notes.append(
            f"nested values skipped: they can take {nested_bytes_bound(n):,} bytes, over "
            f"{value_bytes:,}"
        )
    for shape in shapes:
        part.add(f"export_jsonl [{shape}]", "MB/s", n)
        part.add(f"import_jsonl [{shape}]", "MB/s", n)
    part.notes += [
        "export includes its fsync and rename, import its check of the whole file first",
        "the export must count every key, the import as many as the export, and the imported "
        "store hold every key with a sample of about 1,000 values equal to those written",
    ]
    print(part.title, flush=True)
    keys = make_long_keys(n)
    with tempfile.TemporaryDirectory(prefix=TMP_PREFIX, dir=settings.dir) as tmp:
        asyncio.run(jsonl_runs(part, settings, Path(tmp), keys, shapes))
    return part


@contextlib.asynccontextmanager
async def opened(path: Path, n: int, value_bytes: int) -> AsyncIterator[aiokv.AsyncDataStore]:
    async with aiokv.AsyncDataStore(path, max_size=max_size_for(n, value_bytes)) as store:
        yield store


async def jsonl_runs(
    part: Part, settings: Settings, tmp: Path, keys: Sequence[str], shapes: dict[str, ValueOf]
) -> None:
    n, value_bytes = len(keys), settings.value_bytes
    async with contextlib.AsyncExitStack() as stack:
        sources = {}
        for shape, value_of in shapes.items():
            store = await stack.enter_async_context(opened(tmp / shape, n, value_bytes))
            await fill(store, keys, value_of, settings.batch)
            sources[shape] = store
        for run in range(settings.repeat):
            for shape, value_of in shapes.items():
                file = tmp / f"{shape}.jsonl"
                seconds, count = await timed(sources[shape].export_jsonl(file))
                if count != n:
                    raise CheckFailedError(f"export_jsonl [{shape}]: {count:,} keys of {n:,}")
                size = file.stat().st_size
                part.record(run, f"export_jsonl [{shape}]", size / MB / seconds)
                target = tmp / f"{shape}-imported"
                async with opened(target, n, value_bytes) as store:
                    seconds, count = await timed(store.import_jsonl(file))
                    if count != n:
                        raise CheckFailedError(f"import_jsonl [{shape}]: {count:,} keys of {n:,}")
                    await check_store(
                        store, keys, value_of, f"import_jsonl [{shape}]", every=sample_step(n)
                    )
                part.record(run, f"import_jsonl [{shape}]", size / MB / seconds)
                shutil.rmtree(target)
                file.unlink()

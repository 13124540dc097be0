"""The store on the event loop the tests were asked to run on (asyncio, or uvloop in CI's
extra run of the API tests), and on uvloop explicitly, as an application would start it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from aiokv import AsyncDataStore, KeyExistsError, KeyNotFoundError

uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed here")


async def test_the_tests_run_on_the_loop_they_were_asked_for() -> None:
    """Guards CI's uvloop run: were the policy not applied, it would test asyncio twice."""
    loop = asyncio.get_running_loop()
    if os.environ.get("AIOKV_TEST_LOOP", "asyncio") == "uvloop":
        assert isinstance(loop, uvloop.Loop)
    else:
        assert not isinstance(loop, uvloop.Loop)


def test_a_store_opened_under_uvloop_run(tmp_path: Path) -> None:
    async def main() -> list[object]:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        seen: list[object] = []
        async with AsyncDataStore(tmp_path / "store") as store:
            await asyncio.gather(*(store.create(f"k{i}", {"i": i}) for i in range(500)))
            with pytest.raises(KeyExistsError):
                await store.create("k1", {})
            seen.append(await store.read("k499"))
            for i in range(0, 500, 2):
                await store.delete(f"k{i}")
            with pytest.raises(KeyNotFoundError):
                await store.read("k0")
            seen.append((await store.stats()).live_keys)
        async with AsyncDataStore(tmp_path / "store") as store:
            seen.append((await store.stats()).live_keys)
        return seen

    assert uvloop.run(main()) == [{"i": 499}, 250, 250]

"""Fixtures shared by the test modules."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aiokv import AsyncDataStore, ManualClock

# Small values of max_size make the cap easy to reach; tests that need the default pass it.
SMALL_MAX_SIZE = 2**20

# Subprocess helpers run the interpreter that runs the tests.
PYTHON = sys.executable


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_700_000_000.0)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
async def store(store_path: Path, clock: ManualClock) -> AsyncIterator[AsyncDataStore]:
    async with AsyncDataStore(store_path, clock=clock, reaper_interval_s=0.01) as opened:
        yield opened

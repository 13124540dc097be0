"""Fixtures shared by the test modules, and the markers set from the test's folder.

The test files are sorted into folders by what they test: ``unit/``, ``api/``, ``crash/``,
``fuzz/``, the faces outside the library, ``cli/`` and ``server/``, and ``contract/``, run
on every backend (local, Redis, Redis Cluster). Each test gets the
marker of its folder, so ``pytest -m crash`` runs the crash tests; ``slow`` and ``purepy`` are
set in the modules (see pyproject.toml for all markers).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import _soak
import pytest

import aiokv
from aiokv import AsyncDataStore, ManualClock

# Small values of max_size make the cap easy to reach; tests that need the default pass it.
SMALL_MAX_SIZE = 2**20

# Subprocess helpers run the interpreter that runs the tests.
PYTHON = sys.executable

TESTS = Path(__file__).parent
FOLDERS = ("unit", "api", "crash", "fuzz", "cli", "server", "contract")
"""The folders of test files; each is also the name of the marker its tests get."""


LOOP = os.environ.get("AIOKV_TEST_LOOP", "asyncio")
"""The event loop the async tests run on: ``asyncio``, or ``uvloop`` (CI runs the API tests on
both; set AIOKV_TEST_LOOP=uvloop to choose it)."""


if LOOP == "uvloop":

    @pytest.hookimpl(optionalhook=True)
    def pytest_asyncio_loop_factories(
        config: pytest.Config, item: pytest.Item
    ) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
        """pytest-asyncio (1.x) makes each test's loop with this; with an older one the
        uvloop run fails its guard test in tests/api/test_event_loops.py."""
        import uvloop

        return {"uvloop": uvloop.new_event_loop}

elif LOOP != "asyncio":
    raise pytest.UsageError(f"AIOKV_TEST_LOOP must be asyncio or uvloop, not {LOOP!r}")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        action="store",
        type=int,
        default=1,
        metavar="FACTOR",
        help="run the crash, fault and fuzz batteries FACTOR times longer (default 1: CI size)",
    )


def pytest_configure(config: pytest.Config) -> None:
    factor = config.getoption("--soak")
    if not isinstance(factor, int) or factor < 1:
        raise pytest.UsageError(f"--soak must be at least 1, got {factor!r}")
    _soak.FACTOR = factor
    # CI runs the tests against an installed wheel too: the package must be that one, not the
    # source folder of the checkout the tests come from.
    installed_in = os.environ.get("AIOKV_TEST_INSTALLED_IN")
    package = Path(aiokv.__file__).resolve().parent
    if installed_in and not package.is_relative_to(Path(installed_in).resolve()):
        raise pytest.UsageError(f"testing the aiokv in {package}, not the one in {installed_in}")


def pytest_report_header(config: pytest.Config) -> str:
    engine = "in use" if aiokv.accelerated else "not in use (pure Python)"
    return f"aiokv {aiokv.__version__} from {Path(aiokv.__file__).parent}; C extensions {engine}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            folder = item.path.relative_to(TESTS).parts[0]
        except ValueError:
            continue  # not below tests/
        if folder not in FOLDERS:
            raise pytest.UsageError(
                f"{item.path}: a test file belongs in one of the folders {', '.join(FOLDERS)} "
                "of tests/ (or in a new folder added to FOLDERS in tests/conftest.py and to "
                "the markers in pyproject.toml)"
            )
        item.add_marker(folder)


@pytest.fixture
def soak(request: pytest.FixtureRequest) -> int:
    """How many times the CI-sized rounds, trials or examples a battery test should run."""
    return _soak.FACTOR


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

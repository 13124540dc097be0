"""The examples run as they are, and the quickstart leaves the default store as it found it.

Each runs as a subprocess with the user data directory moved into ``tmp_path`` (platformdirs
reads ``XDG_DATA_HOME`` on Linux), so the default store they open is a throwaway one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import aiokv

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the default store is moved by XDG_DATA_HOME"
)


def run_example(name: str, data_home: Path) -> str:
    env = {**os.environ, "XDG_DATA_HOME": str(data_home)}
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=data_home,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout


def test_the_quickstart_deletes_every_key_it_creates(tmp_path: Path) -> None:
    first = run_example("quickstart.py", tmp_path)
    assert f"accelerated: {aiokv.accelerated}" in first
    assert "left over" not in run_example("quickstart.py", tmp_path)  # nothing was left
    with aiokv.DataStore(tmp_path / "aiokv" / "default") as store, store.keys() as keys:
        assert list(keys) == []


@pytest.mark.parametrize("name", ["async_app.py", "threaded.py"])
def test_the_other_examples_run(tmp_path: Path, name: str) -> None:
    run_example(name, tmp_path)

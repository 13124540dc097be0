"""The ``aiokv`` fixture: the command run on a store in ``tmp_path`` (see ``_cli``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _cli import Aiokv, Ran, run


@pytest.fixture
def aiokv(store_path: Path) -> Aiokv:
    """``aiokv --path <store_path> *args``."""

    def run_on_store(*args: str | os.PathLike[str], stdin: str | bytes = b"") -> Ran:
        return run("--path", store_path, *args, stdin=stdin)

    return run_on_store

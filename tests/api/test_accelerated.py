"""``aiokv.accelerated`` says whether the C parts run, and a store opened without them warns.

Each case runs in a fresh interpreter, started in an empty directory (so ``import aiokv`` finds
the package these tests run against, never a source folder by accident): the parts are chosen
once, at import, and the warning is given once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _internals import CKeyDir, c_check_key, crecord

import aiokv

EXTENSIONS = (
    "aiokv._bitcask.index._ckeydir",
    "aiokv._bitcask.format._crecord",
    "aiokv._core._ccodec",
)

BUILT = CKeyDir is not None and crecord is not None and c_check_key is not None

# Opens an AsyncDataStore twice and a DataStore once, recording every warning (the "always"
# filter: only aiokv's own once-per-process rule may hold a repeat back), and prints what
# it saw as JSON. argv[1] names an extension to make unimportable, or "".
SCRIPT = """
import asyncio, importlib.abc, json, sys, warnings

class Unbuilt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == sys.argv[1]:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Unbuilt())
import aiokv

async def open_twice():
    for n in range(2):
        async with aiokv.AsyncDataStore(f"{sys.argv[2]}/a{n}"):
            pass

with warnings.catch_warnings(record=True) as seen:
    warnings.simplefilter("always")
    asyncio.run(open_twice())
    with aiokv.DataStore(f"{sys.argv[2]}/s"):
        pass
print(json.dumps({
    "accelerated": aiokv.accelerated,
    "warnings": [[w.category.__name__, str(w.message)] for w in seen],
    "file": aiokv.__file__,
}))
"""


def run(tmp_path: Path, block: str = "", pure: bool = False) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "AIOKV_PURE_PYTHON"}
    if pure:
        env["AIOKV_PURE_PYTHON"] = "1"
    script = tmp_path / "probe.py"
    script.write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
    out = subprocess.run(
        [sys.executable, str(script), block, str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_accelerated_is_public() -> None:
    assert "accelerated" in aiokv.__all__
    assert isinstance(aiokv.accelerated, bool)


def test_accelerated_says_whether_the_c_parts_are_in_use() -> None:
    assert aiokv.accelerated is (BUILT and not os.environ.get("AIOKV_PURE_PYTHON"))


@pytest.mark.skipif(not BUILT, reason="the C extensions were not built here")
def test_with_every_c_part_a_store_opens_without_a_warning(tmp_path: Path) -> None:
    seen = run(tmp_path)
    assert seen["accelerated"] is True
    assert seen["warnings"] == []


def test_aiokv_pure_python_chooses_the_python_parts_without_a_warning(tmp_path: Path) -> None:
    seen = run(tmp_path, pure=True)
    assert seen["accelerated"] is False
    assert seen["warnings"] == []


@pytest.mark.parametrize("missing", EXTENSIONS)
def test_a_missing_c_part_is_said_once_when_a_store_opens(tmp_path: Path, missing: str) -> None:
    seen = run(tmp_path, block=missing)
    assert seen["accelerated"] is False
    warnings = seen["warnings"]
    assert isinstance(warnings, list)
    assert len(warnings) == 1, warnings  # three stores opened, one warning
    category, message = warnings[0]
    assert category == "RuntimeWarning"
    assert missing in message
    assert str(Path(str(seen["file"])).resolve().parent) in message  # where it was looked for
    assert "AIOKV_PURE_PYTHON=1" in message
    others = [name for name in EXTENSIONS if name != missing]
    if BUILT:  # the others did load: only the missing one is named
        assert not any(name in message for name in others)

"""The decoders under coverage-guided fuzzing (atheris), where atheris installs.

atheris ships wheels for CPython 3.11 and later on x86-64 Linux; elsewhere this is skipped and
the Hypothesis fuzzing of ``test_fuzz_decoders.py`` stands alone.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("atheris") is None, reason="atheris is not installed here"
    ),
]

HARNESS = Path(__file__).with_name("fuzz_atheris.py")
# The harness imports test_fuzz_decoders from its own folder, and that imports the tests'
# helpers (_internals) from tests/, the folder of conftest.py.
TESTS = HARNESS.parent.parent
RUNS = 20_000  # CI size, times the soak factor
TIMEOUT_S = 600


def run_harness(
    *args: str | Path, cwd: Path, self_test: bool = False
) -> subprocess.CompletedProcess[str]:
    path = [str(HARNESS.parent), str(TESTS)]
    if os.environ.get("PYTHONPATH"):
        path.append(os.environ["PYTHONPATH"])  # the aiokv that these tests import
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    if self_test:
        env["AIOKV_FUZZ_SELF_TEST"] = "1"
    return subprocess.run(
        [sys.executable, str(HARNESS), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=cwd,
        env=env,
        check=False,
    )


def test_atheris_finds_no_input_that_breaks_a_decoder(tmp_path: Path, soak: int) -> None:
    """Guards every decoder of on-disk bytes against the inputs libFuzzer steers towards
    their untried branches: only sound parses or the documented exceptions."""
    corpus = tmp_path / "corpus"
    seeded = run_harness("--write-seeds", corpus, cwd=tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    assert len(list(corpus.iterdir())) >= 6
    runs = RUNS * soak
    done = run_harness(
        f"-runs={runs}",
        "-seed=1",
        "-max_len=4096",
        "-timeout=30",  # a single input taking this long is reported as a hang
        "-rss_limit_mb=2048",
        f"-artifact_prefix={tmp_path}/",
        corpus,
        cwd=tmp_path,
    )
    crashes = sorted(path.name for path in tmp_path.iterdir() if path.is_file())
    assert not crashes, (crashes, done.stdout[-4000:], done.stderr[-4000:])
    assert done.returncode == 0, (done.stdout[-4000:], done.stderr[-4000:])
    assert f"Done {runs} runs" in done.stderr, done.stderr[-2000:]
    print(f"\natheris: {done.stderr.strip().splitlines()[-1]}")


def test_a_failing_input_fails_the_fuzzing_run(tmp_path: Path) -> None:
    """Guards the check above: an exception escaping the harness is reported, with the
    input, and fails the run (here one planted for a segment file header)."""
    corpus = tmp_path / "corpus"
    assert run_harness("--write-seeds", corpus, cwd=tmp_path).returncode == 0
    done = run_harness(
        "-runs=100",
        "-seed=1",
        f"-artifact_prefix={tmp_path}/",
        corpus,
        cwd=tmp_path,
        self_test=True,
    )
    assert done.returncode != 0
    assert "a failure planted by AIOKV_FUZZ_SELF_TEST" in done.stdout + done.stderr
    assert any(path.name.startswith("crash-") for path in tmp_path.iterdir())

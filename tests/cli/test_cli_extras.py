"""The extras: the command without typer and rich, and ``serve`` (with and without its own)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _cli import Aiokv, Ran, no_traceback
from _proc import loopback_port

import aiokv as kv

pytestmark = pytest.mark.slow  # each test runs the command in fresh interpreters

BLOCKED = """
    import sys

    class Missing:
        '''Imports of the blocked packages fail as if they were not installed.'''

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {blocked!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, Missing())
    sys.argv = ["aiokv", *{args!r}]
    from aiokv.cli import main
    main()
"""


def run_without(blocked: set[str], *args: str) -> Ran:
    """``aiokv *args`` in an interpreter where the ``blocked`` packages cannot be imported."""
    script = textwrap.dedent(BLOCKED.format(blocked=sorted(blocked), args=list(args)))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    no_traceback(done.stderr)
    return Ran(done.returncode, done.stdout, done.stderr)


@pytest.mark.parametrize("blocked", [{"typer"}, {"rich"}])
def test_without_the_cli_extra_one_line_says_how_to_get_it(blocked: set[str]) -> None:
    ran = run_without(blocked, "keys")
    assert (ran.status, ran.stdout, ran.stderr) == (
        2,
        "",
        "aiokv: the command needs its extra: pip install 'aiokv[cli]'\n",
    )


def test_importing_the_cli_package_needs_neither_typer_nor_rich() -> None:
    script = "import sys, aiokv.cli; print(sorted({'typer', 'rich'} & set(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (0, "[]\n")


def test_serve_without_the_server_extra(store_path: Path) -> None:
    ran = run_without({"starlette", "uvicorn"}, "--path", str(store_path), "serve")
    assert (ran.status, ran.stdout, ran.stderr) == (
        2,
        "",
        "aiokv serve needs its extra: pip install 'aiokv[server]'\n",
    )


def test_serve_refuses_a_reachable_address_without_a_token(aiokv: Aiokv) -> None:
    pytest.importorskip("aiokv.server")
    refused = aiokv("serve", "--host", "0.0.0.0")
    assert (refused.status, refused.stdout) == (2, "")
    assert refused.lines == [
        "aiokv serve: refusing to serve on 0.0.0.0, which is not a loopback address, without "
        "a token: give one with --token or AIOKV_TOKEN"
    ]


def test_serve_on_a_locked_store_gives_status_3(aiokv: Aiokv, store_path: Path) -> None:
    pytest.importorskip("aiokv.server")
    with kv.DataStore(store_path):
        held = aiokv("serve", "--port", str(loopback_port()))
    assert (held.status, held.stdout) == (3, "")
    # The server's log comes first; the command's own line is the last.
    assert held.lines[-1] == (
        f"aiokv: {store_path} is already open (by this process or another); "
        "a store can be open once at a time"
    )

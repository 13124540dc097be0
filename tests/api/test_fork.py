"""A store object inherited across ``fork()`` refuses every call, saying why, and never hangs.

The child of a fork has a copy of the parent's store objects but not the parent's threads
(the store's loop thread, its writer): its writes would never be answered and its reads would
run on files only the parent writes. Run in a real child process of a real subprocess, so the
test's own process never forks with threads running.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")

SCRIPT = """
import os, sys, time, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads, on 3.12+
from aiokv import DataStore, StoreClosedError, StoreLockedError

path = sys.argv[1]
store = DataStore(path)
store.create("a", {"n": 1})


def attempt(name, call):
    started = time.monotonic()
    try:
        call()
    except StoreClosedError as exc:
        print(name, "refused", "fork" in str(exc), round(time.monotonic() - started, 1))
    else:
        print(name, "ran")


read_fd, write_fd = os.pipe()  # child -> parent: done with the inherited store
back_read, back_write = os.pipe()  # parent -> child: the parent has closed the store
pid = os.fork()
if pid == 0:
    os.close(read_fd)
    os.close(back_write)
    attempt("read", lambda: store.read("a"))
    attempt("create", lambda: store.create("b", {"n": 2}))
    attempt("delete", lambda: store.delete("a"))
    attempt("stats", store.stats)
    attempt("compact", store.compact)
    store.close()  # returns at once: nothing of the parent's is closed from here
    print("child closed", flush=True)
    os.write(write_fd, b"x")  # the parent may close now
    os.close(write_fd)
    os.read(back_read, 1)
    with DataStore(path) as own:  # the child's own store, once the parent let go
        print("child reopened", own.read("a"))
    sys.exit(0)  # a normal exit: finalisers and atexit run, and must not hang
os.close(write_fd)
os.close(back_read)
os.read(read_fd, 1)
print("parent reads", store.read("a"))
store.create("c", {"n": 3})
try:
    DataStore(path)
except StoreLockedError:
    print("parent still holds the lock")
store.close()
os.write(back_write, b"x")
_, status = os.waitpid(pid, 0)
print("child exit", os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_is_refused_and_can_open_its_own(tmp_path: Path) -> None:
    script = tmp_path / "fork.py"
    script.write_text(textwrap.dedent(SCRIPT), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "kv")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for name in ("read", "create", "delete", "stats", "compact"):
        assert f"{name} refused True 0.0" in lines, (name, lines)
    assert "child closed" in lines
    assert "parent reads {'n': 1}" in lines
    assert "parent still holds the lock" in lines
    assert "child reopened {'n': 1}" in lines
    assert "child exit 0" in lines

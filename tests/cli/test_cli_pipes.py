"""stdin and stdout: export and import through real pipes, a reader that goes away early,
Ctrl-C, and ``python -m aiokv``."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _cli import Aiokv, no_traceback, popen, run

import aiokv as kv

pytestmark = pytest.mark.slow  # each test runs the command in fresh interpreters

SECONDS = r"\d+\.\d\d s"


def fill(path: Path, count: int) -> dict[str, dict[str, int]]:
    values = {f"k{i}": {"i": i} for i in range(count)}
    with kv.DataStore(path) as store:
        store.create_many(values)
        store.create("short", {"ttl": 1}, ttl=3600)
    return values


def contents(path: Path) -> dict[str, dict[str, int]]:
    with kv.DataStore(path) as store:
        return dict(store.items())


def test_export_stdout_piped_into_import_stdin(store_path: Path, tmp_path: Path) -> None:
    values = fill(store_path, 300)
    other = tmp_path / "other"
    exporter = popen(
        ["--path", store_path, "export", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    importer = popen(
        ["--path", other, "import", "-"],
        stdin=exporter.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert exporter.stdout is not None
    exporter.stdout.close()  # the importer holds the only reading end now
    imported_out, imported_err = importer.communicate(timeout=60)
    exported_err = exporter.communicate(timeout=60)[1].decode()
    no_traceback(exported_err)
    no_traceback(imported_err.decode())
    assert (exporter.returncode, importer.returncode, imported_out) == (0, 0, b"")
    assert re.fullmatch(
        rf"aiokv: exported 301 keys, \d+\.\d KiB, to stdout in {SECONDS}", exported_err.strip()
    )
    assert re.fullmatch(
        rf"aiokv: imported 301 keys, \d+\.\d KiB, from stdin in {SECONDS}",
        imported_err.decode().strip(),
    )
    assert contents(other) == {**values, "short": {"ttl": 1}}
    deadlines = [
        json.loads(line)["expires_at"]
        for line in run("--path", other, "export", "-").stdout.splitlines()
    ]
    assert sum(deadline is not None for deadline in deadlines) == 1


def test_export_to_a_file_and_import_it(aiokv: Aiokv, store_path: Path, tmp_path: Path) -> None:
    values = fill(store_path, 50)
    dump = tmp_path / "dump.jsonl"
    exported = aiokv("export", dump, "--prefix", "k1")
    assert (exported.status, exported.stdout) == (0, "")
    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    assert {line["key"] for line in lines} == {key for key in values if key.startswith("k1")}
    imported = run("--path", tmp_path / "other", "import", dump)
    assert imported.status == 0
    assert re.fullmatch(
        rf"aiokv: imported 11 keys, \d+ B, from {dump} in {SECONDS}", imported.stderr.strip()
    )
    again = run("--path", tmp_path / "other", "import", dump)
    assert again.status == 1
    assert again.lines == [
        "aiokv: line 1: key 'k1' already exists (pass --skip-existing to leave it as it is); "
        "nothing was imported"
    ]
    skipped = run("--path", tmp_path / "other", "import", dump, "--skip-existing")
    assert skipped.status == 0
    assert skipped.stderr.startswith("aiokv: imported 0 keys")


def test_a_bad_import_file_imports_nothing(aiokv: Aiokv, store_path: Path) -> None:
    bad = '{"key": "a", "value": {}, "expires_at": null}\nnot json\n'
    refused = aiokv("import", "-", stdin=bad)
    assert refused.status == 1
    assert len(refused.lines) == 1
    assert refused.lines[0].startswith("aiokv: line 2: not JSON")
    assert aiokv("keys").stdout == "[]\n"


def test_a_reader_that_stops_early_ends_the_command_quietly(store_path: Path) -> None:
    fill(store_path, 20_000)  # far more than a pipe's buffer holds
    for mode in ("--human", "--json"):
        head = popen(
            ["--path", store_path, mode, "keys"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert head.stdout is not None
        assert head.stdout.read(5)
        head.stdout.close()
        stderr = head.communicate(timeout=60)[1].decode()
        assert (head.returncode, stderr) == (141, "")
    with kv.DataStore(store_path):
        pass  # and the store was closed


def test_ctrl_c_ends_with_status_130_quietly_and_closes_the_store(store_path: Path) -> None:
    fill(store_path, 20_000)
    listing = popen(
        ["--path", store_path, "--human", "keys"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert listing.stdout is not None
    # Once a line has come, the command is inside the store, blocked on the full pipe.
    assert listing.stdout.readline()
    listing.send_signal(signal.SIGINT)
    stderr = listing.communicate(timeout=60)[1].decode()
    assert (listing.returncode, stderr) == (130, "")
    with kv.DataStore(store_path) as store:
        assert store.stats().live_keys == 20_001


def test_python_dash_m_aiokv(store_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "aiokv", "--path", store_path, "exists", "k"],
        capture_output=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (1, b"", b"")

"""The command run in this process, for speed: typer's test runner, ``run()`` itself, and the
table of exit statuses."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import aiokv as kv
from aiokv import errors
from aiokv.cli import exits
from aiokv.cli.app import app
from aiokv.cli.run import run
from aiokv.cli.values import MAX_INPUT_BYTES

runner = CliRunner()


def test_runner_create_read_keys_stats(store_path: Path) -> None:
    on_store = ["--path", str(store_path)]
    created = runner.invoke(app, [*on_store, "create", "k", '{"a": [1, {"b": null}]}'])
    assert (created.exit_code, created.stdout) == (0, "")
    read = runner.invoke(app, [*on_store, "read", "k"])
    assert read.stdout == '{"a":[1,{"b":null}]}\n'
    pretty = runner.invoke(app, [*on_store, "--human", "read", "k"])
    assert json.loads(pretty.stdout) == {"a": [1, {"b": None}]}
    assert pretty.stdout.startswith('{\n  "a": [\n')
    listed = runner.invoke(app, [*on_store, "keys"])
    assert listed.stdout == '["k"]\n'
    stats = json.loads(runner.invoke(app, [*on_store, "stats"]).stdout)
    assert (stats["live_keys"], stats["segment_count"], stats["last_compaction"]) == (1, 1, None)
    table = runner.invoke(app, [*on_store, "--human", "stats"]).stdout
    assert "live keys        1" in table


def test_runner_passes_store_errors_on(store_path: Path) -> None:
    missing = runner.invoke(app, ["--path", str(store_path), "read", "nope"])
    assert isinstance(missing.exception, kv.KeyNotFoundError)


def test_run_reports_one_line_and_the_status(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--path", str(store_path), "read", "nope"]) == exits.FAILED
    assert capsys.readouterr() == ("", "aiokv: key 'nope' not found\n")
    assert run(["--path", str(store_path), "touch", "nope"]) == exits.USAGE
    assert capsys.readouterr().err == "aiokv: touch takes one of --ttl N and --persist\n"
    assert run(["--path", str(store_path), "exists", "nope"]) == exits.FAILED
    assert capsys.readouterr() == ("", "")


def test_stdin_longer_than_any_value_is_refused(
    store_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b" " * (MAX_INPUT_BYTES + 1)))
    monkeypatch.setattr("sys.stdin", stdin)
    assert run(["--path", str(store_path), "create", "k", "-"]) == exits.FAILED
    assert capsys.readouterr().err == (
        f"aiokv: stdin holds more than {MAX_INPUT_BYTES} bytes: too long for a value\n"
    )


EXPECTED = {
    "KeyNotFoundError": 1,
    "KeyExistsError": 1,
    "InvalidKeyError": 1,
    "InvalidValueError": 1,
    "ValueTooLargeError": 1,
    "InvalidTTLError": 1,
    "InvalidOptionError": 1,
    "ImportFileError": 1,
    "StorePathError": 1,
    "StoreLockedError": 3,
    "CorruptionError": 4,
    "StoreFullError": 5,
    "StoreIOError": 5,
    "StoreUnavailableError": 5,
    "NotSupportedError": 2,
    "DataStoreError": 5,
    "StoreClosedError": 70,
    "BlockingCallError": 70,
}


@pytest.mark.parametrize("name", errors.__all__)
def test_every_error_class_has_its_status(name: str) -> None:
    error = getattr(errors, name)("what went wrong")
    assert exits.exit_code_for(error) == EXPECTED[name]


def test_the_statuses_of_what_is_not_a_store_error() -> None:
    assert exits.exit_code_for(PermissionError(13, "Permission denied", "/x")) == 5
    assert exits.exit_code_for(exits.InputError("bad")) == 1
    assert exits.exit_code_for(exits.UsageProblem("bad")) == 2
    assert exits.exit_code_for(RuntimeError("bug")) == 70


def test_descriptions_are_one_line() -> None:
    assert exits.describe(PermissionError(13, "Permission denied", "/x")) == (
        "/x: Permission denied"
    )
    assert exits.describe(kv.StoreIOError("two\nlines")) == "two lines"
    assert exits.describe(RuntimeError("boom")) == (
        "internal error, please report it: RuntimeError: boom"
    )

"""The commands on single keys, and ``keys``, run as the installed command."""

from __future__ import annotations

import json
import re

import pytest
from _cli import Aiokv, Ran, run

pytestmark = pytest.mark.slow  # each test runs the command in fresh interpreters

SUMMARY = r"aiokv: {} in \d+\.\d\d s"


def test_create_then_read_prints_compact_json_in_a_pipe(aiokv: Aiokv) -> None:
    created = aiokv("create", "user:1", '{"name": "Ädä", "tags": [1, 2]}')
    assert (created.status, created.stdout, created.stderr) == (0, "", "")
    read = aiokv("read", "user:1")
    assert (read.status, read.stdout, read.stderr) == (0, '{"name":"Ädä","tags":[1,2]}\n', "")


def test_read_human_is_indented_json(aiokv: Aiokv) -> None:
    aiokv("create", "k", '{"a": {"b": 1}}')
    read = aiokv("--human", "read", "k")
    assert read.status == 0
    assert read.stdout == '{\n  "a": {\n    "b": 1\n  }\n}\n'
    assert json.loads(read.stdout) == {"a": {"b": 1}}


@pytest.mark.parametrize("value_argument", [[], ["-"]])
def test_create_reads_the_value_from_stdin(aiokv: Aiokv, value_argument: list[str]) -> None:
    created = aiokv("create", "k", *value_argument, stdin='{\n  "from": "stdin"\n}\n')
    assert (created.status, created.stderr) == (0, "")
    assert aiokv("read", "k").stdout == '{"from":"stdin"}\n'


def test_create_of_a_live_key_fails_with_status_1(aiokv: Aiokv) -> None:
    aiokv("create", "k", "{}")
    again = aiokv("create", "k", '{"x": 1}')
    assert (again.status, again.stdout, again.stderr) == (1, "", "aiokv: key 'k' already exists\n")
    assert aiokv("read", "k").stdout == "{}\n"


def test_read_of_a_missing_key_fails_with_status_1(aiokv: Aiokv) -> None:
    missing = aiokv("read", "nope")
    assert (missing.status, missing.stdout, missing.stderr) == (
        1,
        "",
        "aiokv: key 'nope' not found\n",
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "aiokv: the value is not JSON: Expecting value: line 1 column 1 (char 0)"),
        ("[1, 2]", "aiokv: value must be a dict (a JSON object), not list"),
    ],
)
def test_create_refuses_a_bad_value_with_status_1(aiokv: Aiokv, value: str, message: str) -> None:
    refused = aiokv("create", "k", value)
    assert (refused.status, refused.stdout, refused.lines) == (1, "", [message])
    assert aiokv("exists", "k").status == 1


def test_create_refuses_empty_stdin(aiokv: Aiokv) -> None:
    refused = aiokv("create", "k", "-", stdin=b"")
    assert refused.status == 1
    assert refused.lines == ["aiokv: stdin is not JSON: Expecting value: line 1 column 1 (char 0)"]


def test_bad_ttl_is_invalid_input(aiokv: Aiokv) -> None:
    refused = aiokv("create", "k", "{}", "--ttl", "0")
    assert (refused.status, refused.lines) == (
        1,
        ["aiokv: ttl must be from 1 to 2147483647 seconds, got 0"],
    )


def test_ttl_and_touch_set_and_clear_the_deadline(aiokv: Aiokv) -> None:
    assert aiokv("create", "k", "{}", "--ttl", "3600").status == 0
    deadline = json.loads(aiokv("export", "-").stdout)["expires_at"]
    assert isinstance(deadline, float)
    assert aiokv("touch", "k", "--persist").status == 0
    assert json.loads(aiokv("export", "-").stdout)["expires_at"] is None
    assert aiokv("touch", "k", "--ttl", "60").status == 0
    assert json.loads(aiokv("export", "-").stdout)["expires_at"] < deadline


@pytest.mark.parametrize("options", [[], ["--ttl", "5", "--persist"]])
def test_touch_takes_exactly_one_of_ttl_and_persist(aiokv: Aiokv, options: list[str]) -> None:
    refused = aiokv("touch", "k", *options)
    assert (refused.status, refused.lines) == (
        2,
        ["aiokv: touch takes one of --ttl N and --persist"],
    )


def test_exists_answers_with_its_status_alone(aiokv: Aiokv) -> None:
    aiokv("create", "here", "{}")
    assert aiokv("exists", "here") == Ran(0, "", "")
    assert aiokv("exists", "gone") == Ran(1, "", "")


def test_delete_then_delete_again(aiokv: Aiokv) -> None:
    aiokv("create", "k", "{}")
    assert aiokv("delete", "k").status == 0
    again = aiokv("delete", "k")
    assert (again.status, again.lines) == (1, ["aiokv: key 'k' not found"])


def test_keys_json_prefix_limit_and_human(aiokv: Aiokv) -> None:
    for key in ("user:1", "user:2", "team:1"):
        aiokv("create", key, "{}")
    listed = aiokv("keys")
    assert listed.status == 0
    assert sorted(json.loads(listed.stdout)) == ["team:1", "user:1", "user:2"]
    assert re.fullmatch(SUMMARY.format("3 keys"), listed.stderr.strip())
    users = aiokv("keys", "--prefix", "user:")
    assert sorted(json.loads(users.stdout)) == ["user:1", "user:2"]
    limited = aiokv("keys", "--limit", "1")
    assert len(json.loads(limited.stdout)) == 1
    assert re.fullmatch(SUMMARY.format("1 key"), limited.stderr.strip())
    human = aiokv("--human", "keys", "--prefix", "team")
    assert human.stdout == "team:1\n"


def test_keys_of_an_empty_store(aiokv: Aiokv) -> None:
    listed = aiokv("keys")
    assert (listed.status, listed.stdout) == (0, "[]\n")


def test_invalid_key_is_invalid_input(aiokv: Aiokv) -> None:
    refused = aiokv("read", "k" * 33)
    assert refused.status == 1
    assert refused.lines == [f"aiokv: key must be 1 to 32 characters, got 33: {'k' * 33!r}"]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["bogus"], "aiokv: No such command 'bogus'. (see 'aiokv --help')"),
        (["read"], "aiokv read: Missing argument 'key'. (see 'aiokv read --help')"),
        (["keys", "--limit", "x"], None),
    ],
)
def test_usage_errors_are_one_line_and_status_2(args: list[str], line: str | None) -> None:
    refused = run(*args)
    assert refused.status == 2
    assert len(refused.lines) == 1
    if line is not None:  # click's wording; the argument's case varies with typer's version
        assert [text.lower() for text in refused.lines] == [line.lower()]


def test_no_command_prints_the_help_and_status_2() -> None:
    ran = run()
    assert ran.status == 2
    assert "Usage: aiokv" in ran.stdout


def test_help_documents_the_exit_statuses() -> None:
    ran = run("--help")
    assert ran.status == 0
    text = " ".join(ran.stdout.split())
    for status in (
        "0 ok",
        "1 not found",
        "2 usage",
        "3 store locked",
        "4 damaged data",
        "5 store or disk full",
    ):
        assert status in text


def test_version() -> None:
    import aiokv

    ran = run("--version")
    assert (ran.status, ran.stdout, ran.stderr) == (0, f"aiokv {aiokv.__version__}\n", "")

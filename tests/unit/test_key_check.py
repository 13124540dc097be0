"""The check of a key: the C one accepts what the Python one accepts, and refuses with its error.

``codec.check_key`` is ``aiokv._core._ccodec.check_key`` where it was built and
``codec._check_key_py`` (its specification, and the one place its error messages are made)
where not. The C check decides only the keys it accepts; any other argument is handed to the
Python check, which raises. So for every argument the two give the same bytes, or the same
error with the same message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from _internals import c_check_key, codec
from hypothesis import given, settings
from hypothesis import strategies as st

from aiokv import InvalidKeyError

MAX = codec.MAX_KEY_LENGTH
needs_c = pytest.mark.skipif(c_check_key is None, reason="the C key check is not built")


class Text(str):
    """A str subclass whose own encode lies: the store takes the text it holds."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b"not the key"


def outcome(check: object, key: object) -> tuple[str, bytes | str]:
    """What ``check(key)`` gives: ``("ok", bytes)`` or ``(error type, message)``."""
    try:
        data = check(key)  # type: ignore[operator]
    except Exception as exc:  # the type is what is compared
        return type(exc).__name__, str(exc)
    assert type(data) is bytes
    return "ok", data


def assert_checks_agree(key: object) -> tuple[str, bytes | str]:
    want = outcome(codec._check_key_py, key)
    if c_check_key is not None and codec.check_key is c_check_key:  # not with AIOKV_PURE_PYTHON
        assert outcome(c_check_key, key) == want
    assert outcome(codec.check_key, key) == want
    return want


def test_the_c_check_is_built_and_used_where_it_can_be() -> None:
    if os.environ.get("AIOKV_PURE_PYTHON"):
        pytest.skip("AIOKV_PURE_PYTHON is set")
    if shutil.which("cc") is None:
        pytest.skip("no C compiler here, so the package installs without its C part")
    assert c_check_key is not None, "the C key check did not build: reinstall (pip install -e .)"
    assert codec.check_key is c_check_key


def test_aiokv_pure_python_picks_the_python_check() -> None:
    code = "from aiokv._core import codec; print(codec.check_key is codec._check_key_py)"
    env = {**os.environ, "AIOKV_PURE_PYTHON": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True"]


@pytest.mark.parametrize(
    ("key", "data"),
    [
        ("k", b"k"),
        ("x" * MAX, b"x" * MAX),
        ("é" * MAX, "é".encode() * MAX),  # characters are counted, not bytes
        ("\U0001f600" * MAX, "\U0001f600".encode() * MAX),
        ("a\x00b", b"a\x00b"),
        (Text("user:1"), b"user:1"),
    ],
)
def test_keys_in_range_give_their_utf8(key: str, data: bytes) -> None:
    assert assert_checks_agree(key) == ("ok", data)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "got 0"),
        ("x" * (MAX + 1), f"got {MAX + 1}"),
        ("é" * (MAX + 1), f"got {MAX + 1}"),
        ("a\ud800", "lone surrogate at 1"),
        ("\udfff" * MAX, "lone surrogate at 0"),
        (Text(""), "got 0"),
        (b"user:1", "not bytes"),
        (None, "not NoneType"),
        (42, "not int"),
        (["k"], "not list"),
    ],
)
def test_every_refusal_is_the_python_checks_error(key: object, message: str) -> None:
    kind, said = assert_checks_agree(key)
    assert kind == "InvalidKeyError"
    assert message in str(said)


def test_a_refusal_keeps_its_type_and_no_context() -> None:
    for check in {codec._check_key_py, codec.check_key}:
        with pytest.raises(InvalidKeyError) as caught:
            check("a\ud800")
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__


@needs_c
def test_the_c_check_takes_one_positional_argument() -> None:
    call: object = c_check_key
    with pytest.raises(TypeError):
        call()  # type: ignore[operator]
    with pytest.raises(TypeError):
        call("a", "b")  # type: ignore[operator]


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=MAX + 3), st.binary(max_size=4), st.integers()))
def test_any_argument_gives_what_the_python_check_gives(key: object) -> None:
    assert_checks_agree(key)

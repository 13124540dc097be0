"""``check_prefix``: a prefix is checked like a key, but may be empty; it matches by bytes."""

from __future__ import annotations

import pytest
from _internals import check_prefix
from hypothesis import given
from hypothesis import strategies as st

from aiokv import MAX_KEY_LENGTH, InvalidKeyError


@pytest.mark.parametrize("prefix", ["", "u", "user:", "é", "🙂", "x" * MAX_KEY_LENGTH])
def test_a_good_prefix_is_its_utf8(prefix: str) -> None:
    assert check_prefix(prefix) == prefix.encode()


def test_a_str_subclass_is_taken_for_its_text() -> None:
    class Name(str):
        def encode(self, *args: object, **kwargs: object) -> bytes:  # type: ignore[override]
            return b"something else"

    assert check_prefix(Name("ab")) == b"ab"


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        (None, "prefix must be a str, not NoneType"),
        (b"user", "prefix must be a str, not bytes"),
        (["u"], "prefix must be a str, not list"),
        ("x" * (MAX_KEY_LENGTH + 1), f"at most {MAX_KEY_LENGTH} characters, got 33"),
        ("ab\udc80", "lone surrogate at 2"),
    ],
)
def test_a_bad_prefix_is_refused(prefix: object, message: str) -> None:
    with pytest.raises(InvalidKeyError, match=message):
        check_prefix(prefix)


keys = st.text(min_size=1, max_size=MAX_KEY_LENGTH).filter(
    lambda text: not any(0xD800 <= ord(char) <= 0xDFFF for char in text)
)


@given(key=keys, prefix=keys | st.just(""))
def test_matching_by_bytes_is_matching_by_characters(key: str, prefix: str) -> None:
    assert key.encode().startswith(check_prefix(prefix)) == key.startswith(prefix)


@given(key=keys, cut=st.integers(min_value=0, max_value=MAX_KEY_LENGTH))
def test_every_prefix_of_a_key_matches_it(key: str, cut: int) -> None:
    assert key.encode().startswith(check_prefix(key[:cut]))

"""Argument checks at their boundaries, through the public API, and the error hierarchy."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from _fs import dir_bytes
from _values import nested_dicts, nested_lists

import aiokv
from aiokv import (
    MAX_KEY_LENGTH,
    MAX_TTL_S,
    MAX_VALUE_BYTES,
    MAX_VALUE_DEPTH,
    AsyncDataStore,
    InvalidKeyError,
    InvalidTTLError,
    InvalidValueError,
    KeyNotFoundError,
    ValueTooLargeError,
)


def json_size(value: object) -> int:
    """The size the store counts: compact, non-ASCII-escaping UTF-8 JSON."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def value_of_size(size: int, char: str = "x") -> dict[str, Any]:
    """A dict whose counted JSON size is exactly ``size`` bytes, built mostly from ``char``."""
    overhead = json_size({"v": ""})  # {"v":""}
    room = size - overhead
    width = len(char.encode("utf-8"))
    count, pad = divmod(room, width)
    value = {"v": char * count + "a" * pad}
    assert json_size(value) == size
    return value


# -- keys --------------------------------------------------------------------------------

VALID_KEYS = [
    pytest.param("k", id="1-char"),
    pytest.param("k" * MAX_KEY_LENGTH, id="32-chars"),
    pytest.param("😀" * MAX_KEY_LENGTH, id="32-emoji"),
    pytest.param("é" * MAX_KEY_LENGTH, id="32-two-byte-chars"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("\x00", id="only-nul"),
    pytest.param("a/b", id="slash"),
    pytest.param("/", id="only-slash"),
    pytest.param("..", id="dotdot"),
    pytest.param("../../etc/passwd", id="path-traversal"),
    pytest.param("line\nbreak", id="newline"),
    pytest.param("\r\n", id="crlf"),
    pytest.param("'\"`", id="quotes"),
    pytest.param(" ", id="space"),
    pytest.param("\\", id="backslash"),
    pytest.param("LOCK", id="lock-file-name"),
    pytest.param("00000001.data", id="segment-file-name"),
]


@pytest.mark.parametrize("key", VALID_KEYS)
async def test_valid_key_round_trips_and_survives_reopen(
    store_path: Path, clock: aiokv.ManualClock, key: str
) -> None:
    async with AsyncDataStore(store_path, clock=clock) as store:
        await store.create(key, {"key": key})
        assert await store.read(key) == {"key": key}
    async with AsyncDataStore(store_path, clock=clock) as store:
        assert await store.read(key) == {"key": key}
        await store.delete(key)
        with pytest.raises(KeyNotFoundError):
            await store.read(key)


async def test_similar_keys_are_distinct(store: AsyncDataStore) -> None:
    keys = ["a", "a\x00", "A", "a ", "é", "e\u0301", "😀", "😀😀"]
    for position, key in enumerate(keys):
        await store.create(key, {"n": position})
    for position, key in enumerate(keys):
        assert await store.read(key) == {"n": position}


INVALID_KEYS = [
    pytest.param("", InvalidKeyError, id="empty"),
    pytest.param("k" * (MAX_KEY_LENGTH + 1), InvalidKeyError, id="33-chars"),
    pytest.param("😀" * (MAX_KEY_LENGTH + 1), InvalidKeyError, id="33-emoji"),
    pytest.param("k" * 10_000, InvalidKeyError, id="10000-chars"),
    pytest.param("\ud800", InvalidKeyError, id="lone-high-surrogate"),
    pytest.param("ab\udfffcd", InvalidKeyError, id="lone-low-surrogate-inside"),
    pytest.param(b"key", InvalidKeyError, id="bytes"),
    pytest.param(1, InvalidKeyError, id="int"),
    pytest.param(None, InvalidKeyError, id="none"),
    pytest.param(("k",), InvalidKeyError, id="tuple"),
]


@pytest.mark.parametrize(("key", "error"), INVALID_KEYS)
async def test_invalid_key_refused_by_create(store: AsyncDataStore, key: Any, error: type) -> None:
    with pytest.raises(error) as info:
        await store.create(key, {"a": 1})
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, aiokv.DataStoreError)


@pytest.mark.parametrize(("key", "error"), INVALID_KEYS)
async def test_invalid_key_refused_by_read(store: AsyncDataStore, key: Any, error: type) -> None:
    with pytest.raises(error):
        await store.read(key)


@pytest.mark.parametrize(("key", "error"), INVALID_KEYS)
async def test_invalid_key_refused_by_delete(store: AsyncDataStore, key: Any, error: type) -> None:
    with pytest.raises(error):
        await store.delete(key)


async def test_key_length_counts_code_points_not_bytes(store: AsyncDataStore) -> None:
    # 32 four-byte characters are 128 UTF-8 bytes, and still a valid key.
    key = "😀" * MAX_KEY_LENGTH
    assert len(key.encode("utf-8")) == 4 * MAX_KEY_LENGTH
    await store.create(key, {"a": 1})
    assert await store.read(key) == {"a": 1}
    with pytest.raises(InvalidKeyError, match=r"got 33"):
        await store.create(key + "😀", {"a": 1})


async def test_too_long_key_message_names_limit_length_and_key(store: AsyncDataStore) -> None:
    with pytest.raises(InvalidKeyError, match=r"1 to 32 characters, got 33: 'k{33}'"):
        await store.create("k" * 33, {"a": 1})


async def test_long_key_is_shortened_in_the_message(store: AsyncDataStore) -> None:
    key = "start-" + "m" * 9_000 + "-end"
    with pytest.raises(InvalidKeyError, match=r"got 9010") as info:
        await store.create(key, {"a": 1})
    message = str(info.value)
    assert "'start-" in message
    assert "end'" in message
    assert "m" * 100 not in message
    assert len(message) < 200


async def test_empty_key_message_names_the_limit(store: AsyncDataStore) -> None:
    with pytest.raises(InvalidKeyError, match=r"1 to 32 characters, got 0: ''"):
        await store.read("")


@pytest.mark.parametrize(
    ("key", "type_name"), [(b"k", "bytes"), (7, "int"), (None, "NoneType"), (1.5, "float")]
)
async def test_non_str_key_message_names_the_type(
    store: AsyncDataStore, key: Any, type_name: str
) -> None:
    with pytest.raises(InvalidKeyError, match=rf"must be a str, not {type_name}$"):
        await store.create(key, {"a": 1})


async def test_surrogate_key_message_says_utf8(store: AsyncDataStore) -> None:
    with pytest.raises(InvalidKeyError, match=r"UTF-8.*surrogate"):
        await store.delete("x\ud800")


# -- values: size ------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["x", "é", "€", "😀"], ids=["ascii", "2-byte", "3-byte", "4-byte"])
async def test_value_of_exactly_max_bytes_is_accepted_and_read_back(
    store: AsyncDataStore, char: str
) -> None:
    value = value_of_size(MAX_VALUE_BYTES, char)
    await store.create("big", value)
    assert await store.read("big") == value


@pytest.mark.parametrize("char", ["x", "é", "€", "😀"], ids=["ascii", "2-byte", "3-byte", "4-byte"])
async def test_value_one_byte_over_max_is_too_large(store: AsyncDataStore, char: str) -> None:
    value = value_of_size(MAX_VALUE_BYTES + 1, char)
    with pytest.raises(ValueTooLargeError, match=r"16385 bytes.*limit is 16384") as info:
        await store.create("big", value)
    assert isinstance(info.value, InvalidValueError)
    assert isinstance(info.value, ValueError)
    with pytest.raises(KeyNotFoundError):
        await store.read("big")


async def test_size_counts_multibyte_chars_as_utf8_not_escapes(store: AsyncDataStore) -> None:
    # 4096 emoji are 16384 UTF-8 bytes but would be 49152 bytes as \ud83d\ude00 escapes.
    value = {"😀" * 2: "😀" * 4092}
    assert json_size(value) == 2 * 4 + 4092 * 4 + len('{"":""}')
    assert json_size(value) <= MAX_VALUE_BYTES
    await store.create("emoji", value)
    assert await store.read("emoji") == value


async def test_size_counts_json_escapes(store: AsyncDataStore) -> None:
    # A newline is one character but two bytes of JSON ("\n").
    newlines = "\n" * ((MAX_VALUE_BYTES - len('{"v":""}')) // 2)
    assert json_size({"v": newlines}) == MAX_VALUE_BYTES
    await store.create("escapes", {"v": newlines})
    assert await store.read("escapes") == {"v": newlines}
    assert json_size({"v": newlines + "a"}) == MAX_VALUE_BYTES + 1
    with pytest.raises(ValueTooLargeError):
        await store.create("escapes2", {"v": newlines + "a"})


async def test_huge_value_is_too_large(store: AsyncDataStore) -> None:
    with pytest.raises(ValueTooLargeError, match=r"10000008 bytes"):
        await store.create("huge", {"v": "x" * 10_000_000})


# -- values: types -----------------------------------------------------------------------


def _cycle() -> dict[str, Any]:
    value: dict[str, Any] = {"a": 1}
    value["self"] = value
    return value


def _list_cycle() -> dict[str, Any]:
    items: list[Any] = [1]
    items.append(items)
    return {"items": items}


BAD_VALUES = [
    pytest.param([1, 2], id="list"),
    pytest.param("text", id="str"),
    pytest.param('{"a": 1}', id="json-text"),
    pytest.param(1, id="int"),
    pytest.param(None, id="none"),
    pytest.param(b'{"a": 1}', id="bytes-top"),
    pytest.param((("a", 1),), id="tuple-top"),
    pytest.param({1: 2}, id="int-dict-key"),
    pytest.param({None: 1}, id="none-dict-key"),
    pytest.param({(1, 2): 3}, id="tuple-dict-key"),
    pytest.param({True: 1}, id="bool-dict-key"),
    pytest.param({1.5: 1}, id="float-dict-key"),
    pytest.param({"a": {2: "b"}}, id="nested-int-dict-key"),
    pytest.param({"t": (1, 2)}, id="tuple-value"),
    pytest.param({"t": [1, (2, 3)]}, id="nested-tuple"),
    pytest.param({"s": {1, 2}}, id="set"),
    pytest.param({"s": frozenset()}, id="frozenset"),
    pytest.param({"b": b"bytes"}, id="bytes"),
    pytest.param({"n": math.nan}, id="nan"),
    pytest.param({"n": math.inf}, id="inf"),
    pytest.param({"n": -math.inf}, id="minus-inf"),
    pytest.param({"n": [1.0, math.nan]}, id="nested-nan"),
    pytest.param({"o": object()}, id="object"),
    pytest.param(_cycle(), id="dict-cycle"),
    pytest.param(_list_cycle(), id="list-cycle"),
    pytest.param({"s": "bad \ud800 surrogate"}, id="surrogate-in-string"),
    pytest.param({"\udc00": 1}, id="surrogate-in-dict-key"),
    pytest.param({"a": ["\ud83d"]}, id="surrogate-in-list"),
]


@pytest.mark.parametrize("value", BAD_VALUES)
async def test_bad_value_is_refused(store: AsyncDataStore, value: Any) -> None:
    with pytest.raises(InvalidValueError) as info:
        await store.create("k", value)
    assert not isinstance(info.value, ValueTooLargeError)
    assert isinstance(info.value, ValueError)
    with pytest.raises(KeyNotFoundError):
        await store.read("k")


@pytest.mark.parametrize(
    ("value", "type_name"),
    [([1], "list"), ("x", "str"), (3, "int"), (None, "NoneType"), ((), "tuple")],
)
async def test_non_dict_value_message_names_the_type(
    store: AsyncDataStore, value: Any, type_name: str
) -> None:
    with pytest.raises(InvalidValueError, match=rf"must be a dict.*not {type_name}$"):
        await store.create("k", value)


async def test_good_value_types_are_accepted(store: AsyncDataStore) -> None:
    value = {
        "s": "x",
        "i": -(2**100),
        "f": 1.5e-300,
        "t": True,
        "fa": False,
        "n": None,
        "l": [1, [2, {"d": []}]],
        "e": {},
    }
    await store.create("k", value)
    assert await store.read("k") == value


# -- values: depth -----------------------------------------------------------------------


@pytest.mark.parametrize("build", [nested_dicts, nested_lists], ids=["dicts", "lists"])
async def test_nesting_at_max_depth_is_accepted(store: AsyncDataStore, build: Any) -> None:
    value = build(MAX_VALUE_DEPTH)
    await store.create("deep", value)
    assert await store.read("deep") == value


@pytest.mark.parametrize("build", [nested_dicts, nested_lists], ids=["dicts", "lists"])
@pytest.mark.parametrize("depth", [MAX_VALUE_DEPTH + 1, 1_000, 100_000])
async def test_nesting_beyond_max_depth_is_refused_without_recursion_error(
    store: AsyncDataStore, build: Any, depth: int
) -> None:
    value = build(depth)
    with pytest.raises(InvalidValueError, match=r"256") as info:
        await store.create("deep", value)
    assert not isinstance(info.value, RecursionError)
    with pytest.raises(KeyNotFoundError):
        await store.read("deep")


async def test_depth_limit_counts_levels_not_containers(store: AsyncDataStore) -> None:
    # Many containers side by side, each shallow: not deep at all.
    wide = {"items": [[{"a": [1]}] for _ in range(500)]}
    await store.create("wide", wide)
    assert await store.read("wide") == wide


async def test_brackets_inside_strings_do_not_count_as_depth(store: AsyncDataStore) -> None:
    value = {"s": "[" * 1_000 + "{" * 1_000}
    await store.create("brackets", value)
    assert await store.read("brackets") == value


# -- ttl ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ttl", [None, 1, 2, 3600, MAX_TTL_S])
async def test_valid_ttl_is_accepted(store: AsyncDataStore, ttl: int | None) -> None:
    await store.create("k", {"a": 1}, ttl=ttl)
    assert await store.read("k") == {"a": 1}


BAD_TTLS = [
    pytest.param(True, r"not bool", id="true"),
    pytest.param(False, r"not bool", id="false"),
    pytest.param(1.0, r"not float", id="float-1.0"),
    pytest.param(0.5, r"not float", id="float-0.5"),
    pytest.param("5", r"not str", id="str"),
    pytest.param(0, r"1 to 2147483647 seconds, got 0$", id="zero"),
    pytest.param(-1, r"1 to 2147483647 seconds, got -1$", id="negative"),
    pytest.param(MAX_TTL_S + 1, r"1 to 2147483647 seconds, got 2147483648$", id="2**31"),
    pytest.param(2**100, r"got 1267650600228229401496703205376$", id="huge"),
]


@pytest.mark.parametrize(("ttl", "message"), BAD_TTLS)
async def test_bad_ttl_is_refused(store: AsyncDataStore, ttl: Any, message: str) -> None:
    with pytest.raises(InvalidTTLError, match=message) as info:
        await store.create("k", {"a": 1}, ttl=ttl)
    assert isinstance(info.value, ValueError)
    with pytest.raises(KeyNotFoundError):
        await store.read("k")


# -- a refused create writes nothing -----------------------------------------------------

REFUSED_CREATES = [
    pytest.param("", {"a": 1}, None, id="bad-key"),
    pytest.param(b"k", {"a": 1}, None, id="bytes-key"),
    pytest.param("k", [1], None, id="list-value"),
    pytest.param("k", value_of_size(MAX_VALUE_BYTES + 1), None, id="too-large"),
    pytest.param("k", {"n": math.nan}, None, id="nan"),
    pytest.param("k", nested_dicts(MAX_VALUE_DEPTH + 1), None, id="too-deep"),
    pytest.param("k", {"a": 1}, 0, id="zero-ttl"),
    pytest.param("k", {"a": 1}, 1.5, id="float-ttl"),
]


@pytest.mark.parametrize(("key", "value", "ttl"), REFUSED_CREATES)
async def test_refused_create_writes_nothing(
    store: AsyncDataStore, store_path: Path, key: Any, value: Any, ttl: Any
) -> None:
    await store.create("before", {"a": 1})
    size_before = dir_bytes(store_path)
    with pytest.raises((InvalidKeyError, InvalidValueError, InvalidTTLError)):
        await store.create(key, value, ttl=ttl)
    assert dir_bytes(store_path) == size_before
    if isinstance(key, str) and key:
        with pytest.raises(KeyNotFoundError):
            await store.read(key)
    assert await store.read("before") == {"a": 1}


async def test_refused_create_leaves_nothing_after_reopen(
    store_path: Path, clock: aiokv.ManualClock
) -> None:
    async with AsyncDataStore(store_path, clock=clock) as store:
        for value in ([1], {"n": math.inf}, value_of_size(MAX_VALUE_BYTES + 1)):
            with pytest.raises(InvalidValueError):
                await store.create("k", value)
        with pytest.raises(InvalidTTLError):
            await store.create("k", {"a": 1}, ttl=-5)
    async with AsyncDataStore(store_path, clock=clock) as store:
        with pytest.raises(KeyNotFoundError):
            await store.read("k")
        assert "keys=0" in repr(store)


# -- messages of the other errors --------------------------------------------------------


async def test_key_exists_message_names_the_key(store: AsyncDataStore) -> None:
    await store.create("user:1", {"a": 1})
    with pytest.raises(aiokv.KeyExistsError, match=r"'user:1' already exists"):
        await store.create("user:1", {"a": 2})


async def test_key_not_found_message_names_the_key(store: AsyncDataStore) -> None:
    with pytest.raises(KeyNotFoundError, match=r"^key 'user:2' not found$"):
        await store.read("user:2")
    with pytest.raises(KeyNotFoundError, match=r"^key 'user:2' not found$"):
        await store.delete("user:2")


# -- the error hierarchy -----------------------------------------------------------------

ERRORS = [
    (aiokv.InvalidKeyError, [ValueError]),
    (aiokv.InvalidValueError, [ValueError]),
    (aiokv.ValueTooLargeError, [aiokv.InvalidValueError, ValueError]),
    (aiokv.InvalidTTLError, [ValueError]),
    (aiokv.InvalidOptionError, [ValueError]),
    (aiokv.ImportFileError, [ValueError]),
    (aiokv.KeyExistsError, []),
    (aiokv.KeyNotFoundError, [KeyError, LookupError]),
    (aiokv.StoreFullError, []),
    (aiokv.StoreLockedError, []),
    (aiokv.StoreClosedError, []),
    (aiokv.StorePathError, []),
    (aiokv.StoreIOError, []),
    (aiokv.CorruptionError, []),
    (aiokv.BlockingCallError, [RuntimeError]),
    (aiokv.StoreUnavailableError, []),
    (aiokv.NotSupportedError, [NotImplementedError, RuntimeError]),
]


@pytest.mark.parametrize(("error", "bases"), ERRORS, ids=[e.__name__ for e, _ in ERRORS])
def test_error_hierarchy(error: type[Exception], bases: list[type[Exception]]) -> None:
    assert issubclass(error, aiokv.DataStoreError)
    assert issubclass(error, Exception)
    for base in bases:
        assert issubclass(error, base)
    # Only the documented built-ins: e.g. KeyExistsError is not a KeyError or ValueError.
    for builtin in (ValueError, KeyError, RuntimeError, OSError):
        if builtin not in bases:
            assert not issubclass(error, builtin)
    exc = error("boom")
    assert isinstance(exc, aiokv.DataStoreError)


def test_every_exported_error_is_covered() -> None:
    exported = {
        getattr(aiokv, name)
        for name in aiokv.__all__
        if isinstance(getattr(aiokv, name), type) and issubclass(getattr(aiokv, name), Exception)
    }
    assert exported == {error for error, _ in ERRORS} | {aiokv.DataStoreError}


def test_errors_are_the_same_objects_in_aiokv_errors() -> None:
    from aiokv import errors

    for error, _ in ERRORS:
        assert getattr(errors, error.__name__) is error


def test_key_not_found_str_is_the_plain_message() -> None:
    error = KeyNotFoundError("key 'x' not found")
    assert str(error) == "key 'x' not found"
    assert KeyError("key 'x' not found").__str__() != str(error)  # KeyError would quote it
    assert str(KeyNotFoundError()) == ""


async def test_key_not_found_raised_by_store_has_plain_str(store: AsyncDataStore) -> None:
    with pytest.raises(KeyNotFoundError) as info:
        await store.read("nope")
    assert str(info.value) == "key 'nope' not found"
    assert isinstance(info.value, KeyError)

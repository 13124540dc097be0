"""The walk of a value before it is encoded: the C one gives what the Python one gives.

``encode_value`` bounds a value's JSON size, and finds nesting too deep and cycles, with the C
walk of ``aiokv._core._ccodec`` where it was built, and with the Python walk (its
specification) where not. For any value the two must agree: the same bound (past the size
limit any bound past it would do, but the two stop at the same points, so the same error
message comes from either), the same depth or cycle refusal, and the same kinds of objects
seen; and ``encode_plain``, the walk then orjson for a value that needs no read-back check,
the same JSON or the same walk's result.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from typing import Any

import pytest
from _internals import (
    MAX_VALUE_BYTES,
    _encode_plain_py,
    _least_json_size_py,
    c_encode_plain,
    c_least_json_size,
    codec,
    encode_value,
)
from _values import nested_dicts, nested_lists
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiokv import InvalidValueError, ValueTooLargeError

needs_c = pytest.mark.skipif(c_least_json_size is None, reason="the C walk is not built")


def assert_walks_agree(value: dict[Any, Any]) -> None:
    assert c_least_json_size(value) == _least_json_size_py(value)
    assert c_encode_plain(value) == _encode_plain_py(value)


# ---------------------------------------------------------------- the C walk is there


def test_the_c_walk_is_built_and_used_where_it_can_be() -> None:
    if os.environ.get("AIOKV_PURE_PYTHON"):
        pytest.skip("AIOKV_PURE_PYTHON is set")
    if shutil.which("cc") is None:
        pytest.skip("no C compiler here, so the package installs without its C part")
    assert c_least_json_size is not None, "the C walk did not build: reinstall (pip install -e .)"
    assert codec._least_json_size is c_least_json_size
    assert codec._encode_plain is c_encode_plain


def test_aiokv_pure_python_picks_the_python_walk() -> None:
    code = (
        "from aiokv._core import codec; "
        "print(codec._least_json_size is codec._least_json_size_py "
        "and codec._encode_plain is codec._encode_plain_py, "
        "codec.encode_value({'a': [1]})[0].decode())"
    )
    env = {**os.environ, "AIOKV_PURE_PYTHON": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", '{"a":[1]}']


# ---------------------------------------------------------------- values of every kind


class Text(str):
    pass


class Number(int):
    pass


class Mapping(dict[Any, Any]):
    pass


class Items(list[Any]):
    pass


class Pair(tuple[Any, ...]):
    pass


def _called(*args: Any) -> Any:
    raise AssertionError("the walk ran a method of the value")


class Liar(dict[Any, Any]):
    """A dict whose Python-level length and iteration lie: the walks read its storage."""

    __len__ = __iter__ = keys = values = items = _called


class LiarList(list[Any]):
    __len__ = __iter__ = __getitem__ = _called


class LiarTuple(tuple[Any, ...]):
    __len__ = __iter__ = __getitem__ = _called


class LiarText(str):
    __len__ = __iter__ = _called


class Impostor:
    """Claims to be a dict through ``__class__``, which ``isinstance`` believes."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return dict

    __len__ = __iter__ = _called


leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.builds(Text, st.text(max_size=4))
    | st.builds(Number, st.integers(-5, 5))
    | st.builds(LiarText, st.text(max_size=4))
    | st.sampled_from([b"bytes", frozenset(), {1, 2}, Impostor(), 1j])
    # strings long enough that a few of them straddle the size limit
    | st.sampled_from(["x" * 5_000, "é" * 3_000, "y" * (MAX_VALUE_BYTES - 20)])
)
keys = (
    st.text(max_size=4)
    | st.builds(Text, st.text(max_size=4))
    | st.builds(LiarText, st.text(max_size=3))
    | st.integers(-3, 3)
    | st.sampled_from([None, True, 1.5, (1, 2), b"k", "k" * 3_000])
)


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=4), children, max_size=4)
        | st.dictionaries(keys, children, max_size=3)
        | st.tuples(children)
        | st.builds(Mapping, st.dictionaries(st.text(max_size=3), children, max_size=3))
        | st.builds(Items, st.lists(children, max_size=3))
        | st.builds(Pair, st.lists(children, max_size=3))
        | st.builds(Liar, st.dictionaries(keys, children, max_size=3))
        | st.builds(LiarList, st.lists(children, max_size=3))
        | st.builds(LiarTuple, st.lists(children, max_size=3))
        # lists of 8 or more dicts: bounded all at once
        | st.lists(st.dictionaries(st.text(max_size=3), children, max_size=3), min_size=8)
        # the same object many times over (shared, not a cycle)
        | st.builds(lambda item, n: [item] * n, children, st.integers(8, 40))
    )


values = st.recursive(leaves, containers, max_leaves=30)


def _own_children(item: Any) -> list[Any]:
    """The items of a container, read from its storage (a liar's methods would raise)."""
    if issubclass(type(item), dict):
        return list(dict.values(item))
    if issubclass(type(item), list):
        return list.copy(item)
    return list(tuple.__iter__(item))


def _mutable_containers(value: Any) -> list[tuple[Any, list[Any]]]:
    """Every list and dict in ``value`` (walked once each) with its ancestors, outermost first."""
    found: list[tuple[Any, list[Any]]] = []
    seen: set[int] = set()
    stack: list[tuple[Any, list[Any]]] = [(value, [])]
    while stack:
        item, above = stack.pop()
        if id(item) in seen or not issubclass(type(item), (dict, list, tuple)):
            continue
        seen.add(id(item))
        if not issubclass(type(item), tuple):
            found.append((item, above))
        stack.extend((child, [*above, item]) for child in _own_children(item))
    return found


@st.composite
def walk_values(draw: st.DrawFn) -> dict[Any, Any]:
    """A dict of every kind of item; maybe with links added (a cycle when the link goes to an
    ancestor), maybe wrapped in lists or dicts to near the depth limit."""
    value: dict[Any, Any] = draw(
        st.dictionaries(keys, values, max_size=6)
        | st.builds(Mapping, st.dictionaries(st.text(max_size=3), values, max_size=3))
    )
    for _ in range(draw(st.integers(0, 2))):
        spots = _mutable_containers(value)
        holder, above = draw(st.sampled_from(spots))
        target = draw(st.sampled_from([*above, holder, *(spot for spot, _ in spots)]))
        if issubclass(type(holder), list):
            list.insert(holder, draw(st.integers(0, list.__len__(holder))), target)
        else:
            dict.__setitem__(holder, draw(st.text(max_size=2)), target)
    depth = draw(st.sampled_from([0, 0, 0, 100, 250, 253, 254, 255, 256, 300]))
    lists = draw(st.sampled_from([(True,), (False,), (True, False)]))
    for level in range(depth):
        value = {"l": [value]} if lists[level % len(lists)] else {"d": value}
    return value


@needs_c
@pytest.mark.slow
@settings(max_examples=1_500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(walk_values())
def test_the_c_walk_gives_what_the_python_walk_gives(value: dict[Any, Any]) -> None:
    assert_walks_agree(value)


@needs_c
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(walk_values())
def test_the_c_walk_gives_what_the_python_walk_gives_quick(value: dict[Any, Any]) -> None:
    """The property above, a few examples of it in the quick loop."""
    assert_walks_agree(value)


@needs_c
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.dictionaries(st.text(max_size=6), leaves | st.lists(leaves, max_size=30)),
        min_size=8,
        max_size=400,
    ),
    st.lists(st.integers() | st.floats() | st.booleans() | st.none(), max_size=2_000),
)
def test_the_walks_agree_on_records_and_long_arrays(
    records: list[dict[str, Any]], numbers: list[Any]
) -> None:
    """Guards the batch bound of a list of records, up to and past the size limit."""
    assert_walks_agree({"records": records, "numbers": numbers})


# ---------------------------------------------------------------- the bound is a lower bound

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=3)
)


def json_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(children, max_size=12)
        | st.dictionaries(st.text(max_size=3), children, max_size=6)
        | st.tuples(children, children)
        | st.lists(st.dictionaries(st.text(max_size=2), children, max_size=2), min_size=8)
        # the same object many times over: its JSON repeats it
        | st.builds(lambda item, n: [item] * n, children, st.integers(8, 200))
    )


@pytest.mark.slow
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(max_size=3), st.recursive(json_leaves, json_containers), max_size=4))
def test_the_bound_never_passes_the_size_of_the_json(value: dict[str, Any]) -> None:
    """Guards what the walk promises: at most the size of the value's compact JSON (any number
    over the limit only when the JSON is over it too), so no value within the limit is refused
    as too large. Many short lists and shared ones are where a bound over-counts."""
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    walks = [_least_json_size_py] + ([c_least_json_size] if c_least_json_size else [])
    for walk in walks:
        least, _kinds = walk(value)
        if least != -1:  # -1: nested too deep, refused whatever its size
            assert min(least, MAX_VALUE_BYTES + 1) <= size, (walk, least, size)


# ---------------------------------------------------------------- the order of the refusals


def _cycle_beside(other: Any, first: bool) -> dict[str, Any]:
    loop: list[Any] = [1]
    loop.append(loop)
    return {"a": other, "b": loop} if first else {"b": loop, "a": other}


def _records_with_self() -> dict[str, Any]:
    """A list of records, one of which holds itself: bounded at once, then found a cycle."""
    record: dict[str, Any] = {"pad": "x" * 9_000}
    record["self"] = record
    return {"items": [record] + [{"i": i} for i in range(9)]}


def _records_holding_their_list() -> dict[str, Any]:
    items: list[Any] = [{"i": i} for i in range(10)]
    items[3]["back"] = items
    return {"items": items}


@needs_c
@pytest.mark.parametrize(
    "value",
    [
        pytest.param(_cycle_beside("x" * MAX_VALUE_BYTES, True), id="cycle-and-long-string"),
        pytest.param(_cycle_beside(["x" * MAX_VALUE_BYTES], True), id="cycle-then-long-list"),
        pytest.param(_cycle_beside(["x" * MAX_VALUE_BYTES], False), id="long-list-then-cycle"),
        pytest.param(_cycle_beside(nested_lists(300), True), id="cycle-then-too-deep"),
        pytest.param(_cycle_beside(nested_lists(300), False), id="too-deep-then-cycle"),
        pytest.param(_records_with_self(), id="records-one-holding-itself"),
        pytest.param(_records_holding_their_list(), id="records-holding-their-list"),
        pytest.param({"l": [nested_dicts(255)] * 8}, id="records-at-depth"),
        pytest.param({"l": [nested_dicts(256)] * 8}, id="records-too-deep"),
        pytest.param({"l": [[nested_dicts(254)] * 8]}, id="records-one-deeper"),
        pytest.param(nested_lists(256), id="lists-256"),
        pytest.param(nested_lists(257), id="lists-257"),
        pytest.param(Mapping(a=nested_lists(256)), id="subclass-top-257"),
        pytest.param({"s": "x" * (MAX_VALUE_BYTES - 8)}, id="string-at-limit"),
        pytest.param({"s": "x" * (MAX_VALUE_BYTES - 7)}, id="string-over-limit"),
        pytest.param({"l": [0] * 8_188}, id="ints-at-limit"),
        pytest.param({"l": [0] * 8_189}, id="ints-over-limit"),
        pytest.param({"s": Text("x" * 20_000)}, id="str-subclass-flat"),
        pytest.param({"s": Text("x" * 20_000), "l": []}, id="str-subclass-nested"),
        pytest.param({Text("k" * 20_000): 1}, id="str-subclass-key-flat"),
        pytest.param({Text("k" * 20_000): []}, id="str-subclass-key-nested"),
        pytest.param({"f": math.nan, "l": [1.5]}, id="floats"),
        pytest.param({"t": (1, 2), "n": Number(3)}, id="others"),
        pytest.param({"i": Impostor()}, id="impostor-flat"),
        pytest.param({"l": [Impostor()]}, id="impostor-nested"),
        pytest.param(Liar(a=LiarList([1, LiarText("abc")]), b=LiarTuple((2,))), id="liars"),
    ],
)
def test_the_walks_agree_at_the_edges(value: dict[Any, Any]) -> None:
    assert_walks_agree(value)


@pytest.mark.purepy
def test_a_cycle_is_found_when_met_before_the_size_limit() -> None:
    """The documented order: a container's own scalars first, then its containers last first.
    A cycle walked before a long list is a cycle; after it, the value is too large."""
    with pytest.raises(InvalidValueError, match="cycle"):
        encode_value(_cycle_beside(["x" * MAX_VALUE_BYTES], True))
    with pytest.raises(ValueTooLargeError):
        encode_value(_cycle_beside(["x" * MAX_VALUE_BYTES], False))
    with pytest.raises(ValueTooLargeError):  # counted before any container inside is walked
        encode_value(_cycle_beside("x" * MAX_VALUE_BYTES, True))


@pytest.mark.purepy
def test_a_value_whose_methods_lie_is_bounded_by_its_storage() -> None:
    """Guards the walk against running the value's code: a subclass's __len__, __iter__,
    keys or values are never called, its own storage is counted, as orjson writes it."""
    data, _ = encode_value({"l": LiarList(["x" * 10])})
    assert data == b'{"l":["xxxxxxxxxx"]}'
    with pytest.raises(ValueTooLargeError):
        encode_value({"l": LiarList(["x" * MAX_VALUE_BYTES])})
    with pytest.raises(ValueTooLargeError):
        encode_value(Liar(a="x" * MAX_VALUE_BYTES))


@pytest.mark.purepy
def test_an_impostor_of_a_dict_is_not_a_value() -> None:
    with pytest.raises(InvalidValueError, match="must be a dict"):
        encode_value(Impostor())

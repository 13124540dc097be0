"""The cost of checking and encoding a value, against orjson's own round trip of it.

Every create runs ``encode_value`` in the caller's task: the value's checks (a dict, within
the size and depth limits, read back exactly) and its compact JSON. This script times it
against ``orjson.dumps`` alone and ``orjson.dumps`` then ``orjson.loads`` of the same value
(the least any design that reads a value back must pay), with the walk that bounds a value
before it is encoded in C (``aiokv._core._ccodec``, where it was built) and in Python (what
``AIOKV_PURE_PYTHON=1`` runs), and times the two walks alone, for the shapes users store:

* ``flat 1 KB``: three strings;
* ``flat, 3 fields``: an int, a short and a long string (issue 12's flat value);
* ``nested 1 KB``: a 50-int array, 30 small fields, a few bools and nulls;
* ``nested, issue 12``: a 50-int array, a dict of 30 small fields, bools, null, a string;
* ``1000 small dicts``: a list of 1,000 two-field objects, just under the 16 KB limit;
* ``16 KB string``: one string filling the limit.

It then times the refusal of hostile values (a 1 GiB string, a list of 10**7 small items,
lists nested 10**5 deep, a list holding one list twice 64 levels deep) and their peak of
traced memory (``tracemalloc``) with each walk: each must be refused before any encoder builds
its JSON. Run from the repository root::

    python benchmarks/bench_codec.py            # the full run, about half a minute
    python benchmarks/bench_codec.py --quick    # a smoke test, a few seconds
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
import timeit
import tracemalloc
from collections.abc import Callable
from functools import partial
from typing import Any

import orjson

from aiokv import InvalidValueError
from aiokv._core import codec
from aiokv._core.codec import MAX_VALUE_BYTES, encode_value

try:
    from aiokv._core._ccodec import encode_plain as c_plain
    from aiokv._core._ccodec import least_json_size as c_walk
except ImportError:  # not built where no C compiler was found
    c_plain = c_walk = None
py_walk = codec._least_json_size_py
WALKS = {"C": (c_walk, c_plain), "Py": (py_walk, codec._encode_plain_py)}
if c_walk is None:
    WALKS["C"] = WALKS["Py"]

Value = dict[str, Any]


def flat_value() -> Value:
    """Three strings, about 1 KB of JSON."""
    return {"title": "t" * 330, "body": "b" * 330, "tail": "z" * 330}


def nested_value() -> Value:
    """A 50-int array, 30 small fields and a few bools and nulls: about 1 KB of JSON."""
    value: Value = {"ids": list(range(100_000, 100_050))}
    for i in range(30):
        value[f"field_{i:02d}"] = f"value {i:02d}" if i % 2 else i * 1_000
    value.update({"active": True, "deleted": False, "parent": None, "owner": None})
    return value


def many_dicts_value() -> Value:
    """A list of 1,000 small objects, just under the 16 KB limit."""
    return {"items": [{"i": i, "t": 1} for i in range(1_000)]}


def three_fields_value(i: int = 12_345) -> Value:
    """An int, a short and a long string: about 1 KB of JSON."""
    return {"i": i, "name": f"n{i}", "pad": "x" * 960}


def issue_12_value(i: int = 12_345) -> Value:
    """The nested value of issue 12: about 1 KB of JSON."""
    fields = {f"f{j}": (j * i) % 1000 if j % 2 else f"v{j}" for j in range(30)}
    return {
        "id": i,
        "tags": list(range(i, i + 50)),
        "fields": fields,
        **{"a": True, "b": False, "c": None, "note": "y" * 300},
    }


def long_string_value() -> Value:
    """One string whose value is exactly the 16 KB limit."""
    return {"s": "x" * (MAX_VALUE_BYTES - len('{"s":""}'))}


SHAPES: dict[str, Callable[[], Value]] = {
    "flat 1 KB": flat_value,
    "flat, 3 fields": three_fields_value,
    "nested 1 KB": nested_value,
    "nested, issue 12": issue_12_value,
    "1000 small dicts": many_dicts_value,
    "16 KB string": long_string_value,
}


def deep_lists(depth: int) -> Value:
    """Lists nested ``depth`` levels inside the top dict, built without recursion."""
    inner: list[Any] = []
    for _ in range(depth - 1):
        inner = [inner]
    return {"v": inner}


def doubled_lists(levels: int) -> Value:
    """A list holding one list twice, ``levels`` deep: 2**levels lists of JSON, few objects."""
    inner: list[Any] = []
    for _ in range(levels):
        inner = [inner, inner]
    return {"v": inner}


HOSTILE: dict[str, Callable[[], Value]] = {
    "1 GiB string": lambda: {"s": "x" * 2**30},
    "list of 10**7 ints": lambda: {"l": [0] * 10**7},
    "list of 10**7 dicts": lambda: {"l": [{}] * 10**7},
    "lists 10**5 deep": lambda: deep_lists(10**5),
    "a list doubled 64x": lambda: doubled_lists(64),
}


def use_walk(which: str) -> None:
    """Make ``encode_value`` use the C or the Python walk (``codec`` reads it at each call)."""
    codec._least_json_size, codec._encode_plain = WALKS[which]


def per_call(
    calls: list[tuple[Callable[[], object], Callable[[], object]]], repeat: int, budget_s: float
) -> list[float]:
    """The median time of one call of each of ``calls`` (a call and the setup run before each
    timeit run of it), in seconds, over ``repeat`` timeit runs of each, taken in turn so that
    all see the same noise."""
    timers = [timeit.Timer(call, setup) for call, setup in calls]
    numbers = [max(1, int(t.autorange()[0] * budget_s / 0.2)) for t in timers]
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(repeat):
        for timer, number, runs in zip(timers, numbers, times, strict=True):
            runs.append(timer.timeit(number) / number)
    return [statistics.median(runs) for runs in times]


def measure_shapes(repeat: int, budget_s: float) -> None:
    print(
        f"{'value':<17} {'JSON B':>6} {'dumps':>8} {'dumps+loads':>11} "
        f"{'encode C':>9} {'/dumps':>6} {'encode Py':>9} {'/dumps':>6} "
        f"{'walk C':>8} {'walk Py':>8}   (µs a call)"
    )
    c_or_py = WALKS["C"][0]
    for name, build in SHAPES.items():
        value = build()
        data, _ = encode_value(value)
        assert data == orjson.dumps(value)
        assert c_or_py(value) == py_walk(value)
        times = per_call(
            [
                (partial(orjson.dumps, value), str),
                (lambda value=value: orjson.loads(orjson.dumps(value)), str),
                (partial(encode_value, value), partial(use_walk, "C")),
                (partial(encode_value, value), partial(use_walk, "Py")),
                (partial(c_or_py, value), str),
                (partial(py_walk, value), str),
            ],
            repeat,
            budget_s,
        )
        use_walk("C")
        dumps, round_trip, ours_c, ours_py, walk_c, walk_py = (t * 1e6 for t in times)
        print(
            f"{name:<17} {len(data):>6} {dumps:>8.2f} {round_trip:>11.2f} "
            f"{ours_c:>9.2f} {ours_c / dumps:>5.2f}x {ours_py:>9.2f} {ours_py / dumps:>5.2f}x "
            f"{walk_c:>8.2f} {walk_py:>8.2f}"
        )


def refuse(value: Value) -> str:
    try:
        encode_value(value)
    except InvalidValueError as exc:
        return type(exc).__name__
    return "ACCEPTED"


def refusal(value: Value, repeat: int) -> tuple[str, float, int]:
    """The error, the median time and the traced peak of memory of refusing ``value``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        error = refuse(value)
        times.append(time.perf_counter() - started)
    gc.collect()
    tracemalloc.start()
    try:
        refuse(value)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return error, statistics.median(times), peak


def measure_hostile(repeat: int) -> None:
    print(
        f"\n{'hostile value':<20} {'refused with':<19} "
        f"{'C walk':>10} {'peak':>9} {'Py walk':>10} {'peak':>9}   (peak: traced, x the limit)"
    )
    for name, build in HOSTILE.items():
        value = build()
        cells = []
        for which in WALKS:
            use_walk(which)
            error, took, peak = refusal(value, repeat)
            cells.append(f"{took * 1e6:>7.1f} µs {peak / MAX_VALUE_BYTES:>8.2f}x")
        use_walk("C")
        print(f"{name:<20} {error:<19} {cells[0]} {cells[1]}")
        del value
        gc.collect()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="timeit runs per figure")
    parser.add_argument("--budget", type=float, default=0.2, help="seconds per timeit run")
    parser.add_argument(
        "--quick", action="store_true", help="--repeat 3 --budget 0.02, one refusal each"
    )
    parser.add_argument("--no-hostile", action="store_true", help="skip the hostile values")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.budget = 3, 0.02
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(
        f"{platform.platform()}, {platform.python_implementation()} {platform.python_version()}, "
        f"orjson {orjson.__version__}; medians of {args.repeat} runs"
    )
    if c_walk is None:
        print("the C walk is not built here: both columns are the Python walk")
    print()
    measure_shapes(args.repeat, args.budget)
    if not args.no_hostile:
        measure_hostile(1 if args.quick else 3)


if __name__ == "__main__":
    main(sys.argv[1:])

"""The cost of checking and encoding a value, against orjson's own round trip of it.

Every create runs ``encode_value`` in the caller's task: the value's checks (a dict, within
the size and depth limits, read back exactly) and its compact JSON. This script times it
against the least any design must pay, ``orjson.dumps`` then ``orjson.loads`` of the same
value, for the shapes users store:

* ``flat 1 KB``: three strings;
* ``nested 1 KB``: a 50-int array, 30 small fields, a few bools and nulls;
* ``1000 small dicts``: a list of 1,000 two-field objects, just under the 16 KB limit;
* ``16 KB string``: one string filling the limit.

It then times the refusal of hostile values (a 1 GiB string, a list of 10**7 small items,
lists nested 10**5 deep, a list holding one list twice 64 levels deep) and their peak of
traced memory (``tracemalloc``): each must be refused before any encoder builds its JSON.
Run from the repository root::

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
from typing import Any

import orjson

from aiokv import InvalidValueError
from aiokv._core.codec import MAX_VALUE_BYTES, encode_value

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


def long_string_value() -> Value:
    """One string whose value is exactly the 16 KB limit."""
    return {"s": "x" * (MAX_VALUE_BYTES - len('{"s":""}'))}


SHAPES: dict[str, Callable[[], Value]] = {
    "flat 1 KB": flat_value,
    "nested 1 KB": nested_value,
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


def per_call(
    ours: Callable[[], object], floor: Callable[[], object], repeat: int, budget_s: float
) -> tuple[float, float]:
    """The median times of one call of ``ours`` and of ``floor``, in seconds, over
    ``repeat`` timeit runs of each, taken in turn so that both see the same noise."""
    timers = [timeit.Timer(ours), timeit.Timer(floor)]
    numbers = [max(1, int(t.autorange()[0] * budget_s / 0.2)) for t in timers]
    times: list[list[float]] = [[], []]
    for _ in range(repeat):
        for timer, number, runs in zip(timers, numbers, times, strict=True):
            runs.append(timer.timeit(number) / number)
    return statistics.median(times[0]), statistics.median(times[1])


def measure_shapes(repeat: int, budget_s: float) -> None:
    print(f"{'value':<18} {'JSON B':>7} {'encode_value':>13} {'dumps+loads':>12} {'ratio':>6}")
    for name, build in SHAPES.items():
        value = build()
        data, _ = encode_value(value)
        assert data == orjson.dumps(value)

        def round_trip(value: Value = value) -> object:
            return orjson.loads(orjson.dumps(value))

        def encode(value: Value = value) -> object:
            return encode_value(value)

        ours, floor = per_call(encode, round_trip, repeat, budget_s)
        print(
            f"{name:<18} {len(data):>7} {ours * 1e6:>10.2f} µs {floor * 1e6:>9.2f} µs "
            f"{ours / floor:>5.2f}x"
        )


def refuse(value: Value) -> str:
    try:
        encode_value(value)
    except InvalidValueError as exc:
        return type(exc).__name__
    return "ACCEPTED"


def measure_hostile(repeat: int) -> None:
    print(f"\n{'hostile value':<20} {'refused with':<20} {'time':>10} {'traced peak':>14}")
    for name, build in HOSTILE.items():
        value = build()
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
        print(
            f"{name:<20} {error:<20} {statistics.median(times) * 1e3:>7.2f} ms "
            f"{peak / 1024:>8.1f} KiB ({peak / MAX_VALUE_BYTES:.2f}x the limit)"
        )
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
        f"orjson {orjson.__version__}; medians of {args.repeat} runs\n"
    )
    measure_shapes(args.repeat, args.budget)
    if not args.no_hostile:
        measure_hostile(1 if args.quick else 3)


if __name__ == "__main__":
    main(sys.argv[1:])

"""The key directory's memory and speed: the C ``KeyDir`` against ``PyKeyDir`` and a dict.

For each of the C ``KeyDir``, ``PyKeyDir`` and a plain ``dict[bytes, int]``, a fresh Python
process builds the hint columns of 1,000,000 puts with realistic keys
(``f"key{i:07d}".encode()``), reads its resident set size from ``/proc/self/statm``, loads
the entries (``load`` for the two key directories, a loop of stores for the dict), and reads
it again: the growth per entry is what the directory itself costs. The load is timed. Then
the same process times ``get`` of the 1,000,000 keys in a random order (``dict.get`` for
the dict), a few rounds, and reports the median time per call. The lookups use key objects
made before the first reading; the dict holds key objects of its own, cut from the same hint
blob during the load, since a dict index keyed by key must keep them (and pays for them).

Run from the repository root, with aiokv installed (``pip install -e .``)::

    python benchmarks/keydir_memory.py            # 1,000,000 entries, about 30 s
    python benchmarks/keydir_memory.py --n 100000 # smaller
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from array import array
from typing import Any

IMPLEMENTATIONS = ("c", "py", "dict")
ROUNDS = 5


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _measure(kind: str, n: int) -> dict[str, Any]:
    """Run in the child: build, load, time gets; return the figures."""
    from aiokv._bitcask.index.keydir import PyKeyDir

    keys = [f"key{i:07d}".encode() for i in range(n)]
    blob = b"\xff".join(keys) + b"\xff"
    lengths = array("B", map(len, keys))
    kinds = array("B", [1]) * n
    sizes = array("I", [100]) * n
    offsets = array("I", range(0, 100 * n, 100))
    order = list(range(n))
    random.Random(1).shuffle(order)
    probe = [keys[i] for i in order]
    seed = bytes(range(16))

    table: Any
    before = _rss()
    t0 = time.perf_counter()
    if kind == "dict":
        # A dict index holds its own key objects: cut them from the hint's blob, as an
        # index keyed by key would.
        table = {}
        base = 7 << 48
        own_keys = blob.split(b"\xff")
        own_keys.pop()
        for key, offset, size in zip(own_keys, offsets, sizes, strict=True):
            table[key] = base | offset << 16 | size
        del own_keys
    else:
        if kind == "c":
            from aiokv._bitcask.index._ckeydir import KeyDir

            table = KeyDir(seed)
        else:
            table = PyKeyDir(seed)
        stop, _pos, added, _key_bytes, _size = table.load(
            blob, lengths, kinds, offsets, sizes, 7, 0, 0
        )
        assert stop == n, (stop, n)
        # A 48-bit hash may join two of a million keys (odds about 1 in 560); the load then
        # stops there, and the rest is not worth resuming for a memory figure.
        assert added == n, (added, n)
    load_s = time.perf_counter() - t0
    after = _rss()
    assert len(table) == n

    get = table.get
    rounds = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        for key in probe:
            get(key)
        rounds.append((time.perf_counter() - t0) / n)
    assert get(keys[0]) == 7 << 48 | 0 << 16 | 100
    return {
        "kind": kind,
        "n": n,
        "rss_bytes": after - before,
        "sizeof": sys.getsizeof(table),
        "load_s": load_s,
        "get_ns": statistics.median(rounds) * 1e9,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="entries (default 1,000,000)")
    parser.add_argument("--child", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure(args.child, args.n)))
        return 0

    rows = []
    for kind in IMPLEMENTATIONS:
        env = dict(os.environ)
        env.pop("AIOKV_PURE_PYTHON", None)
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, "--n", str(args.n)],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout
        rows.append(json.loads(out))

    names = {"c": "C KeyDir", "py": "PyKeyDir", "dict": "dict[bytes, int]"}
    print(f"{args.n:,} entries, keys like b'key0000042'; get: median of {ROUNDS} rounds")
    print(f"{'':18} {'RSS growth':>12} {'per entry':>10} {'sizeof':>12} {'load':>9} {'get':>9}")
    for row in rows:
        print(
            f"{names[row['kind']]:18} {row['rss_bytes'] / 2**20:>9.1f} MiB "
            f"{row['rss_bytes'] / row['n']:>8.1f} B {row['sizeof'] / 2**20:>8.1f} MiB "
            f"{row['load_s'] * 1e3:>6.0f} ms {row['get_ns']:>6.0f} ns"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

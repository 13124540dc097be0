"""Compare two installs of aiokv on the paths a change touches, alternated in one run.

A full benchmark's single passes swing 10-20% on a shared machine, more than most changes
move; this runs small workloads in fresh processes of each interpreter in turn (before, after,
before, ...), so the machine's drift falls on both, and reports the medians and the ratio::

    python -m venv /tmp/before && /tmp/before/bin/pip install '.[bench]'   # at the old commit
    python -m venv /tmp/after && /tmp/after/bin/pip install '.[bench]'     # at the new one
    python benchmarks/ab_installs.py /tmp/before/bin/python /tmp/after/bin/python

Each workload makes fresh stores in a temporary directory; rates are operations per second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

# One child run: creates by one task and by 100, then reads (the first pass after the
# creates, and the best of several), each on a fresh store; prints one JSON object.
CHILD = r"""
import asyncio, json, os, random, sys, tempfile, time
import aiokv

N, ROUNDS = int(sys.argv[1]), int(sys.argv[2])
VALUE = {"name": "Ada", "tags": ["a", "b"], "bio": "x" * 900}

async def one(tasks):
    path = os.path.join(tempfile.mkdtemp(), "store")
    async with aiokv.AsyncDataStore(path, max_size=2**31) as store:
        keys = [f"user:{i:027d}" for i in range(N)]
        async def work(part):
            for key in part:
                await store.create(key, VALUE)
        start = time.perf_counter()
        await asyncio.gather(*(work(keys[i::tasks]) for i in range(tasks)))
        create = N / (time.perf_counter() - start)
        random.shuffle(keys)
        reads = []
        for _ in range(3):
            start = time.perf_counter()
            for key in keys:
                await store.read(key)
            reads.append(N / (time.perf_counter() - start))
    return create, reads[0], max(reads)

async def main():
    names = ("create, 1 task", "create, 100 tasks", "read, first pass", "read, best pass")
    out = {name: [] for name in names}
    for _ in range(ROUNDS):
        create, first, best = await one(1)
        out["create, 1 task"].append(create)
        out["read, first pass"].append(first)
        out["read, best pass"].append(best)
        out["create, 100 tasks"].append((await one(100))[0])
    print(json.dumps({name: max(values) for name, values in out.items()}))

asyncio.run(main())
"""


def run(python: str, n: int, rounds: int) -> dict[str, float]:
    done = subprocess.run(
        [python, "-c", CHILD, str(n), str(rounds)],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",  # never the repository's own aiokv
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="the interpreter of the install measured first")
    parser.add_argument("after", help="the interpreter of the other install")
    parser.add_argument("--alternations", type=int, default=6, help="runs of each (default 6)")
    parser.add_argument("--n", type=int, default=5000, help="keys per store (default 5000)")
    parser.add_argument("--rounds", type=int, default=3, help="stores per run, best kept")
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for i in range(args.alternations):
        order = ("before", "after") if i % 2 == 0 else ("after", "before")
        for side in order:
            results[side].append(run(getattr(args, side), args.n, args.rounds))
            print(f"  run {i + 1}/{args.alternations} {side}: done", file=sys.stderr)
    print(f"{'workload':20} {'before':>10} {'after':>10} {'after/before':>13}  after ahead")
    for name in results["before"][0]:
        before = [r[name] for r in results["before"]]
        after = [r[name] for r in results["after"]]
        ahead = sum(a > b for a, b in zip(after, before, strict=True))
        ratio = statistics.median(after) / statistics.median(before)
        print(
            f"{name:20} {statistics.median(before):>10,.0f} {statistics.median(after):>10,.0f} "
            f"{ratio:>13.3f}  {ahead}/{len(after)}"
        )


if __name__ == "__main__":
    main()

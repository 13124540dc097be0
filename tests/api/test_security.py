"""What a hostile environment or caller can do to a store: loose permissions, planted symlinks,
values built to exhaust time or memory, and code paths that would execute data."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import errno
import math
import os
import resource
import stat
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _fs import dir_bytes
from _internals import MIN_SEGMENT_MAX_BYTES
from _values import nested_dicts, nested_lists

import aiokv
from aiokv import (
    AsyncDataStore,
    DataStoreError,
    InvalidValueError,
    KeyNotFoundError,
    ManualClock,
    ValueTooLargeError,
)

CAP = 2**20
PAYLOAD = {"v": "s" * 1000}


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def segment_kind(path: Path) -> int:
    """The file kind byte of a segment's header: 1 = log, 2 = compacted."""
    return path.read_bytes()[9]


def small_store(path: Path, **options: Any) -> AsyncDataStore:
    return AsyncDataStore(
        path,
        max_size=CAP,
        segment_max_bytes=MIN_SEGMENT_MAX_BYTES,
        compact_dead_ratio=None,
        clock=ManualClock(),
        **options,
    )


# -- (a) permissions ----------------------------------------------------------------------


def assert_private(path: Path) -> None:
    assert mode_of(path) == 0o700, f"the store directory is {oct(mode_of(path))}"
    for entry in path.iterdir():
        assert not entry.is_symlink(), entry
        assert entry.is_file(), entry
        assert mode_of(entry) == 0o600, f"{entry.name} is {oct(mode_of(entry))}"


@pytest.mark.parametrize("mask", [0o000, 0o022], ids=["umask-000", "umask-022"])
async def test_new_store_is_0700_and_every_file_it_makes_0600_whatever_the_umask(
    tmp_path: Path, mask: int
) -> None:
    """Guards the store's privacy against a permissive umask: the directory aiokv creates and
    every file in it (segments, hints, LOCK, compaction output and its hint) are owner-only."""
    path = tmp_path / "store"
    with umask(mask):
        async with small_store(path) as store:
            for i in range(100):
                await store.create(f"k{i}", PAYLOAD)
            for i in range(0, 100, 2):  # half of every segment dead: compaction copies the rest
                await store.delete(f"k{i}")
            assert await store.compact() > 0
            assert_private(path)  # while open: LOCK, segments, sealed segments' hints
        assert_private(path)  # after close: the active segment's hint too
        names = sorted(p.name for p in path.iterdir())
        segments = [path / name for name in names if name.endswith(".data")]
        assert "LOCK" in names
        assert len(segments) >= 2, names
        assert any(segment_kind(p) == 2 for p in segments), "no compacted segment was made"
        assert {p.stem for p in path.glob("*.hint")} == {p.stem for p in segments}
        # A reopen, which may rewrite hints and cut a tail, keeps to the rule as well.
        async with small_store(path) as store:
            await store.create("after-reopen", PAYLOAD)
            assert_private(path)
        assert_private(path)


# -- (b) planted symlinks -----------------------------------------------------------------

VICTIM_BYTES = b"precious bytes that belong to someone else\n" * 20
VICTIM_MODE = 0o644


def make_victim(tmp_path: Path) -> Path:
    victim = tmp_path / "outside" / "victim.txt"
    victim.parent.mkdir()
    victim.write_bytes(VICTIM_BYTES)
    os.chmod(victim, VICTIM_MODE)
    return victim


def assert_victim_untouched(victim: Path) -> None:
    assert victim.read_bytes() == VICTIM_BYTES, "the victim file's bytes were changed"
    assert mode_of(victim) == VICTIM_MODE, f"the victim's mode became {oct(mode_of(victim))}"
    assert victim.stat().st_nlink == 1


def newest_segment(path: Path) -> int:
    return max(int(p.name[:8]) for p in path.glob("*.data"))


async def build(path: Path) -> None:
    """A closed store of a few segments, with dead records for compaction to drop."""
    async with small_store(path) as store:
        for i in range(80):
            await store.create(f"k{i}", PAYLOAD)
        for i in range(0, 40):
            await store.delete(f"k{i}")


class Errors:
    """Every exception the store raised during a scenario; all must be aiokv's own."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Exception]] = []

    @contextlib.asynccontextmanager
    async def collect(self, what: str) -> AsyncIterator[None]:
        try:
            yield
        except Exception as exc:
            self.seen.append((what, exc))

    def check(self) -> None:
        foreign = [(what, exc) for what, exc in self.seen if not isinstance(exc, DataStoreError)]
        assert not foreign, "errors outside aiokv's tree: " + "; ".join(
            f"{what}: {type(exc).__name__}: {exc}" for what, exc in foreign
        )


async def fill_until_roll_over(store: AsyncDataStore, errors: Errors, start: int) -> None:
    """Create keys until a new segment is begun (or the store refuses one)."""
    for i in range(start, start + 60):
        before = len(list(store.path.glob("*.data")))
        failures = len(errors.seen)
        async with errors.collect(f"create #{i}"):
            await store.create(f"n{i}", PAYLOAD)
        if len(errors.seen) > failures or len(list(store.path.glob("*.data"))) > before:
            return


# Each scenario: the names to plant (relative to the newest segment N), and what to do once
# they are planted in an open store.
OPEN_SCENARIOS: dict[str, tuple[Callable[[int], list[str]], str]] = {
    "next-segment": (lambda n: [f"{n + 1:08d}.data"], "roll-over"),
    "active-hint": (lambda n: [f"{n:08d}.hint"], "roll-over"),
    "active-hint-temporary": (lambda n: [f"{n:08d}.hint.tmp"], "roll-over"),
    "compaction-temporary": (
        lambda n: [f"{i:08d}.data.tmp" for i in range(n + 1, n + 4)],
        "compact",
    ),
    "compaction-hint-temporary": (
        lambda n: [f"{i:08d}.hint.tmp" for i in range(n + 1, n + 4)],
        "compact",
    ),
    "active-hint-at-close": (lambda n: [f"{n:08d}.hint", f"{n:08d}.hint.tmp"], "close"),
}


@pytest.mark.parametrize("scenario", sorted(OPEN_SCENARIOS))
async def test_symlink_planted_in_an_open_store_is_never_followed(
    tmp_path: Path, scenario: str
) -> None:
    """Guards the victim of a symlink planted where an open store is about to create a file
    (next segment, hint, their temporaries): it is left byte for byte as it was, its mode
    too, and every error the store raises, now or at the next open, is aiokv's own."""
    names, action = OPEN_SCENARIOS[scenario]
    victim = make_victim(tmp_path)
    path = tmp_path / "store"
    await build(path)
    errors = Errors()
    store = small_store(path)
    await store.open()
    try:
        for name in names(newest_segment(path)):
            (path / name).unlink(missing_ok=True)  # a hint the open left in place is replaced
            os.symlink(victim, path / name)
        if action == "roll-over":
            await fill_until_roll_over(store, errors, 0)
        elif action == "compact":
            async with errors.collect("compact"):
                await store.compact()
    finally:
        async with errors.collect("close"):
            await store.close()
    assert_victim_untouched(victim)
    async with errors.collect("reopen"), small_store(path) as again:
        await again.create("after", PAYLOAD)
    assert_victim_untouched(victim)
    errors.check()


CLOSED_SCENARIOS: dict[str, Callable[[int], list[str]]] = {
    "lock": lambda n: ["LOCK"],
    "next-segment": lambda n: [f"{n + 1:08d}.data"],
    "active-hint-temporary": lambda n: [f"{n:08d}.hint.tmp"],
    "compaction-temporary": lambda n: [f"{n + 1:08d}.data.tmp"],
    "sealed-hint": lambda n: [f"{n - 1:08d}.hint"],
    "active-hint": lambda n: [f"{n:08d}.hint"],
}


@pytest.mark.parametrize(
    ("scenario", "fresh"),
    [
        pytest.param(scenario, fresh, id=f"{scenario}-{'new' if fresh else 'existing'}-store")
        for scenario in sorted(CLOSED_SCENARIOS)
        for fresh in (True, False)
        if not (fresh and scenario == "sealed-hint")  # a new store has no sealed segment
    ],
)
async def test_symlink_planted_in_a_closed_store_is_never_followed(
    tmp_path: Path, scenario: str, fresh: bool
) -> None:
    """Guards the victim of a symlink planted in a store directory while it is closed, at a
    name the next open reads or creates (LOCK, the first or next segment, a hint or a
    temporary file): open and a write then leave it as it was, and raise only aiokv's errors."""
    victim = make_victim(tmp_path)
    path = tmp_path / "store"
    if fresh:
        path.mkdir(mode=0o700)
        newest = 1 if scenario != "next-segment" else 0  # a new store begins with segment 1
    else:
        await build(path)
        newest = newest_segment(path)
        if scenario == "lock":
            os.unlink(path / "LOCK")
        if scenario in ("sealed-hint", "active-hint"):
            os.unlink(path / CLOSED_SCENARIOS[scenario](newest)[0])
    for name in CLOSED_SCENARIOS[scenario](newest):
        os.symlink(victim, path / name)
    errors = Errors()
    async with errors.collect("open"), small_store(path) as store:
        await fill_until_roll_over(store, errors, 100)
    assert_victim_untouched(victim)
    errors.check()


async def open_unless_it_blocks(store: AsyncDataStore, fifo: Path) -> tuple[bool, Errors]:
    """Open ``store``, watching whether it opens ``fifo`` to read it meanwhile.

    A FIFO can be opened for writing without blocking only while someone has it open for
    reading; so while the open runs, a writer keeps trying. If it gets in, the store has the
    FIFO open: for a moment (opened without blocking, found not a regular file, closed), or
    stuck reading it, which it would be for ever while a writer holds it open and writes
    nothing. So the writer holds it while the open goes on: an open that ends meanwhile did
    not block on it; one still going after a minute is stuck, and the writer's close gives
    the stuck read end of file and lets it go on. Returns whether it was stuck, and what the
    open and close raised.
    """
    errors = Errors()
    opening = asyncio.ensure_future(store.open())
    blocked = False
    deadline = time.monotonic() + 60.0
    while not opening.done():
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            assert time.monotonic() < deadline, "open did not finish within 60 s"
            await asyncio.sleep(0.01)
            continue
        try:
            done, _ = await asyncio.wait([opening], timeout=60.0)
        finally:
            os.close(fd)
        blocked = not done
        break
    async with errors.collect("open"):
        await opening
    async with errors.collect("close"):
        await store.close()
    return blocked, errors


async def test_symlinked_hint_is_not_read_through(tmp_path: Path) -> None:
    """Guards against open reading a hint through a symlink planted at its name: with a FIFO
    behind the link, a read through it blocks the open until a writer comes (with
    ``/dev/zero`` it would read without end). The open must not wait on it."""
    path = tmp_path / "store"
    await build(path)
    newest = newest_segment(path)
    os.unlink(path / f"{newest:08d}.hint")
    fifo = tmp_path / "outside.fifo"
    os.mkfifo(fifo, 0o600)
    os.symlink(fifo, path / f"{newest:08d}.hint")
    blocked, errors = await open_unless_it_blocks(small_store(path), fifo)
    assert not blocked, f"open blocked reading {newest:08d}.hint through a symlink to a FIFO"
    errors.check()


NON_REGULAR: dict[str, tuple[Callable[[int], str], str]] = {
    "fifo-at-next-segment": (lambda n: f"{n + 1:08d}.data", "fifo"),
    "fifo-at-active-hint": (lambda n: f"{n:08d}.hint", "fifo"),
    "fifo-at-sealed-hint": (lambda n: f"{n - 1:08d}.hint", "fifo"),
    "directory-at-next-segment": (lambda n: f"{n + 1:08d}.data", "directory"),
    "directory-at-active-hint": (lambda n: f"{n:08d}.hint", "directory"),
    "directory-at-temporary": (lambda n: f"{n + 1:08d}.data.tmp", "directory"),
}


@pytest.mark.parametrize("scenario", sorted(NON_REGULAR))
async def test_entry_that_is_not_a_regular_file_neither_hangs_nor_escapes_open(
    tmp_path: Path, scenario: str
) -> None:
    """Guards open against a FIFO or a directory planted at a name the store reads (the next
    segment, a hint, a temporary file): the open must not block on it, and anything it raises
    is aiokv's own error."""
    path = tmp_path / "store"
    await build(path)
    newest = newest_segment(path)
    name, kind = NON_REGULAR[scenario]
    planted = path / name(newest)
    planted.unlink(missing_ok=True)
    fifo = tmp_path / "unused.fifo"
    if kind == "fifo":
        os.mkfifo(planted, 0o600)
        fifo = planted
    else:
        planted.mkdir()
        os.mkfifo(fifo, 0o600)
    blocked, errors = await open_unless_it_blocks(small_store(path), fifo)
    assert not blocked, f"open blocked on the FIFO {planted.name}"
    errors.check()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/self/status")
def test_oversized_value_is_refused_not_crashing_under_an_address_space_limit(
    tmp_path: Path,
) -> None:
    """Guards create against a value far over the limit when memory is bounded (``ulimit -v``,
    or a small machine that cannot overcommit): a 64 MiB string, with 256 MiB of address
    space to spare, must be a ValueTooLargeError, not a crash of the whole process."""
    script = textwrap.dedent(
        """
        import asyncio
        import resource
        import sys

        import aiokv


        def vm_size():
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmSize:"):
                        return int(line.split()[1]) * 1024
            raise RuntimeError("no VmSize")


        async def main(path):
            async with aiokv.AsyncDataStore(path) as store:
                big = "x" * (64 * 2**20)
                soft, hard = resource.getrlimit(resource.RLIMIT_AS)
                resource.setrlimit(resource.RLIMIT_AS, (vm_size() + 256 * 2**20, hard))
                try:
                    await store.create("big", {"s": big})
                except aiokv.ValueTooLargeError:
                    print("refused", flush=True)
                except BaseException as exc:
                    print("raised", type(exc).__name__, exc, flush=True)
                else:
                    print("stored", flush=True)
                finally:
                    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


        asyncio.run(main(sys.argv[1]))
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "store")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    outcome = f"exit status {child.returncode}, stdout {child.stdout!r}, stderr {child.stderr!r}"
    assert child.returncode == 0, f"the process died refusing a 64 MiB value: {outcome}"
    assert child.stdout.strip() == "refused", outcome


# -- (c) hostile values -------------------------------------------------------------------


HOSTILE_VALUES: dict[str, Callable[[], dict[str, Any]]] = {
    "depth-100000": lambda: nested_dicts(100_000),
    "list-depth-100000": lambda: nested_lists(100_000),
    "list-depth-100000-in-records": lambda: {"r": [{"i": 1}] * 9 + [nested_lists(100_000)]},
    "int-100000-digits": lambda: {"n": 10**99_999},
    "negative-int-100000-digits": lambda: {"n": -(10**99_999)},
    "lone-surrogate-in-string": lambda: {"s": "ok \ud800 ok"},
    "lone-surrogate-in-key": lambda: {"\udfff": 1},
    "lone-surrogate-deep": lambda: {"l": [1, {"x": ["\udbff"]}]},
    "nan": lambda: {"f": math.nan},
    "infinity": lambda: {"f": math.inf},
    "minus-infinity": lambda: {"f": [0.5, -math.inf]},
}
HOSTILE_TIME_LIMIT_S = 5.0


@pytest.mark.parametrize("name", sorted(HOSTILE_VALUES))
async def test_hostile_value_is_refused_quickly_and_writes_nothing(
    tmp_path: Path, name: str
) -> None:
    """Guards create against values built to cost time or crash the encoder: each is an
    InvalidValueError (not a RecursionError, ValueError or MemoryError), in well under 5 s,
    and nothing reaches the disk."""
    value = HOSTILE_VALUES[name]()
    path = tmp_path / "store"
    async with small_store(path) as store:
        await store.create("before", {"a": 1})
        size = dir_bytes(path)
        started = time.perf_counter()
        with pytest.raises(InvalidValueError) as caught:
            await store.create("k", value)
        elapsed = time.perf_counter() - started
        assert not isinstance(caught.value, ValueTooLargeError), caught.value
        assert dir_bytes(path) == size
        with pytest.raises(KeyNotFoundError):
            await store.read("k")
        assert await store.read("before") == {"a": 1}
    print(f"\n{name}: refused in {elapsed * 1000:.1f} ms")
    assert elapsed < HOSTILE_TIME_LIMIT_S, f"{name} took {elapsed:.2f} s to refuse"


OVERSIZED_VALUES: dict[str, Callable[[], dict[str, Any]]] = {
    "list-of-10**7-ints": lambda: {"l": [0] * 10**7},
    "list-of-10**7-strings": lambda: {"l": ["ab"] * 10**7},
    "list-of-10**7-dicts": lambda: {"l": [{}] * 10**7},
    "dict-of-10**6-keys": lambda: {str(i): None for i in range(10**6)},
    "10**6-records": lambda: {"r": [{"i": i} for i in range(10**6)]},
    "string-of-16-mib-in-a-list": lambda: {"l": [1, "x" * 2**24]},
    "strings-of-1-mib-in-records": lambda: {"r": [{"s": "x" * 2**20} for _ in range(9)]},
}


@pytest.mark.parametrize("name", sorted(OVERSIZED_VALUES))
async def test_value_of_many_items_is_too_large_and_writes_nothing(
    tmp_path: Path, name: str
) -> None:
    """Guards create against values whose JSON would be megabytes, built from many small
    items or long strings anywhere inside: each is a ValueTooLargeError, refused from the
    lengths of its containers and strings before any JSON of it is built (the time and memory
    each refusal takes are printed by benchmarks/bench_codec.py), and nothing is written."""
    value = OVERSIZED_VALUES[name]()
    path = tmp_path / "store"
    async with small_store(path) as store:
        size = dir_bytes(path)
        with pytest.raises(ValueTooLargeError, match=r"limit is 16384 bytes"):
            await store.create("k", value)
        assert dir_bytes(path) == size
        with pytest.raises(KeyNotFoundError):
            await store.read("k")


GIB = 2**30


@pytest.mark.slow
async def test_one_gigabyte_string_is_refused_without_copying_it(tmp_path: Path) -> None:
    """Guards create against a 1 GiB string: ValueTooLargeError, nothing written, and the
    refusal must not cost more than one copy of the value in memory (the limit is 16 KiB: a
    value that large can be refused from its length alone)."""
    big = "x" * GIB  # built once, before tracing starts
    path = tmp_path / "store"
    try:
        async with small_store(path) as store:
            size = dir_bytes(path)
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            tracemalloc.start()
            started = time.perf_counter()
            try:
                with pytest.raises(ValueTooLargeError, match=r"limit is 16384 bytes"):
                    await store.create("big", {"s": big})
                elapsed = time.perf_counter() - started
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            assert dir_bytes(path) == size
            with pytest.raises(KeyNotFoundError):
                await store.read("big")
    finally:
        del big
    grown = (rss_after - rss_before) / GIB
    figures = (
        f"1 GiB string refused in {elapsed:.2f} s; traced peak {peak / GIB:.2f} GiB "
        f"({peak / GIB:.1f} times the string); peak RSS grew by {grown:.2f} GiB"
    )
    print(f"\n{figures}")
    assert elapsed < 30.0, figures
    assert peak < 1.5 * GIB, f"the refusal allocates more than one copy of the value: {figures}"


# -- (d) no code execution from data ------------------------------------------------------

FORBIDDEN_MODULES = {"pickle", "_pickle", "cPickle", "marshal", "shelve", "dill"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}


def forbidden_uses(source: str, filename: str) -> list[str]:
    """Imports of serialisers that execute code, and calls of the builtins that run strings."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found += [
                f"{filename}:{node.lineno}: imports {module}"
                for module in modules
                if module.split(".")[0] in FORBIDDEN_MODULES
            ]
        if isinstance(node, ast.Call):
            func = node.func
            name = None
            if isinstance(func, ast.Name):
                name = func.id
            elif (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id in ("builtins", "__builtins__")
            ):
                name = func.attr  # builtins.eval(...); re.compile(...) is another compile
            if name in FORBIDDEN_CALLS:
                found.append(f"{filename}:{node.lineno}: calls {name}()")
    return found


def test_the_scan_finds_what_it_looks_for() -> None:
    """Guards the scanner below: it must see each forbidden form, or its pass means nothing."""
    sample = (
        "import pickle\nimport os, marshal as m\nfrom shelve import open\nfrom _pickle import x\n"
        "eval('1')\nexec('x = 1')\ncompile('1', 'f', 'eval')\n__import__('os')\n"
        "builtins.eval('1')\nre.compile('x')\n"
    )
    assert len(forbidden_uses(sample, "sample.py")) == 9


def test_package_never_unpickles_or_evaluates_code() -> None:
    """Guards against data ever being executed: no module of aiokv imports pickle, marshal or
    shelve, or calls eval, exec, compile or __import__."""
    package = Path(aiokv.__file__).parent
    files = sorted(package.rglob("*.py"))
    assert len(files) > 10
    found = [
        use
        for file in files
        for use in forbidden_uses(file.read_text("utf-8"), str(file.relative_to(package)))
    ]
    assert not found, "\n".join(found)

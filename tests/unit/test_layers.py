"""The package's import graph is the one-way ladder its folders promise.

Each module's imports are read from its source (not by importing it) and checked against the
layer it lives in: the backend-neutral core below everything, the local engine's format and
index below its engine, the faces at the top, and no cycle anywhere.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import aiokv

PACKAGE = Path(aiokv.__file__).resolve().parent

# Each layer, and the aiokv modules (by prefix) it may import besides its own.
ERRORS = ("aiokv.errors",)
CORE = (*ERRORS, "aiokv._core")
FORMAT = (*CORE, "aiokv._bitcask.format")
INDEX = (*FORMAT, "aiokv._bitcask.index")
SYSTEM = (*FORMAT, "aiokv._bitcask.system")
OPTIONS = (*FORMAT, "aiokv._bitcask.options")
ENGINE = (*INDEX, *SYSTEM, *OPTIONS, "aiokv._bitcask.engine")
NATIVE = (*INDEX, "aiokv._bitcask.native")
FACES = (*ENGINE, *NATIVE, "aiokv._bitcask.store", "aiokv._bitcask.sync")
ALLOWED: dict[str, tuple[str, ...]] = {
    "aiokv.errors": (),
    "aiokv._core": CORE,
    "aiokv._bitcask.format": FORMAT,
    "aiokv._bitcask.index": INDEX,
    "aiokv._bitcask.system": SYSTEM,
    "aiokv._bitcask.options": OPTIONS,
    "aiokv._bitcask.engine": ENGINE,
    "aiokv._bitcask.native": NATIVE,  # which of the C parts are in use
    "aiokv._bitcask.store": FACES,
    "aiokv._bitcask.sync": FACES,
    "aiokv._bitcask": (*FACES, "aiokv._bitcask"),  # its __init__
    # Another backend: on the core alone, never on the local engine.
    "aiokv.redis": (*CORE, "aiokv.redis"),
    # The faces outside the library use its public API only: ``aiokv`` itself (not a module
    # of this map, so always allowed) and its errors.
    # aiokv.redis is public too: the Redis store behind --url.
    "aiokv.server": (*ERRORS, "aiokv.server", "aiokv.redis"),
    "aiokv.cli": (*ERRORS, "aiokv.cli", "aiokv.server", "aiokv.redis"),
    "aiokv.__main__": (*ERRORS, "aiokv.cli"),
}
# The layers that are tested and fuzzed synchronously never touch an event loop.
NO_ASYNC = ("aiokv._core.codec", "aiokv._bitcask.format", "aiokv._bitcask.index")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The modules ``path`` imports, with ``from aiokv import errors`` read as aiokv.errors."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            assert node.level == 0, f"{path}: relative import of {node.module}"
            found.add(node.module)
            if node.module.startswith("aiokv"):
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = {
    module_name(path): path
    for path in sorted(PACKAGE.rglob("*.py"))
    if module_name(path) != "aiokv"
}


def internal(name: str) -> str | None:
    """The package module ``name`` is, or is inside; None for anything outside aiokv."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def layer_of(module: str) -> str:
    return max((prefix for prefix in ALLOWED if _within(module, prefix)), key=len)


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(module: str, imported: set[str]) -> list[str]:
    """The package modules among ``imported`` that ``module``'s layer may not import."""
    allowed = ALLOWED[layer_of(module)]
    found = []
    for name in sorted(imported):
        target = internal(name)
        if target is None or target == module:
            continue
        if not any(_within(target, prefix) for prefix in allowed):
            found.append(target)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(module: str, trail: list[str]) -> list[str] | None:
        if module in trail:
            return [*trail[trail.index(module) :], module]
        if module in done:
            return None
        for target in sorted(graph.get(module, ())):
            if cycle := visit(target, [*trail, module]):
                return cycle
        done.add(module)
        return None

    for module in sorted(graph):
        if cycle := visit(module, []):
            return cycle
    return None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_imports_only_the_layers_below_it(module: str) -> None:
    assert violations(module, imports_of(MODULES[module])) == []


@pytest.mark.parametrize("module", [m for m in sorted(MODULES) if m.startswith(NO_ASYNC)])
def test_the_format_index_and_codec_never_import_an_event_loop(module: str) -> None:
    forbidden = {"asyncio", "anyio", "threading", "concurrent"}
    used = {name.partition(".")[0] for name in imports_of(MODULES[module])}
    assert not used & forbidden, f"{module} imports {sorted(used & forbidden)}"


def test_the_import_graph_has_no_cycle() -> None:
    graph = {
        module: {t for name in imports_of(path) if (t := internal(name)) not in (None, module)}
        for module, path in MODULES.items()
    }
    assert find_cycle(graph) is None


def test_the_checks_catch_what_they_guard() -> None:
    """The rules above can fail: an upward import and a cycle are both seen."""
    assert violations("aiokv._bitcask.format.record", {"aiokv._bitcask.engine.writer"}) == [
        "aiokv._bitcask.engine.writer"
    ]
    assert violations("aiokv._core.codec", {"aiokv._bitcask.store"}) == ["aiokv._bitcask.store"]
    assert violations("aiokv._bitcask.engine.writer", {"aiokv._bitcask.sync"}) == [
        "aiokv._bitcask.sync"
    ]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None

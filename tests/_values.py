"""Values built for tests of the value limits: nesting past any depth, built without recursion."""

from __future__ import annotations

from typing import Any


def nested_dicts(depth: int) -> dict[str, Any]:
    """A dict of dicts ``depth`` levels deep, counting the outer one."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def nested_lists(depth: int) -> dict[str, Any]:
    """A dict holding lists, ``depth`` levels of containers in all."""
    inner: list[Any] = []
    for _ in range(depth - 2):
        inner = [inner]
    return {"a": inner}

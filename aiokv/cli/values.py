"""The value a ``create`` stores: JSON from its argument or from stdin."""

from __future__ import annotations

import json
import sys
from typing import Any, Final

from aiokv.cli.exits import InputError, UsageProblem
from aiokv.cli.streams import STDIO

MAX_INPUT_BYTES: Final = 2**20
"""The most read from stdin for one value. A stored value's compact JSON is at most 16 KiB;
indented JSON may be several times longer, but not this much, and reading stops here rather
than taking in whatever a mistaken pipe sends."""


def value_from(argument: str | None) -> Any:
    """The JSON ``argument``, or stdin's when it is ``-`` or not given. The store checks
    that it is an object it can keep.

    :raises InputError: the text is not JSON, or stdin holds more than a value can be.
    :raises UsageProblem: no argument, and stdin is a terminal (it would wait for typing).
    """
    if argument is None and sys.stdin.isatty():
        raise UsageProblem("create needs a value: give it as JSON, or '-' to read stdin")
    source = "stdin" if argument in (None, STDIO) else "the value"
    text: str | bytes = _read_stdin() if argument in (None, STDIO) else str(argument)
    try:
        return json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
        raise InputError(f"{source} is not JSON: {exc}") from exc


def _read_stdin() -> bytes:
    data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(f"stdin holds more than {MAX_INPUT_BYTES} bytes: too long for a value")
    return data

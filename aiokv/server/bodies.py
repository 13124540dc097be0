"""Request bodies and query parameters: read under a cap, parsed, checked.

A body is refused with 413 before it is read whole: at once when its ``Content-Length`` is over
the cap, else as soon as the bytes streamed in pass it. So a client cannot make the server
hold more than the cap of one request in memory.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from starlette.requests import Request

import aiokv
from aiokv.server.errors import RequestError

BODY_CAP: Final = 2**20
"""The largest body of a one-key request, in bytes: 1 MiB (a value is at most 16 KiB of
compact JSON, but a client may send it indented)."""

BATCH_BODY_CAP: Final = 64 * 2**20
"""The largest body of a batch request, in bytes: 64 MiB."""

_TTL_TEXT = re.compile(r"[0-9]{1,10}")


async def read_body(request: Request, cap: int) -> bytes:
    """The request's body, or :class:`RequestError` 413 once it is known to be over ``cap``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise _too_large(cap)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise _too_large(cap)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(cap: int) -> RequestError:
    return RequestError(413, f"the request body is over {cap} bytes")


def parse_json(body: bytes) -> Any:
    """The JSON document ``body`` holds, or :class:`RequestError` 400.

    The standard library's parser, not orjson: orjson reads an integer beyond 64 bits as a
    float, silently losing digits that aiokv would store exactly.
    """
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise RequestError(400, "the body's JSON nests too deeply") from None
    except ValueError as exc:  # JSONDecodeError, bad UTF-8, an over-long integer
        raise RequestError(400, f"the body is not valid JSON: {exc}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_value(body: bytes) -> dict[str, Any]:
    """The JSON object a ``PUT`` body holds; anything else is a bad value (400)."""
    try:
        value = parse_json(body)
    except RequestError as exc:
        raise aiokv.InvalidValueError(str(exc)) from None
    if not isinstance(value, dict):
        raise aiokv.InvalidValueError(f"the value must be a JSON object, not {_kind(value)}")
    return value


def parse_fields(body: bytes, required: dict[str, type], optional: tuple[str, ...] = ()) -> Any:
    """The JSON object of a batch body, with each ``required`` field of its type and no field
    beyond ``required`` and ``optional`` (a misspelt field is refused, not ignored)."""
    document = parse_json(body)
    if not isinstance(document, dict):
        raise RequestError(400, f"the body must be a JSON object, not {_kind(document)}")
    for name, kind in required.items():
        if not isinstance(document.get(name), kind):
            raise RequestError(400, f'the body needs "{name}": {_kind_name(kind)}')
    unknown = sorted(set(document) - set(required) - set(optional))
    if unknown:
        raise RequestError(400, f"unknown fields in the body: {', '.join(map(repr, unknown))}")
    return document


def _kind(value: object) -> str:
    return _kind_name(type(value))


def _kind_name(kind: type) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if kind is type(None):
        return "null"
    return names.get(kind, "a number" if kind in (int, float) else kind.__name__)


def parse_ttl(text: str) -> int | None:
    """A ``ttl`` query parameter: whole seconds, or empty for never; the store checks the range."""
    if text == "":
        return None
    if not _TTL_TEXT.fullmatch(text):
        raise aiokv.InvalidTTLError(
            f"ttl must be whole seconds from 1 to {aiokv.MAX_TTL_S}, or empty for never; "
            f"got {text[:20]!r}"
        )
    return int(text)

"""Errors as HTTP answers: every aiokv error class mapped to its status in one table.

An error answer is always JSON, ``{"error": NAME, "message": TEXT}``: ``NAME`` is the aiokv
exception's class name (``KeyNotFoundError``), or for an error of HTTP itself one of the names
of :data:`HTTP_ERROR_NAMES`. No traceback ever leaves the server: an unexpected exception is
answered ``InternalError`` and its traceback goes to the server's log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Final

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

import aiokv
from aiokv.errors import DataStoreError

logger = logging.getLogger("aiokv.server")

STATUS_OF: Final[dict[type[DataStoreError], int]] = {
    # A bad argument: the client can fix its request.
    aiokv.InvalidKeyError: 400,
    aiokv.InvalidValueError: 400,
    aiokv.InvalidTTLError: 400,
    aiokv.InvalidOptionError: 400,
    aiokv.ImportFileError: 400,
    aiokv.ValueTooLargeError: 413,
    aiokv.KeyNotFoundError: 404,
    aiokv.KeyExistsError: 409,
    # 507 Insufficient Storage (WebDAV, RFC 4918): the store is at max_size or the disk full.
    aiokv.StoreFullError: 507,
    # The store cannot serve now (closing, or refusing writes after a failed fsync) but the
    # request was fine: 503, worth retrying against a restarted server.
    aiokv.StoreClosedError: 503,
    aiokv.StoreLockedError: 503,
    aiokv.StoreIOError: 503,
    aiokv.StoreUnavailableError: 503,  # the Redis server behind it cannot be reached
    aiokv.NotSupportedError: 501,
    # The server's own fault, not the request's.
    aiokv.StorePathError: 500,
    aiokv.CorruptionError: 500,
    aiokv.BlockingCallError: 500,
    aiokv.DataStoreError: 500,
}
"""The HTTP status of each aiokv error; a subclass not named here gets its nearest base's."""

HTTP_ERROR_NAMES: Final[dict[int, str]] = {
    400: "BadRequest",
    401: "Unauthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "BodyTooLarge",
    500: "InternalError",
}
"""The ``error`` names of the answers that come from HTTP itself rather than from the store."""


class RequestError(Exception):
    """A request the server refuses before it reaches the store (a malformed batch body, a
    bad query parameter, a body over its cap)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class JSONResponse(Response):
    """Compact UTF-8 JSON, by orjson where it can (several times faster than ``json``), by
    ``json`` for what orjson refuses: integers beyond 64 bits, which aiokv values may hold."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:  # orjson.JSONEncodeError
            text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
            return text.encode("utf-8")


def status_of(exc: DataStoreError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 500


def error_response(
    status: int, name: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": name, "message": message}, status, headers=headers)


def http_error_name(status: int) -> str:
    return HTTP_ERROR_NAMES.get(status, "HTTPError")


async def on_store_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DataStoreError)
    status = status_of(exc)
    if status == 500:  # a fault of the server or its files (a full store is not one)
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(status, type(exc).__name__, str(exc))


async def on_request_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestError)
    return error_response(exc.status, http_error_name(exc.status), str(exc))


_PLAIN_DETAILS: Final = {
    "Not Found": "no such route",
    "Method Not Allowed": "method not allowed here",
}


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    # Starlette's own 404 and 405 carry only the status phrase as their detail.
    message = _PLAIN_DETAILS.get(exc.detail, exc.detail)
    return error_response(exc.status_code, http_error_name(exc.status_code), message, exc.headers)


async def on_disconnect(request: Request, exc: Exception) -> Response:
    """The client went away while sending its body: nobody is left to answer, nothing to log."""
    return Response(status_code=400)


async def on_unexpected_error(request: Request, exc: Exception) -> Response:
    """The last resort. Starlette re-raises ``exc`` after this answer is sent, so the server
    logs its traceback; the client sees only that something failed."""
    return error_response(500, "InternalError", "the server failed to handle this request")


EXCEPTION_HANDLERS: Final = {
    DataStoreError: on_store_error,
    RequestError: on_request_error,
    HTTPException: on_http_error,
    ClientDisconnect: on_disconnect,
    Exception: on_unexpected_error,
}

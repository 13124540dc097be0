"""The API's routes: one key, the listing, the batches, stats and health.

A key is taken from the request's raw path and percent-decoded here, once, rather than from
the decoded path the routing sees: there ``%2F`` is already a ``/`` (so the key ``a/touch``
would read as a touch of ``a``) and a newline fails the route's pattern. Any key the library
accepts is reachable as one percent-encoded path segment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import unquote_to_bytes

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Scope, Send

import aiokv
from aiokv.errors import DataStoreError
from aiokv.server.bodies import (
    BATCH_BODY_CAP,
    BODY_CAP,
    parse_fields,
    parse_ttl,
    parse_value,
    read_body,
)
from aiokv.server.errors import JSONResponse, error_response
from aiokv.server.paging import decode_cursor, encode_cursor, parse_limit, smallest_after

KEY_PREFIX: Final = "/v1/keys/"
_RAW_PREFIX: Final = KEY_PREFIX.encode("ascii")


@dataclasses.dataclass
class Service:
    """What the routes share: the store, and whether it is open (the lifespan sets it)."""

    store: aiokv.AsyncStore
    is_open: bool = False
    startup_error: DataStoreError | None = None


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def store_of(request: Request) -> aiokv.AsyncStore:
    return service_of(request).store


# -- one key ------------------------------------------------------------------------------


def decode_key(raw: bytes) -> str:
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise aiokv.InvalidKeyError(
            "the key in the path is not UTF-8 once percent-decoded"
        ) from None


def raw_rest(scope: Scope) -> bytes:
    """The path after ``/v1/keys/`` as the client sent it, still percent-encoded."""
    raw = scope.get("raw_path")
    if isinstance(raw, bytes) and raw.startswith(_RAW_PREFIX):
        return raw[len(_RAW_PREFIX) :]
    # A server that gives no raw path: the decoded one is all there is.
    path: str = scope["path"]
    return path[len(KEY_PREFIX) :].replace("%", "%25").encode("utf-8")


async def read_key(request: Request, key: str) -> Response:
    return JSONResponse(await store_of(request).read(key))


async def create_key(request: Request, key: str) -> Response:
    ttl = parse_ttl(request.query_params["ttl"]) if "ttl" in request.query_params else None
    value = parse_value(await read_body(request, BODY_CAP))
    await store_of(request).create(key, value, ttl)
    return Response(status_code=201)


async def delete_key(request: Request, key: str) -> Response:
    await store_of(request).delete(key)
    return Response(status_code=204)


async def touch_key(request: Request, key: str) -> Response:
    if "ttl" not in request.query_params:
        raise aiokv.InvalidTTLError("touch needs ?ttl=N (seconds from now) or ?ttl= (never)")
    await store_of(request).touch(key, parse_ttl(request.query_params["ttl"]))
    return Response(status_code=204)


KEY_METHODS: Final[dict[str, Callable[[Request, str], Awaitable[Response]]]] = {
    "GET": read_key,
    "HEAD": read_key,  # the server sends the headers of the GET, without its body
    "PUT": create_key,
    "DELETE": delete_key,
}


class KeyRoute(BaseRoute):
    """``/v1/keys/{key}`` (GET, HEAD, PUT, DELETE) and ``/v1/keys/{key}/touch`` (POST)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and scope["path"].startswith(KEY_PREFIX):
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: object) -> object:  # type: ignore[override]
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        raw_key, slash, below = raw_rest(scope).partition(b"/")
        if not slash:
            handler = KEY_METHODS.get(request.method)
            if handler is None:
                raise HTTPException(405, headers={"Allow": ", ".join(KEY_METHODS)})
            response = await handler(request, decode_key(raw_key))
        elif below == b"touch":
            if request.method != "POST":
                raise HTTPException(405, headers={"Allow": "POST"})
            response = await touch_key(request, decode_key(raw_key))
        else:
            raise HTTPException(404, "no such route (a / in a key is sent as %2F)")
        await response(scope, receive, send)


# -- many keys ----------------------------------------------------------------------------


async def list_keys(request: Request) -> Response:
    query = request.query_params
    limit = parse_limit(query)
    cursor = query.get("cursor", "")
    after = decode_cursor(cursor) if cursor else None
    keys, more = await smallest_after(store_of(request).keys(query.get("prefix", "")), after, limit)
    following = encode_cursor(keys[-1]) if more else None
    return JSONResponse({"keys": keys, "next": following})


async def batch_read(request: Request) -> Response:
    body = parse_fields(await read_body(request, BATCH_BODY_CAP), {"keys": list})
    return JSONResponse({"values": await store_of(request).read_many(body["keys"])})


async def batch_create(request: Request) -> Response:
    body = parse_fields(await read_body(request, BATCH_BODY_CAP), {"items": dict}, ("ttl",))
    await store_of(request).create_many(body["items"], ttl=body.get("ttl"))
    return JSONResponse({"created": len(body["items"])}, 201)


async def batch_delete(request: Request) -> Response:
    body = parse_fields(await read_body(request, BATCH_BODY_CAP), {"keys": list})
    return JSONResponse({"deleted": await store_of(request).delete_many(body["keys"])})


# -- the store ----------------------------------------------------------------------------


async def stats(request: Request) -> Response:
    return JSONResponse(dataclasses.asdict(await store_of(request).stats()))


async def healthz(request: Request) -> Response:
    if service_of(request).is_open:
        return JSONResponse({"status": "ok"})
    return error_response(503, "StoreClosedError", "the store is not open")


API_ROUTES: Final[list[BaseRoute]] = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/v1/stats", stats, methods=["GET"]),
    Route("/v1/keys", list_keys, methods=["GET"]),
    KeyRoute(),
    Route("/v1/batch/read", batch_read, methods=["POST"]),
    Route("/v1/batch/create", batch_create, methods=["POST"]),
    Route("/v1/batch/delete", batch_delete, methods=["POST"]),
]

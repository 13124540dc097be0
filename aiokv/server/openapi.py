"""The OpenAPI 3 document of the HTTP API, served at ``/openapi.json``.

Written by hand, beside the routes it describes (tests/server checks it against the running
server with schemathesis): the app has no validation layer to generate it from.
"""

from __future__ import annotations

from typing import Any, Final

import aiokv
from aiokv.server.bodies import BATCH_BODY_CAP, BODY_CAP
from aiokv.server.paging import DEFAULT_LIMIT, MAX_LIMIT

_REF = "#/components/schemas/"
_KEY = {"type": "string", "minLength": 1, "maxLength": aiokv.MAX_KEY_LENGTH}
_TTL = {"type": "integer", "minimum": 1, "maximum": aiokv.MAX_TTL_S}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF + name}


def _answer(description: str, schema: str | None = None) -> dict[str, Any]:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": _json(_ref(schema))}


def _error(description: str) -> dict[str, Any]:
    return _answer(description, "Error")


_KEY_PARAM = {
    "name": "key",
    "in": "path",
    "required": True,
    "description": "The key, percent-encoded (a / in a key as %2F).",
    "schema": _KEY,
}
_TTL_QUERY = {
    "name": "ttl",
    "in": "query",
    "description": "Seconds until the key expires; empty: never.",
    "schema": {"type": "string", "pattern": "^[0-9]{0,10}$"},
}
_COMMON = {
    "400": _error("A bad request: invalid key, value, TTL, body or parameter."),
    "401": _error("The server has a token and the request did not carry it."),
    "503": _error("The store is not open."),
}
_WRITES = {
    "507": _error("The store is full (max_size) or its disk is."),
}


def _operation(summary: str, responses: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": {**responses, **_COMMON}, **more}


def _body(schema: str, cap: int) -> dict[str, Any]:
    return {
        "required": True,
        "description": f"At most {cap} bytes (413 beyond).",
        "content": _json(_ref(schema)),
    }


_KEY_ROUTES: Final = {
    "/v1/keys/{key}": {
        "parameters": [_KEY_PARAM],
        "get": _operation(
            "Read a key's value.",
            {"200": _answer("The value.", "Value"), "404": _error("No such key.")},
        ),
        "head": _operation(
            "Whether a key is live: GET's headers without its body.",
            {"200": _answer("The key is live."), "404": _answer("No such key.")},
        ),
        "put": _operation(
            "Create a key; it must not be live.",
            {
                "201": _answer("Created."),
                "409": _error("The key is live."),
                "413": _error(
                    f"The value is over {aiokv.MAX_VALUE_BYTES} bytes or the body over {BODY_CAP}."
                ),
                **_WRITES,
            },
            parameters=[_TTL_QUERY],
            requestBody=_body("Value", BODY_CAP),
        ),
        "delete": _operation(
            "Delete a key.", {"204": _answer("Deleted."), "404": _error("No such key.")}
        ),
    },
    "/v1/keys/{key}/touch": {
        "parameters": [_KEY_PARAM],
        "post": _operation(
            "Set when a key expires, keeping its value.",
            {"204": _answer("Done."), "404": _error("No such key."), **_WRITES},
            parameters=[{**_TTL_QUERY, "required": True}],
        ),
    },
}

_LIST_PARAMS: Final = [
    {"name": "prefix", "in": "query", "schema": {"type": "string", "maxLength": 32}},
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    },
    {
        "name": "cursor",
        "in": "query",
        "description": "The `next` of the previous page.",
        "schema": {"type": "string"},
    },
]

_MANY_ROUTES: Final = {
    "/v1/keys": {
        "get": _operation(
            "A page of the live keys with a prefix, sorted; every key live throughout the "
            "paging is on exactly one page.",
            {"200": _answer("The page.", "KeyPage")},
            parameters=_LIST_PARAMS,
        ),
    },
    "/v1/batch/read": {
        "post": _operation(
            "Read many keys; absent keys are left out.",
            {"200": _answer("The values.", "Values"), "413": _error("The body is too large.")},
            requestBody=_body("Keys", BATCH_BODY_CAP),
        ),
    },
    "/v1/batch/create": {
        "post": _operation(
            "Create many keys, all or none.",
            {
                "201": _answer("Created.", "Created"),
                "409": _error("Some keys are live (named); nothing was written."),
                "413": _error("A value or the body is too large."),
                **_WRITES,
            },
            requestBody=_body("Items", BATCH_BODY_CAP),
        ),
    },
    "/v1/batch/delete": {
        "post": _operation(
            "Delete the live keys among many, all or none.",
            {
                "200": _answer("How many.", "Deleted"),
                "413": _error("The body is too large."),
                **_WRITES,
            },
            requestBody=_body("Keys", BATCH_BODY_CAP),
        ),
    },
}

_STORE_ROUTES: Final = {
    "/v1/stats": {"get": _operation("The store's size.", {"200": _answer("Stats.", "Stats")})},
    "/healthz": {
        "get": {
            "summary": "200 while the store is open; needs no token.",
            "security": [],
            "responses": {
                "200": _answer("Open.", "Health"),
                "503": _error("Not open."),
            },
        }
    },
    "/openapi.json": {
        "get": _operation("This document.", {"200": {"description": "OpenAPI 3.0."}}),
    },
}

_INT = {"type": "integer", "minimum": 0}
_STATS_FIELDS: Final[dict[str, Any]] = {
    "live_keys": _INT,
    "live_bytes": _INT,
    "dead_bytes": _INT,
    "disk_bytes": _INT,
    "segment_count": _INT,
    "last_compaction": {"type": "number", "nullable": True},
}
"""The fields of ``aiokv.StoreStats``, every one of them in each answer."""
_SCHEMAS: Final = {
    "Value": {"type": "object", "description": "A JSON object."},
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
    },
    "KeyPage": {
        "type": "object",
        "required": ["keys", "next"],
        "properties": {
            "keys": {"type": "array", "items": _KEY},
            "next": {"type": "string", "nullable": True},
        },
    },
    "Keys": {
        "type": "object",
        "required": ["keys"],
        "additionalProperties": False,
        "properties": {"keys": {"type": "array", "items": _KEY}},
    },
    "Items": {
        "type": "object",
        "required": ["items"],
        "additionalProperties": False,
        "properties": {
            "items": {"type": "object", "additionalProperties": _ref("Value")},
            "ttl": {**_TTL, "nullable": True},
        },
    },
    "Values": {
        "type": "object",
        "required": ["values"],
        "properties": {"values": {"type": "object", "additionalProperties": _ref("Value")}},
    },
    "Created": {"type": "object", "required": ["created"], "properties": {"created": _INT}},
    "Deleted": {"type": "object", "required": ["deleted"], "properties": {"deleted": _INT}},
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}},
    },
    "Stats": {
        "type": "object",
        "required": list(_STATS_FIELDS),
        "properties": _STATS_FIELDS,
    },
}

OPENAPI: Final[dict[str, Any]] = {
    "openapi": "3.0.3",
    "info": {
        "title": "aiokv",
        "version": aiokv.__version__,
        "description": "The HTTP API of `aiokv serve`. Errors are JSON: "
        '{"error": "<aiokv error class or HTTP error name>", "message": "..."}.',
    },
    "paths": {**_KEY_ROUTES, **_MANY_ROUTES, **_STORE_ROUTES},
    "components": {
        "schemas": _SCHEMAS,
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    },
    "security": [{"bearer": []}],
}

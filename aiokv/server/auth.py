"""The bearer token: when the server has one, every request but the open paths must carry it.

The token is compared in constant time (``hmac.compare_digest``), so the time of a refusal
does not tell how much of a guess was right.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection

from starlette.types import ASGIApp, Receive, Scope, Send

from aiokv.server.errors import error_response


class BearerAuth:
    """ASGI middleware: 401 for a request to a path not in ``open_paths`` without
    ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, *, token: str, open_paths: Collection[str]) -> None:
        self.app = app
        self.expected = b"Bearer " + token.encode("utf-8")
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths or self.admits(scope):
            await self.app(scope, receive, send)
            return
        response = error_response(
            401,
            "Unauthorized",
            "this server needs the header Authorization: Bearer <token>",
            headers={"WWW-Authenticate": 'Bearer realm="aiokv"'},
        )
        await response(scope, receive, send)

    def admits(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return hmac.compare_digest(value, self.expected)
        return False

"""The built-in web page: static files shipped in the package, served from memory.

The files are read once, when the app is made (not on the event loop), and sent with a
Content-Security-Policy that allows this server's own scripts and styles only: the page shows
keys and values as text, and the policy keeps a value that looks like HTML from running.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

PAGE_FILES: Final = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
PAGE_PATHS: Final = ("/", *(f"/page/{name}" for name in PAGE_FILES))
"""The page's paths, which load without the token (the page asks for it)."""

_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def page_routes() -> list[BaseRoute]:
    folder = resources.files("aiokv.server").joinpath("page")
    files = {name: folder.joinpath(name).read_bytes() for name in PAGE_FILES}

    def respond(name: str) -> Response:
        return Response(files[name], media_type=PAGE_FILES[name], headers=_HEADERS)

    async def index(request: Request) -> Response:
        return respond("index.html")

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in files:
            raise HTTPException(404)
        return respond(name)

    return [
        Route("/", index, methods=["GET"]),
        Route("/page/{name}", asset, methods=["GET"]),
    ]

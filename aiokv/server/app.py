"""``create_app``: the Starlette app of ``aiokv serve``, holding one store open for its life."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import aiokv
from aiokv.errors import DataStoreError
from aiokv.server.auth import BearerAuth
from aiokv.server.errors import EXCEPTION_HANDLERS, JSONResponse
from aiokv.server.openapi import OPENAPI
from aiokv.server.page import PAGE_PATHS, page_routes
from aiokv.server.routes import API_ROUTES, Service


def create_app(store: aiokv.AsyncStore, *, token: str | None = None) -> Starlette:
    """The HTTP API and page over ``store``, which the app opens at its startup and closes at
    its shutdown (its ASGI lifespan): one store for the life of the server process.

    :param store: a store not yet opened, e.g. ``aiokv.AsyncDataStore(path)`` or
        ``aiokv.redis.AsyncRedisStore(url)``.
    :param token: when given, every route but ``/healthz`` and the page's files needs
        ``Authorization: Bearer <token>``.
    """
    service = Service(store)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await store.open()
        except DataStoreError as exc:
            service.startup_error = exc  # for serve() to raise once the server has stopped
            raise
        try:
            service.is_open = True
            yield
        finally:
            service.is_open = False
            await store.close()

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

    middleware = []
    if token is not None:
        open_paths = ("/healthz", *PAGE_PATHS)
        middleware.append(Middleware(BearerAuth, token=token, open_paths=open_paths))
    app = Starlette(
        routes=[*API_ROUTES, Route("/openapi.json", openapi, methods=["GET"]), *page_routes()],
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.service = service
    return app

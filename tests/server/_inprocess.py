"""The app in this process, for what a real server cannot show: a store opened with options
``serve`` does not take (a small ``max_size``), a store made to fail, a body's bytes counted."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx

import aiokv
from aiokv.server import create_app


@contextlib.asynccontextmanager
async def in_process(
    store: aiokv.AsyncDataStore, token: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``create_app(store)``, its lifespan run around it as a server runs it."""
    app = create_app(store, token=token)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", timeout=10.0
        ) as client:
            yield client

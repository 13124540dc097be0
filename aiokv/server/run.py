"""``serve``: run the app under uvicorn until the server is stopped (Ctrl-C, SIGTERM)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import aiokv
from aiokv.server.app import create_app
from aiokv.server.routes import Service


class ServeRefusedError(ValueError):
    """The server will not start with these settings (the message says why, in one line)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is an address only this machine can reach: 127.0.0.0/8, ::1, localhost."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # another host name: it may resolve to anything


def check_binding(host: str, token: str | None) -> None:
    """Refuse a token that could never be sent, and a reachable address without a token."""
    if token is not None and (not token or not token.isprintable() or token != token.strip()):
        raise ServeRefusedError("the token must be non-empty printable text without edge spaces")
    if token is None and not is_loopback(host):
        raise ServeRefusedError(
            f"refusing to serve on {host}, which is not a loopback address, without a token: "
            "give one with --token or AIOKV_TOKEN"
        )


def serve(
    path: Path | None, *, host: str, port: int, token: str | None, url: str | None = None
) -> None:
    """Serve the store at ``path`` (``None``: the default store), or the Redis store at
    ``url``, on ``host:port`` until the server is stopped; the store is open for exactly as
    long as the server runs.

    :raises ServeRefusedError: ``host`` is not a loopback address and ``token`` is ``None``,
        or the token is one no client could send (empty, edge spaces, control characters);
        nothing was started.
    :raises DataStoreError: the store could not be opened (``StoreLockedError``: another
        process holds it); the server stopped at once.
    :raises SystemExit: uvicorn could not listen on ``host:port`` (it logs why).
    """
    check_binding(host, token)
    app = create_app(_store(path, url), token=token)
    service: Service = app.state.service
    config = uvicorn.Config(
        _BriefStartupFailure(app, service),
        host=host,
        port=port,
        lifespan="on",  # a store that fails to open stops the server before it listens
        server_header=False,
        timeout_graceful_shutdown=10,  # a stuck client cannot hold a Ctrl-C up for ever
    )
    try:
        uvicorn.Server(config).run()
    except SystemExit:
        # uvicorn exits when the startup fails; the store's own error says more.
        if service.startup_error is not None:
            raise service.startup_error from None
        raise
    if service.startup_error is not None:  # uvicorn before 0.35 returns instead
        raise service.startup_error


def _store(path: Path | None, url: str | None) -> aiokv.AsyncStore:
    if url is None:
        return aiokv.AsyncDataStore(path)
    from aiokv.redis import AsyncRedisStore  # the redis extra, needed only here

    return AsyncRedisStore(url)


class _BriefStartupFailure:
    """Logs a store that fails to open as one line (``StoreLockedError: ...``) rather than the
    traceback Starlette hands uvicorn for any failed startup."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_brief(message: Message) -> None:
            error = self.service.startup_error
            if message["type"] == "lifespan.startup.failed" and error is not None:
                message = {**message, "message": f"{type(error).__name__}: {error}"}
            await send(message)

        await self.app(scope, receive, send_brief)

"""``aiokv serve``: the HTTP API and page, from ``aiokv.server`` (extra ``aiokv[server]``)."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer

from aiokv.cli.exits import USAGE, ServerNotStarted
from aiokv.cli.output import say
from aiokv.cli.settings import settings_of

NEEDS_EXTRA = "aiokv serve needs its extra: pip install 'aiokv[server]'"


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="The TCP port.")] = 8470,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="AIOKV_TOKEN",
            metavar="T",
            help="The bearer token clients must send; needed off loopback.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the store over HTTP until stopped (Ctrl-C)."""
    settings = settings_of(ctx)
    # Imported here: the server's packages are an extra of their own, and every other
    # command must run without them.
    try:
        from aiokv import server
    except ImportError:
        _refuse(NEEDS_EXTRA)
    try:
        server.serve(settings.path, host=host, port=port, token=token, url=settings.url)
    except server.ServeRefusedError as exc:
        _refuse(f"aiokv serve: {exc}")
    except SystemExit as exc:
        # uvicorn exits when it cannot listen (the address is taken, say), after logging why;
        # its status (3) would read as a locked store here.
        if exc.code in (None, 0):
            raise
        raise ServerNotStarted(f"the server could not listen on {host}:{port}") from exc


def _refuse(line: str) -> NoReturn:
    say(line)
    raise typer.Exit(USAGE)

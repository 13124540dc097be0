"""The server tests' fixtures: one ``aiokv serve`` process per module (see ``_server``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from _server import TOKEN, Server, start_server, stop


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("server")
    running = start_server(folder / "store", folder / "server.log")
    yield running
    stop(running.process)


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as opened:
        yield opened


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server started with the token ``TOKEN``."""
    folder = tmp_path_factory.mktemp("guarded")
    running = start_server(folder / "store", folder / "server.log", token=TOKEN)
    yield running
    stop(running.process)

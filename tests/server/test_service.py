"""The server as a whole: health, the store's lock, stats, the page and the OpenAPI document."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from _proc import loopback_port
from _server import Server, launch, start_server, stop

import aiokv
from aiokv.server import create_app


def test_healthz_is_200_while_the_store_is_open(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


async def test_healthz_is_503_before_the_store_is_open(tmp_path: Path) -> None:
    app = create_app(aiokv.AsyncDataStore(tmp_path / "store"))  # its lifespan never runs
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        response = await client.get("/healthz")
        assert response.status_code == 503
        assert (await client.get("/v1/stats")).json()["error"] == "StoreClosedError"


def test_a_second_server_on_the_same_store_is_refused(server: Server, tmp_path: Path) -> None:
    log = tmp_path / "second.log"
    second = launch(server.path, log, port=loopback_port())
    try:
        assert second.wait(timeout=30) != 0
    except subprocess.TimeoutExpired:
        second.kill()
        second.wait(timeout=15)
        raise
    text = log.read_text()
    assert "StoreLockedError" in text
    assert text.count("Traceback") <= 1  # the one serve() raises, not the lifespan's too


def test_a_stopped_server_lets_go_of_the_store(tmp_path: Path) -> None:
    """SIGTERM: the server finishes, closes the store (its writes kept) and its lock."""
    running = start_server(tmp_path / "store", tmp_path / "server.log")
    try:
        with running.client() as client:
            assert client.put("/v1/keys/kept", json={"n": 1}).status_code == 201
    finally:
        stop(running.process)
    assert "Application shutdown complete" in running.log_text()
    with aiokv.DataStore(tmp_path / "store") as store:
        assert store.read("kept") == {"n": 1}


def test_stats(client: httpx.Client) -> None:
    client.put("/v1/keys/st:1", json={"a": 1})
    stats = client.get("/v1/stats").json()
    assert set(stats) == {
        "live_keys",
        "live_bytes",
        "dead_bytes",
        "disk_bytes",
        "segment_count",
        "last_compaction",
    }
    assert stats["live_keys"] >= 1


def test_an_unknown_route_is_a_json_404(client: httpx.Client) -> None:
    response = client.get("/v2/nothing")
    assert response.status_code == 404
    assert response.json()["error"] == "NotFound"


class TestPage:
    def test_the_page_and_its_files(self, client: httpx.Client) -> None:
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
            asset = client.get(f"/page/{name}")
            assert asset.status_code == 200
            assert asset.headers["content-type"].startswith(kind)
            assert f"/page/{name}" in page.text

    def test_no_other_file_is_served(self, client: httpx.Client) -> None:
        for path in ("/page/index.py", "/page/..%2F__init__.py", "/page/"):
            assert client.get(path).status_code == 404


@pytest.fixture(scope="module")
def document(client: httpx.Client) -> dict[str, object]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    answer: dict[str, object] = response.json()
    return answer


class TestOpenAPI:
    def test_its_stats_are_the_store_stats_fields(self, document: dict[str, Any]) -> None:
        stats = document["components"]["schemas"]["Stats"]
        fields = [field.name for field in dataclasses.fields(aiokv.StoreStats)]
        assert list(stats["properties"]) == stats["required"] == fields

    def test_it_describes_every_route(self, document: dict[str, object]) -> None:
        paths = document["paths"]
        assert isinstance(paths, dict)
        assert set(paths) == {
            "/v1/keys/{key}",
            "/v1/keys/{key}/touch",
            "/v1/keys",
            "/v1/batch/read",
            "/v1/batch/create",
            "/v1/batch/delete",
            "/v1/stats",
            "/healthz",
            "/openapi.json",
        }
        assert set(paths["/v1/keys/{key}"]) == {"parameters", "get", "head", "put", "delete"}

    def test_its_references_resolve(self, document: dict[str, object]) -> None:
        schemas = document["components"]["schemas"]  # type: ignore[index]
        text = httpx.Response(200, json=document).text
        for ref in set(text.split('"$ref":"')[1:]):
            name = ref.split('"')[0].removeprefix("#/components/schemas/")
            assert name in schemas

"""The token, the loopback rule, the body caps, and errors that never show a traceback."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from _inprocess import in_process
from _server import HOST, TIMEOUT, TOKEN, Server

import aiokv
from aiokv.server import ServeRefusedError, serve
from aiokv.server.run import check_binding, is_loopback


class TestToken:
    ROUTES = (
        ("GET", "/v1/keys/k"),
        ("PUT", "/v1/keys/k"),
        ("DELETE", "/v1/keys/k"),
        ("HEAD", "/v1/keys/k"),
        ("POST", "/v1/keys/k/touch?ttl=1"),
        ("GET", "/v1/keys"),
        ("POST", "/v1/batch/read"),
        ("POST", "/v1/batch/create"),
        ("POST", "/v1/batch/delete"),
        ("GET", "/v1/stats"),
        ("GET", "/openapi.json"),
        ("GET", "/no/such/route"),
    )

    @pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x", TOKEN[:-1], TOKEN.lower()])
    @pytest.mark.parametrize(("method", "path"), ROUTES)
    def test_every_route_needs_the_token(
        self, guarded: Server, method: str, path: str, token: str | None
    ) -> None:
        with guarded.client(token) as client:
            response = client.request(method, path, json={"keys": []})
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        if method != "HEAD":
            assert response.json()["error"] == "Unauthorized"

    def test_the_token_lets_a_request_through(self, guarded: Server) -> None:
        with guarded.client(TOKEN) as client:
            assert client.put("/v1/keys/t:1", json={"a": 1}).status_code == 201
            assert client.get("/v1/keys/t:1").json() == {"a": 1}
            assert client.get("/v1/stats").status_code == 200

    def test_a_bare_token_without_bearer_is_refused(self, guarded: Server) -> None:
        with httpx.Client(base_url=guarded.url, timeout=TIMEOUT) as client:
            response = client.get("/v1/stats", headers={"Authorization": TOKEN})
        assert response.status_code == 401

    def test_healthz_and_the_page_need_no_token(self, guarded: Server) -> None:
        with guarded.client() as client:
            assert client.get("/healthz").status_code == 200
            assert "<title>aiokv</title>" in client.get("/").text
            assert client.get("/page/app.js").status_code == 200
            assert client.get("/page/style.css").status_code == 200


class TestLoopbackRule:
    @pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"])
    def test_loopback_addresses(self, host: str) -> None:
        assert is_loopback(host)
        check_binding(host, None)

    @pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "example.com", ""])
    def test_any_other_host_is_refused_without_a_token(self, host: str) -> None:
        assert not is_loopback(host)
        with pytest.raises(ServeRefusedError, match="not a loopback address"):
            check_binding(host, None)
        check_binding(host, TOKEN)

    def test_serve_refuses_before_it_opens_the_store(self, tmp_path: Path) -> None:
        with pytest.raises(ServeRefusedError, match="without a token"):
            serve(tmp_path / "store", host="0.0.0.0", port=1, token=None)
        assert not (tmp_path / "store").exists()

    @pytest.mark.parametrize("token", ["", " padded ", "new\nline"])
    def test_a_token_no_client_could_send_is_refused(self, token: str) -> None:
        with pytest.raises(ServeRefusedError, match="token"):
            check_binding("127.0.0.1", token)


def raw_response_head(port: int, request: bytes) -> bytes:
    """Send ``request`` as it is and read the answer's status line and headers."""
    with socket.create_connection((HOST, port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


class TestBodyCaps:
    def test_a_declared_2_mib_body_is_refused_before_it_is_sent(self, server: Server) -> None:
        """413 comes back while the client has sent 1 KiB of the 2 MiB it announced."""
        head = (
            b"PUT /v1/keys/cap:1 HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2097152\r\n\r\n"
        )
        answer = raw_response_head(server.port, head + b"{" + b" " * 1023)
        assert answer.startswith(b"HTTP/1.1 413 "), answer

    def test_a_2_mib_body_is_413(self, client: httpx.Client) -> None:
        response = client.put("/v1/keys/cap:2", content=b"{" + b" " * 2**21 + b"}")
        assert response.status_code == 413
        assert response.json()["error"] == "BodyTooLarge"

    def test_a_batch_body_over_64_mib_is_refused_by_its_length(self, server: Server) -> None:
        head = (
            b"POST /v1/batch/create HTTP/1.1\r\nHost: localhost\r\nContent-Length: 67108865\r\n\r\n"
        )
        assert raw_response_head(server.port, head).startswith(b"HTTP/1.1 413 ")

    async def test_a_streamed_body_is_cut_off_at_the_cap(self, tmp_path: Path) -> None:
        """Without a Content-Length the server counts as it reads, and stops past 1 MiB."""
        sent = 0

        async def endless() -> AsyncIterator[bytes]:
            nonlocal sent
            for _ in range(1024):  # 64 MiB at most
                sent += 65536
                yield b" " * 65536

        async with in_process(aiokv.AsyncDataStore(tmp_path / "store")) as client:
            response = await client.put("/v1/keys/cap:3", content=endless())
        assert response.status_code == 413
        assert sent <= 2**20 + 65536


class TestErrors:
    async def test_an_unexpected_failure_is_a_500_without_a_traceback(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store = aiokv.AsyncDataStore(tmp_path / "store")

        async def broken(key: str) -> dict[str, object]:
            raise RuntimeError("secret internals")

        monkeypatch.setattr(store, "read", broken)
        async with in_process(store) as client:
            response = await client.get("/v1/keys/anything")
        assert response.status_code == 500
        assert response.json() == {
            "error": "InternalError",
            "message": "the server failed to handle this request",
        }
        assert "secret" not in response.text

    async def test_a_full_store_is_507(self, tmp_path: Path) -> None:
        store = aiokv.AsyncDataStore(tmp_path / "store", max_size=2**20, compact_dead_ratio=None)
        async with in_process(store) as client:
            for i in range(200):
                response = await client.put(f"/v1/keys/full:{i}", json={"s": "x" * 16_000})
                if response.status_code != 201:
                    break
            assert response.status_code == 507
            assert response.json()["error"] == "StoreFullError"
            batch = await client.post(
                "/v1/batch/create", json={"items": {"more": {"s": "x" * 16_000}}}
            )
            assert batch.status_code == 507

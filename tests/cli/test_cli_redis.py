"""``aiokv --url redis://...``: the command and ``aiokv serve`` on a Redis store, against a
real ``redis-server`` on a loopback port."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import _redis
import httpx
import pytest
from _cli import no_traceback, popen, run

from aiokv.redis import RedisStore

pytestmark = [pytest.mark.slow, _redis.needs_redis]  # each test runs fresh interpreters


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_redis.RedisNode]:
    with _redis.redis_node(tmp_path_factory.mktemp("redis")) as started:
        yield started


@pytest.fixture
def url(node: _redis.RedisNode) -> str:
    node.command("FLUSHALL")
    return node.url


def test_the_key_commands_on_a_redis_store(url: str) -> None:
    assert run("--url", url, "create", "user:1", '{"name": "Ada"}', "--ttl", "60").status == 0
    read = run("--url", url, "read", "user:1")
    assert (read.status, json.loads(read.stdout)) == (0, {"name": "Ada"})
    with RedisStore(url) as store:  # what the command wrote, as the library reads it
        assert store.read("user:1") == {"name": "Ada"}
        store.create("user:2", {"name": "Bob"})
    keys = run("--url", url, "keys", "--prefix", "user:")
    assert sorted(json.loads(keys.stdout)) == ["user:1", "user:2"]
    stats = run("--url", url, "stats")
    assert json.loads(stats.stdout)["live_keys"] == 2
    assert run("--url", url, "delete", "user:1").status == 0
    missing = run("--url", url, "read", "user:1")
    assert missing.status == 1
    assert missing.lines == ["aiokv: key 'user:1' not found"]


def test_what_redis_has_not_is_a_usage_error_in_one_line(url: str) -> None:
    for command in (["verify"], ["backup", "/tmp/aiokv-nowhere"]):
        ran = run("--url", url, *command)
        assert ran.status == 2
        assert len(ran.lines) == 1
        assert "not available on Redis" in ran.stderr


def test_path_and_url_together_are_a_usage_error(url: str, tmp_path: Path) -> None:
    ran = run("--path", tmp_path / "s", "--url", url, "keys")
    assert ran.status == 2
    assert "--path or --url, not both" in ran.stderr


def test_a_server_that_cannot_be_reached_is_status_5_in_one_line() -> None:
    port = _redis.free_port()
    ran = run("--url", f"redis://127.0.0.1:{port}/0", "read", "k")
    assert ran.status == 5
    assert len(ran.lines) == 1
    assert "unavailable" in ran.stderr


def test_export_from_redis_piped_into_a_local_store(url: str, tmp_path: Path) -> None:
    with RedisStore(url) as store:
        store.create_many({f"k{i}": {"i": i, "l": [i]} for i in range(300)})
    exporter = popen(["--url", url, "export", "-"], stdout=subprocess.PIPE)
    importer = subprocess.run(
        [*_command("--path", str(tmp_path / "local"), "import", "-")],
        stdin=exporter.stdout,
        capture_output=True,
        timeout=60,
    )
    assert exporter.wait(timeout=60) == 0
    assert exporter.stdout is not None
    exporter.stdout.close()
    assert importer.returncode == 0, importer.stderr
    no_traceback(importer.stderr.decode())
    read = run("--path", tmp_path / "local", "read", "k299")
    assert json.loads(read.stdout) == {"i": 299, "l": [299]}


def _command(*args: str) -> list[str]:
    from _cli import COMMAND

    return [*COMMAND, *args]


def test_serve_a_redis_store_over_http(url: str) -> None:
    port = _redis.free_port()
    server = popen(
        ["--url", url, "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, server)
        created = httpx.put(f"{base}/v1/keys/user%3A1", json={"name": "Ada"}, timeout=5)
        assert created.status_code in (200, 201), created.text
        assert httpx.get(f"{base}/v1/keys/user%3A1", timeout=5).json() == {"name": "Ada"}
        with RedisStore(url) as store:
            assert store.read("user:1") == {"name": "Ada"}
    finally:
        server.terminate()
        server.wait(timeout=15)


def _wait_healthy(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited"
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise TimeoutError(f"no 200 from {base}/healthz")

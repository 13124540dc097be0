"""What the Redis store adds to the contract, or says differently: slots and atomicity on a
cluster, its options, the storage layout other Redis clients see, its blocking face."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _redis
import orjson
import pytest
import redis.asyncio
from _backends import listed

from aiokv import (
    InvalidKeyError,
    InvalidOptionError,
    KeyExistsError,
    NotSupportedError,
    StoreClosedError,
    StoreLockedError,
    StoreUnavailableError,
)
from aiokv.redis import AsyncRedisStore, RedisStore

pytestmark = _redis.needs_redis


def spread_keys(count: int) -> dict[str, dict[str, int]]:
    return {f"spread:{i}": {"i": i} for i in range(count)}


# -- a cluster: one slot is atomic, several are refused unless asked -----------------------


async def test_a_batch_across_slots_is_refused_before_anything_is_written(
    redis_cluster_server: _redis.RedisCluster,
) -> None:
    async with AsyncRedisStore(redis_cluster_server.url, prefix="spread:") as store:
        with pytest.raises(InvalidKeyError, match=r"different slots.*hash tag") as caught:
            await store.create_many(spread_keys(20))
        assert "atomic=False" in str(caught.value)
        assert await listed(store.keys()) == []
        await store.create_many(spread_keys(20), atomic=False)
        with pytest.raises(InvalidKeyError, match="different slots"):
            await store.delete_many(list(spread_keys(20)))
        assert len(await store.read_many(spread_keys(20))) == 20
        assert await store.delete_many(list(spread_keys(20)), atomic=False) == 20


async def test_a_split_batch_writes_the_new_keys_and_names_the_live_ones(
    redis_cluster_server: _redis.RedisCluster,
) -> None:
    async with AsyncRedisStore(redis_cluster_server.url, prefix="split:") as store:
        await store.create("spread:3", {"old": True})
        with pytest.raises(KeyExistsError, match=r"'spread:3'.*skipped, the other keys written"):
            await store.create_many(spread_keys(10), atomic=False)
        assert await store.read("spread:3") == {"old": True}
        assert len(await store.read_many(spread_keys(10))) == 10
        await store.delete_many(list(spread_keys(10)), atomic=False)


async def test_a_hash_tag_in_the_prefix_keeps_a_store_in_one_slot(
    redis_cluster_server: _redis.RedisCluster,
) -> None:
    async with AsyncRedisStore(redis_cluster_server.url, prefix="{app}:") as store:
        await store.create_many(spread_keys(500))
        assert await store.delete_many(list(spread_keys(500))) == 500
    slots = {redis_cluster_server.slot_of(f"{{app}}:spread:{i}") for i in range(500)}
    assert len(slots) == 1


async def test_atomic_is_accepted_on_one_server_too(redis_server: _redis.RedisNode) -> None:
    async with AsyncRedisStore(redis_server.url, prefix="one-node:") as store:
        await store.create_many(spread_keys(5), atomic=False)
        await store.create_many({"x": {}}, atomic=True)
        with pytest.raises(InvalidOptionError, match="atomic must be a bool"):
            await store.create_many({"y": {}}, atomic="yes")
        assert await store.delete_many([*spread_keys(5), "x"], atomic=False) == 6


# -- what other Redis clients see ------------------------------------------------------------


async def test_values_are_their_compact_json_under_prefix_and_key(
    redis_server: _redis.RedisNode,
) -> None:
    value = {"name": "Ada", "tags": ["a"], "n": 1.5}
    async with AsyncRedisStore(redis_server.url, prefix="layout:") as store:
        await store.create("user:1", value, ttl=100)
        raw = redis.asyncio.Redis.from_url(redis_server.url)
        try:
            assert await raw.get("layout:user:1") == orjson.dumps(value)
            assert 99_000 < await raw.pttl("layout:user:1") <= 100_000
            await raw.set("layout:junk", b"not json")
            await raw.set("layout:" + "k" * 40, b"{}")  # too long to be one of its keys
        finally:
            await raw.aclose()
        assert sorted(await listed(store.keys())) == ["junk", "user:1"]
        with pytest.raises(Exception, match="holds no aiokv value") as caught:
            await store.read("junk")
        assert type(caught.value).__name__ == "CorruptionError"
        await store.delete_many(["junk", "user:1"])


async def test_a_prefix_with_glob_characters_sees_only_its_own_keys(
    redis_server: _redis.RedisNode,
) -> None:
    async with (
        AsyncRedisStore(redis_server.url, prefix="g*:") as star,
        AsyncRedisStore(redis_server.url, prefix="gx:") as plain,
    ):
        await star.create("k", {"store": "star"})
        await plain.create("k", {"store": "plain"})
        assert await listed(star.items()) == [("k", {"store": "star"})]
        assert await listed(plain.items()) == [("k", {"store": "plain"})]
        await star.delete("k")
        await plain.delete("k")


# -- options and the lifecycle ---------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"url": 5},
        {"url": "http://localhost"},
        {"url": "redis://"},
        {"url": "unix:///tmp/x.sock", "cluster": True},
        {"prefix": b"p:"},
        {"prefix": "\udc00"},
        {"cluster": "yes"},
        {"timeout": 0},
        {"timeout": float("nan")},
        {"timeout": True},
        {"retries": -1},
        {"retries": 1.5},
    ],
)
def test_bad_options_are_refused_when_made(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidOptionError):
        AsyncRedisStore(**kwargs)


async def test_what_redis_does_itself_is_not_the_stores(redis_server: _redis.RedisNode) -> None:
    async with AsyncRedisStore(redis_server.url, prefix="tools:") as store:
        assert await store.compact() == 0
        with pytest.raises(NotSupportedError, match="BGSAVE"):
            await store.backup("/tmp/nowhere")
        assert isinstance(NotSupportedError("x"), NotImplementedError)
    with pytest.raises(StoreClosedError):
        await store.compact()


def test_the_blocking_face(redis_server: _redis.RedisNode) -> None:
    with RedisStore(redis_server.url, prefix="blocking:") as store:
        assert store.prefix == "blocking:"
        store.create("a", {"v": 1})
        store.create_many({"b": {"v": 2}, "c": {"v": 3}})
        assert store.read_many(["a", "b", "z"]) == {"a": {"v": 1}, "b": {"v": 2}}
        with store.keys() as keys:
            assert sorted(keys) == ["a", "b", "c"]
        assert store.delete_many(["a", "b", "c"]) == 3
    with pytest.raises(StoreClosedError):
        store.read("a")


# -- exclusive=True: one holder at a time -----------------------------------------------------


async def test_an_exclusive_store_keeps_other_exclusive_stores_out(
    redis_server: _redis.RedisNode,
) -> None:
    url = redis_server.url
    async with AsyncRedisStore(url, prefix="lease:", exclusive=True) as holder:
        await holder.create("k", {"v": 1})
        second = AsyncRedisStore(url, prefix="lease:", exclusive=True)
        with pytest.raises(StoreLockedError, match="held by another store"):
            await second.open()
        async with AsyncRedisStore(url, prefix="lease:") as shared:  # not exclusive: let in
            assert await shared.read("k") == {"v": 1}
        async with AsyncRedisStore(url, prefix="other:", exclusive=True):
            pass  # another prefix is another store
        assert await listed(holder.keys()) == ["k"]  # the lease is not one of its keys
        assert (await holder.stats()).live_keys == 1
        await holder.delete("k")
    async with AsyncRedisStore(url, prefix="lease:", exclusive=True):
        pass  # given back at close


@pytest.mark.slow
async def test_a_store_whose_lease_was_taken_stops_answering(
    redis_server: _redis.RedisNode,
) -> None:
    async with AsyncRedisStore(redis_server.url, prefix="lost:", exclusive=True) as holder:
        raw = redis.asyncio.Redis.from_url(redis_server.url)
        try:
            names = [name async for name in raw.scan_iter(match=b"lost:*")]
            assert len(names) == 1
            assert 0 < await raw.pttl(names[0]) <= 10_000
            await raw.set(names[0], b"someone else", px=10_000)
        finally:
            await raw.aclose()
        with pytest.raises(StoreLockedError, match=r"lease .* was lost"):
            await _ask_until_refused(holder)


async def _ask_until_refused(store: AsyncRedisStore) -> None:
    for _ in range(50):  # renewed every 3.3 s: it finds out within one turn
        await store.exists("k")
        await asyncio.sleep(0.1)


def test_options_redis_has_not_are_refused_clearly() -> None:
    with pytest.raises(InvalidOptionError, match="not available on a Redis Cluster"):
        AsyncRedisStore("redis+cluster://127.0.0.1:7000", durability="fsync")
    with pytest.raises(InvalidOptionError, match="'flush' or 'fsync'"):
        AsyncRedisStore(durability="always")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError, match="exclusive must be a bool"):
        AsyncRedisStore(exclusive=1)  # type: ignore[arg-type]


# -- durability="fsync": WAITAOF after each write -------------------------------------------


async def test_fsync_is_refused_by_a_server_without_waitaof(
    redis_server: _redis.RedisNode,
) -> None:
    """Debian's Redis 7.0 has no WAITAOF: refused at open, naming the version."""
    if _version(redis_server) >= (7, 2):
        pytest.skip("this redis-server has WAITAOF")
    store = AsyncRedisStore(redis_server.url, durability="fsync")
    with pytest.raises(InvalidOptionError, match="needs WAITAOF"):
        await store.open()


@_redis.needs_valkey
async def test_fsync_writes_are_on_disk_when_they_return(tmp_path: Path) -> None:
    args = ("--appendonly", "yes", "--appendfsync", "everysec")
    with _redis.redis_node(tmp_path, *args, binary=_redis.VALKEY_SERVER) as node:
        async with AsyncRedisStore(node.url, prefix="d:", durability="fsync") as store:
            await store.create("a", {"v": 1}, ttl=60)
            await store.create_many({"b": {"v": 2}, "c": {"v": 3}})
            await store.touch("a", None)
            await store.delete("b")
            assert await store.delete_many(["c", "z"]) == 1
            with pytest.raises(KeyExistsError):
                await store.create("a", {"v": 9})
            assert await store.read("a") == {"v": 1}
            # Every write was followed by its WAITAOF, on its connection (6 writes).
            assert node.info("commandstats")["cmdstat_waitaof"].startswith("calls=6,")
        node.kill()  # no shutdown save: what is read back came from the AOF
        node.restart()
        async with AsyncRedisStore(node.url, prefix="d:") as store:
            assert await store.read_many(["a", "b", "c"]) == {"a": {"v": 1}}


@_redis.needs_valkey
async def test_fsync_needs_an_append_only_file(tmp_path: Path) -> None:
    with _redis.redis_node(tmp_path, binary=_redis.VALKEY_SERVER) as node:
        store = AsyncRedisStore(node.url, durability="fsync")
        with pytest.raises(InvalidOptionError, match="appendonly yes"):
            await store.open()


def _version(node: _redis.RedisNode) -> tuple[int, ...]:
    return tuple(int(part) for part in node.info("server")["redis_version"].split(".")[:2])


# -- TLS: rediss:// --------------------------------------------------------------------------


needs_openssl = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="needs the openssl command (Debian package openssl)"
)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A redis-server speaking TLS only, on a loopback port, with a self-signed certificate:
    its port and the certificate."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    new_pair = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        [*new_pair, *subject, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    port = _redis.free_port()
    tls = ["--port", "0", "--tls-port", str(port), "--tls-auth-clients", "no"]
    tls += ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    server = subprocess.Popen(
        [str(_redis.REDIS_SERVER), "--bind", "127.0.0.1", "--save", "", *tls],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield port, cert
    finally:
        server.kill()
        server.wait(timeout=10)


@needs_openssl
async def test_rediss_talks_tls_and_checks_the_certificate(
    tls_server: tuple[int, Path],
) -> None:
    port, cert = tls_server
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}"
    store = await _opened_within(AsyncRedisStore(url, prefix="tls:", timeout=1.0), 10.0)
    try:
        await store.create("k", {"over": "tls"})
        assert await store.read("k") == {"over": "tls"}
    finally:
        await store.close()
    unknown = AsyncRedisStore(f"rediss://127.0.0.1:{port}/0", timeout=1.0, retries=0)
    with pytest.raises(StoreUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
        await unknown.open()  # a certificate no CA it trusts signed


async def _opened_within(store: AsyncRedisStore, seconds: float) -> AsyncRedisStore:
    """``store`` opened, trying again while its server starts (bounded)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            await store.open()
            return store
        except StoreUnavailableError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)

"""One suite, three backends: every test here runs on the local store, on one Redis server
and on a Redis Cluster of three masters, through the ``backend`` fixture.

The Redis servers are real ones on loopback ports (see ``tests/_redis.py``), started once a
session and shared: each test's stores have a prefix of their own, as separate apps sharing a
server would. On the cluster the default prefix holds a hash tag (``{t12}:``), which keeps a
store in one slot so that its batches are atomic; a test that wants its keys spread over the
slots asks for a prefix without one. Where ``redis-server`` is missing, the Redis cases skip,
naming the package.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import _redis
import pytest
from _backends import Backend

from aiokv import ManualClock

BACKENDS = ("local", "redis", "cluster")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_redis.RedisNode]:
    if _redis.REDIS_SERVER is None or _redis.REDIS_CLI is None:
        pytest.skip("needs redis-server on PATH (Debian package redis-server)")
    with _redis.redis_node(tmp_path_factory.mktemp("redis")) as node:
        yield node


@pytest.fixture(scope="session")
def redis_cluster_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[_redis.RedisCluster]:
    if _redis.REDIS_SERVER is None or _redis.REDIS_CLI is None:
        pytest.skip("needs redis-server and redis-cli on PATH (Debian package redis-server)")
    with _redis.redis_cluster(tmp_path_factory.mktemp("cluster"), masters=3, replicas=0) as c:
        yield c


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock) -> Backend:
    url: str | None = None
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url
    elif request.param == "cluster":
        url = request.getfixturevalue("redis_cluster_server").url
    return Backend(request.param, url, tmp_path, clock)


@pytest.fixture
async def kv(backend: Backend) -> AsyncIterator[Any]:
    """An open store of the backend (typed Any: the tests call what the contract names, and
    the Redis store's extra ``atomic`` argument)."""
    async with backend.make() as store:
        yield store

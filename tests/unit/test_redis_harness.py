"""The Redis test harness (tests/_redis.py) itself: real servers start, answer, die and come
back on their ports; a cluster comes up whole and fails over, keeping a replicated write."""

from __future__ import annotations

from pathlib import Path

import _redis
import pytest
import redis
from _redis import needs_redis, redis_cluster, redis_node
from redis.cluster import ClusterNode, RedisCluster

pytestmark = needs_redis


def cluster_client(cluster: _redis.RedisCluster) -> RedisCluster:
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in cluster.startup_nodes],
        decode_responses=True,
        socket_timeout=5.0,
    )


def test_a_node_answers_and_comes_back_on_its_port_after_a_kill(tmp_path: Path) -> None:
    with redis_node(tmp_path, "--maxmemory", "2mb", "--maxmemory-policy", "noeviction") as node:
        assert node.port != _redis.DEFAULT_PORT
        assert node.url == f"redis://127.0.0.1:{node.port}/0"
        with redis.Redis.from_url(node.url, socket_timeout=5.0) as client:
            assert client.ping() is True
            assert client.config_get("maxmemory") == {"maxmemory": str(2 * 2**20)}
            assert client.config_get("save") == {"save": ""}
            client.set("k", "v")
        port, first = node.port, node.process
        node.kill()
        assert not node.running
        with pytest.raises(ConnectionRefusedError):
            _redis.command(port, "PING")
        node.restart()
        assert node.port == port
        assert node.process is not first
        with redis.Redis.from_url(node.url, socket_timeout=5.0) as client:
            assert client.ping() is True
            assert client.get("k") is None  # no persistence: a restart starts empty
    assert not node.running


def test_a_server_that_cannot_start_fails_with_its_log(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="no-such-directive"),
        redis_node(tmp_path, "--no-such-directive", "1"),
    ):
        pass


def test_three_masters_serve_keys_in_different_slots(tmp_path: Path) -> None:
    with redis_cluster(tmp_path, masters=3, replicas=0) as cluster:
        assert len(cluster.nodes) == 3
        assert cluster.url == f"redis+cluster://127.0.0.1:{cluster.nodes[0].port}"
        for node in cluster.nodes:
            info = node.command("CLUSTER", "INFO")
            assert isinstance(info, str)
            assert "cluster_state:ok" in info
            assert "cluster_slots_assigned:16384" in info
        keys = [f"key-{index}" for index in range(30)]
        with cluster_client(cluster) as client:
            for key in keys:
                assert client.set(key, f"value of {key}")
            for key in keys:
                assert client.get(key) == f"value of {key}"
        # The keys are spread over the three masters, each key on the master of its slot.
        masters = {cluster.master_for_slot(cluster.slot_of(key)).port for key in keys}
        assert masters == {node.port for node in cluster.nodes}
        for key in keys:
            owner = cluster.master_for_slot(cluster.slot_of(key))
            assert owner.command("GET", key) == f"value of {key}"


@pytest.mark.slow
def test_a_replica_takes_over_a_killed_master_with_its_replicated_write(
    tmp_path: Path,
) -> None:
    with redis_cluster(tmp_path, masters=3, replicas=1) as cluster:
        assert len(cluster.nodes) == 6
        roles = [node.info("replication")["role"] for node in cluster.nodes]
        assert sorted(roles) == ["master"] * 3 + ["slave"] * 3
        key = "before-the-failover"
        master = cluster.master_for_slot(cluster.slot_of(key))
        # WAIT on the SET's connection: the replica has it.
        assert master.commands(("SET", key, "kept"), ("WAIT", 1, 1000)) == ["OK", 1]
        cluster.kill_master(master)
        promoted = cluster.wait_for_failover(timeout=15.0)
        assert promoted is not master
        assert promoted.info("replication")["role"] == "master"
        assert cluster.master_for_slot(cluster.slot_of(key)) is promoted
        assert promoted.command("GET", key) == "kept"
        with cluster_client(cluster) as client:
            assert client.get(key) == "kept"
            assert client.set("after-the-failover", "written")
        # The old master comes back on its port as a replica of the promoted node.
        master.restart()
        cluster.wait_ok(timeout=15.0)
        assert master.info("replication")["role"] == "slave"
        assert master.info("replication")["master_port"] == str(promoted.port)

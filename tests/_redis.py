"""Real Redis servers on loopback for the Redis backend's tests: one node, or a small cluster.

Each server is Debian's ``redis-server`` run in the foreground on a free port of 127.0.0.1
(never the default 6379, which a system service may hold), configured on its command line,
with no persistence, its own directory and its log in that directory. Where ``redis-server``
or ``redis-cli`` is missing, the tests marked :data:`needs_redis` are skipped, saying why.

The helpers speak RESP to the servers themselves (:func:`command`), so they need no client
library; the tests use redis-py against them.

Fixtures are left to the test modules. A module-scoped (or session-scoped) node, say::

    @pytest.fixture(scope="module")
    def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisNode]:
        with redis_node(tmp_path_factory.mktemp("redis")) as started:
            yield started

    @pytest.fixture
    def empty(node: RedisNode) -> RedisNode:
        node.command("FLUSHALL")  # each test starts from an empty server
        return node

Start servers from the main thread: Linux sends the parent-death signal that stops an orphaned
server when the *thread* that started it ends, not only the process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, TypeAlias

import pytest
from _proc import die_with_parent, loopback_port

HOST = "127.0.0.1"
DEFAULT_PORT = 6379
BUS_OFFSET = 10000  # a cluster node's bus listens on its port + 10000
SLOTS = 16384
START_DEADLINE = 10.0  # seconds for a started server to answer PING
CLUSTER_DEADLINE = 20.0  # seconds for a created cluster to be ok on every node
STOP_DEADLINE = 5.0  # seconds after SIGTERM before SIGKILL
REPLY_TIMEOUT = 2.0  # seconds for one command's reply

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
VALKEY_SERVER = shutil.which("valkey-server")
"""Valkey (a fork of Redis 7.2, from Debian's bookworm-backports), for what Redis 7.0 has not:
WAITAOF, behind the Redis store's durability="fsync"."""

needs_redis = pytest.mark.skipif(
    REDIS_SERVER is None or REDIS_CLI is None,
    reason="needs redis-server and redis-cli on PATH "
    "(Debian package redis-server: apt-get install redis-server)",
)

needs_valkey = pytest.mark.skipif(
    VALKEY_SERVER is None,
    reason="needs valkey-server on PATH (Debian package valkey-server, from bookworm-backports)",
)

Reply: TypeAlias = "str | int | list[Reply] | None"


class ReplyError(Exception):
    """The server answered a command with an error (``-ERR ...``)."""


# -- ports


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


def free_port(*, bus: bool = False) -> int:
    """A port of 127.0.0.1 that nothing listens on now; with ``bus``, port + 10000 too (a
    cluster node's bus). Another process may still take it before the server binds: starting
    a node with no port given tries a new one when that happens."""
    for _ in range(100):
        port = loopback_port()
        if port == DEFAULT_PORT:
            continue
        if bus and (port + BUS_OFFSET > 65535 or not _bindable(port + BUS_OFFSET)):
            continue
        return port
    raise RuntimeError("no free port (and bus port) on 127.0.0.1 in 100 tries")


# -- speaking RESP


def _encode(args: Sequence[object]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _read_reply(stream: BinaryIO) -> Reply:
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError(f"the connection closed mid-reply: {line!r}")
    kind, body = line[:1], line[1:-2].decode("utf-8", "replace")
    if kind == b"+":
        return body
    if kind == b"-":
        raise ReplyError(body)
    if kind == b":":
        return int(body)
    if kind == b"$":
        if int(body) < 0:
            return None
        data = stream.read(int(body) + 2)
        return data[:-2].decode("utf-8", "replace")
    if kind == b"*":
        if int(body) < 0:
            return None
        return [_read_reply(stream) for _ in range(int(body))]
    raise ConnectionError(f"not a RESP2 reply: {line!r}")


def commands(port: int, *calls: Sequence[object], timeout: float = REPLY_TIMEOUT) -> list[Reply]:
    """Send ``calls`` (each a command and its arguments) to the server on ``port``, in order
    over one new connection, and return their replies; bulk strings come back decoded as
    UTF-8. One connection matters to WAIT (it waits for the offset of its own connection's
    last write), MULTI, SELECT and CLIENT commands.

    :raises ReplyError: the server answered one with an error.
    :raises OSError: no connection, or no reply within ``timeout`` seconds.
    """
    with socket.create_connection((HOST, port), timeout=timeout) as connection:
        connection.sendall(b"".join(_encode(call) for call in calls))
        with connection.makefile("rb") as stream:
            return [_read_reply(stream) for _ in calls]


def command(port: int, *args: object, timeout: float = REPLY_TIMEOUT) -> Reply:
    """One command to the server on ``port`` over a new connection, and its reply (see
    :func:`commands`): a WAIT sent so waits for nothing."""
    (reply,) = commands(port, args, timeout=timeout)
    return reply


def _fields(text: Reply) -> dict[str, str]:
    """The ``name:value`` lines of an INFO or CLUSTER INFO reply."""
    assert isinstance(text, str), text
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {name: value for name, value in pairs}


# -- one server


class RedisNode:
    """One ``redis-server`` on 127.0.0.1, run in the foreground with its config on the command
    line: no RDB or AOF file, its working directory ``directory``, and its log (stdout and
    stderr of every start, appended) in ``directory/redis.log``.

    ``args`` come after the defaults and override them, e.g. ``"--maxmemory", "2mb",
    "--maxmemory-policy", "noeviction"``. With no ``port``, a free one is picked at the first
    start (again if it was taken meanwhile); later starts keep it.
    """

    def __init__(
        self, directory: Path, *args: str, port: int | None = None, binary: str | None = None
    ) -> None:
        self.binary = binary or REDIS_SERVER
        if self.binary is None:
            raise RuntimeError("redis-server is not on PATH")
        self.directory = directory
        self.args = args
        self.cluster = "--cluster-enabled" in args
        self._port = port
        self._fixed_port = port is not None
        self.log = directory / "redis.log"
        self._log_start = 0  # where the log of the latest start begins
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the node has no port before its first start")
        return self._port

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __repr__(self) -> str:
        return f"<RedisNode {HOST}:{self._port} {'running' if self.running else 'stopped'}>"

    def log_text(self) -> str:
        return self.log.read_text("utf-8", errors="replace") if self.log.exists() else ""

    def command(self, *args: object, timeout: float = REPLY_TIMEOUT) -> Reply:
        """One command to this server (see :func:`command`)."""
        return command(self.port, *args, timeout=timeout)

    def commands(self, *calls: Sequence[object], timeout: float = REPLY_TIMEOUT) -> list[Reply]:
        """Commands to this server over one connection (see :func:`commands`)."""
        return commands(self.port, *calls, timeout=timeout)

    def info(self, section: str) -> dict[str, str]:
        return _fields(self.command("INFO", section))

    def launch(self) -> None:
        """Start the process and return at once; :meth:`wait_ready` waits for its PING."""
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        if self._port is None:
            self._port = free_port(bus=self.cluster)
        self.directory.mkdir(parents=True, exist_ok=True)
        config = [
            *("--port", str(self._port), "--bind", HOST, "--protected-mode", "yes"),
            *("--daemonize", "no", "--dir", str(self.directory), "--logfile", ""),
            *("--save", "", "--appendonly", "no"),
            # A replica's first sync starts at once, not after the default 5 s wait for more.
            *("--repl-diskless-sync-delay", "0"),
            # DEBUG SLEEP and friends, for tests that need a stalled server (loopback only).
            *("--enable-debug-command", "local"),
            *self.args,
        ]
        self._log_start = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as sink:
            self.process = subprocess.Popen(
                [str(self.binary), *config],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                preexec_fn=(
                    functools.partial(die_with_parent, os.getpid(), signal.SIGKILL)
                    if sys.platform == "linux"
                    else None
                ),
            )

    def wait_ready(self, timeout: float = START_DEADLINE) -> RedisNode:
        """Wait for the launched server to answer PING. A port picked at launch and taken by
        another process meanwhile is replaced by a new one, up to three times; a port given
        (or kept from an earlier start) is not.

        :raises RuntimeError: the server exited or did not answer within ``timeout``; the
            message holds its log.
        """
        assert self.process is not None
        deadline = time.monotonic() + timeout
        retries = 3
        while True:
            if self.process.poll() is not None:
                log = self.log_text()[self._log_start :]
                if "Address already in use" in log and not self._fixed_port and retries:
                    retries -= 1
                    self._port = None
                    self.launch()
                    continue
                raise RuntimeError(f"redis-server exited ({self.process.returncode}):\n{log}")
            try:
                if self.command("PING", timeout=0.5) == "PONG":
                    self._fixed_port = True  # restarts keep the port the clients were given
                    return self
            except (OSError, ReplyError):
                pass
            if time.monotonic() > deadline:
                self.kill()
                log = self.log_text()[self._log_start :]
                raise RuntimeError(f"no PONG from {self!r} in {timeout} s:\n{log}")
            time.sleep(0.02)

    def start(self, timeout: float = START_DEADLINE) -> RedisNode:
        """Start the server and wait until it answers PING (bounded by ``timeout``)."""
        self.launch()
        return self.wait_ready(timeout)

    def kill(self) -> None:
        """SIGKILL the server (a crash: no shutdown, no goodbye to replicas) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait(timeout=STOP_DEADLINE)

    def terminate(self) -> None:
        """Send SIGTERM (Redis's shutdown) without waiting; see :meth:`stop`."""
        if self.running:
            assert self.process is not None
            self.process.terminate()

    def stop(self, timeout: float = STOP_DEADLINE) -> None:
        """SIGTERM, and SIGKILL if the server has not exited after ``timeout`` seconds."""
        self.terminate()
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self, timeout: float = START_DEADLINE) -> RedisNode:
        """Stop the server if it runs and start it again on the same port, in the same
        directory (a cluster node keeps its identity: ``nodes.conf`` is there)."""
        self.stop()
        return self.start(timeout)


def _fresh_directory(parent: Path, stem: str) -> Path:
    """``parent/stem``, or ``stem-2``, ``stem-3``... if taken: two nodes never share one."""
    for index in range(1, 1000):
        candidate = parent / (stem if index == 1 else f"{stem}-{index}")
        try:
            candidate.mkdir(parents=True)
        except FileExistsError:
            continue
        return candidate
    raise RuntimeError(f"no free directory name {stem}-N in {parent}")


@contextlib.contextmanager
def redis_node(directory: Path, *args: str, binary: str | None = None) -> Iterator[RedisNode]:
    """A started :class:`RedisNode` living in a new directory below ``directory`` (a test's
    ``tmp_path``, say), killed when the block ends however it ends; ``binary``: another
    server than ``redis-server`` (``valkey-server``)."""
    node = RedisNode(_fresh_directory(directory, "redis"), *args, binary=binary)
    try:
        yield node.start()
    finally:
        node.kill()


# -- a cluster


@dataclasses.dataclass(frozen=True)
class ClusterEntry:
    """One line of CLUSTER NODES: a node as the asked node sees it."""

    node_id: str
    port: int
    flags: frozenset[str]
    master_id: str | None
    slots: tuple[tuple[int, int], ...]  # inclusive ranges

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def failed(self) -> bool:
        return bool(self.flags & {"fail", "fail?", "handshake", "noaddr"})

    def owns(self, slot: int) -> bool:
        return any(first <= slot <= last for first, last in self.slots)


def _parse_cluster_nodes(text: Reply) -> list[ClusterEntry]:
    assert isinstance(text, str), text
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        address = fields[1].split("@", 1)[0]
        slots = []
        for item in fields[8:]:
            if item.startswith("["):
                continue  # a slot being migrated or imported
            first, _, last = item.partition("-")
            slots.append((int(first), int(last or first)))
        entries.append(
            ClusterEntry(
                node_id=fields[0],
                port=int(address.rsplit(":", 1)[1] or 0),
                flags=frozenset(fields[2].split(",")),
                master_id=None if fields[3] == "-" else fields[3],
                slots=tuple(sorted(slots)),
            )
        )
    return entries


CLUSTER_ARGS = (
    *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
    # A node unreachable for 1 s is failing, so a failover takes 2-3 s, not 20+.
    *("--cluster-node-timeout", "1000"),
    # A replica may be promoted however long it was cut off from its master.
    *("--cluster-replica-validity-factor", "0"),
)


class RedisCluster:
    """``masters`` primaries with ``replicas`` replicas each, every one a :class:`RedisNode`
    with its directory ``directory/node<i>``, joined by ``redis-cli --cluster create``.

    ``args`` are passed to every node after :data:`CLUSTER_ARGS` (and override them). Redis
    Cluster needs three masters at least.
    """

    def __init__(
        self, directory: Path, *, masters: int = 3, replicas: int = 1, args: Sequence[str] = ()
    ) -> None:
        if masters < 3:
            raise ValueError("redis-cli --cluster create needs 3 masters at least")
        if replicas < 0:
            raise ValueError("replicas must be 0 or more")
        self.masters = masters
        self.replicas = replicas
        count = masters * (1 + replicas)
        self.nodes = [
            RedisNode(directory / f"node{index}", *CLUSTER_ARGS, *args) for index in range(count)
        ]
        self._killed: dict[int, ClusterEntry] = {}  # port -> the entry before its kill

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [(HOST, node.port) for node in self.nodes]

    @property
    def url(self) -> str:
        """The first node's address, in the scheme the backend takes for a cluster."""
        return f"redis+cluster://{HOST}:{self.nodes[0].port}"

    def live_nodes(self) -> list[RedisNode]:
        return [node for node in self.nodes if node.running]

    def node_at(self, port: int) -> RedisNode:
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(f"no node of this cluster on port {port}")

    def start(self, timeout: float = CLUSTER_DEADLINE) -> RedisCluster:
        """Start every node (together), create the cluster, and wait until it is ok on every
        node with its replicas in sync (see :meth:`wait_ok`)."""
        for node in self.nodes:
            node.launch()
        for node in self.nodes:
            node.wait_ready()
        self._create(timeout)
        self.wait_ok(timeout)
        return self

    def _create(self, timeout: float) -> None:
        addresses = [f"{HOST}:{node.port}" for node in self.nodes]
        replicas = ("--cluster-replicas", str(self.replicas))
        done = subprocess.run(
            [str(REDIS_CLI), "--cluster", "create", *addresses, *replicas, "--cluster-yes"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"redis-cli --cluster create failed ({done.returncode}):\n"
                f"{done.stdout}\n{done.stderr}"
            )

    def view(self, node: RedisNode | None = None) -> list[ClusterEntry]:
        """CLUSTER NODES as ``node`` (by default the first live one) sees the cluster."""
        asked = node if node is not None else self.live_nodes()[0]
        return _parse_cluster_nodes(asked.command("CLUSTER", "NODES"))

    def slot_of(self, key: str | bytes) -> int:
        """The key's hash slot, as a live node computes it."""
        slot = self.live_nodes()[0].command("CLUSTER", "KEYSLOT", key)
        assert isinstance(slot, int), slot
        return slot

    def master_for_slot(self, slot: int) -> RedisNode:
        """The node that serves ``slot`` now, as the first live node sees it."""
        for entry in self.view():
            if entry.is_master and not entry.failed and entry.owns(slot):
                return self.node_at(entry.port)
        raise LookupError(f"no live master serves slot {slot}")

    def _not_ok(self) -> str | None:
        """Why the cluster is not ok now, or None when it is: on every live node
        cluster_state:ok with all 16384 slots served, the same slot owners (live nodes) in
        every node's view, and every live replica's link to its master up."""
        owners: dict[tuple[tuple[int, int], ...], int] | None = None
        for node in self.live_nodes():
            try:
                info = _fields(node.command("CLUSTER", "INFO"))
                view = self.view(node)
                replication = node.info("replication")
            except (OSError, ReplyError) as error:
                return f"{node!r}: {error}"
            if info.get("cluster_state") != "ok":
                return f"{node!r}: cluster_state:{info.get('cluster_state')}"
            if info.get("cluster_slots_ok") != str(SLOTS):
                return f"{node!r}: cluster_slots_ok:{info.get('cluster_slots_ok')}"
            seen = {entry.slots: entry.port for entry in view if entry.is_master and entry.slots}
            dead = [port for port in seen.values() if not self.node_at(port).running]
            if dead:
                return f"{node!r} sees slots served by the stopped node(s) on {dead}"
            if owners is None:
                owners = seen
            elif seen != owners:
                return f"{node!r} sees the slot owners {seen}, another node {owners}"
            if replication.get("role") == "slave" and (
                replication.get("master_link_status") != "up"
            ):
                return f"{node!r}: master_link_status:{replication.get('master_link_status')}"
        return None

    def wait_ok(self, timeout: float = CLUSTER_DEADLINE) -> None:
        """Wait until the cluster is ok on every live node (see :meth:`_not_ok`).

        :raises TimeoutError: not within ``timeout`` seconds; the message says why.
        """
        deadline = time.monotonic() + timeout
        while (why := self._not_ok()) is not None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster was not ok within {timeout} s: {why}")
            time.sleep(0.05)

    def kill_master(self, node: RedisNode) -> None:
        """SIGKILL ``node``, a master with slots and at least one replica (so a failover can
        follow: :meth:`wait_for_failover`)."""
        view = self.view(node)
        (mine,) = [entry for entry in view if "myself" in entry.flags]
        if not (mine.is_master and mine.slots):
            raise ValueError(f"{node!r} is not a master with slots: {sorted(mine.flags)}")
        if not any(entry.master_id == mine.node_id for entry in view):
            raise ValueError(f"{node!r} has no replica to take over")
        self._killed[node.port] = mine
        node.kill()

    def wait_for_failover(self, timeout: float = 15.0) -> RedisNode:
        """Wait until a replica of each master killed by :meth:`kill_master` serves its slots
        and the cluster is ok again (:meth:`wait_ok`: a slot served by a stopped node is not
        ok); return the node promoted in place of the last one killed."""
        if not self._killed:
            raise RuntimeError("no master was killed with kill_master")
        self.wait_ok(timeout)
        promoted = [self.master_for_slot(entry.slots[0][0]) for entry in self._killed.values()]
        self._killed.clear()
        return promoted[-1]

    def stop(self, timeout: float = STOP_DEADLINE) -> None:
        """SIGTERM every node at once, then SIGKILL those not gone after ``timeout``."""
        for node in self.nodes:
            node.terminate()
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.kill()

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()


@contextlib.contextmanager
def redis_cluster(
    directory: Path, *, masters: int = 3, replicas: int = 1, args: Sequence[str] = ()
) -> Iterator[RedisCluster]:
    """A started :class:`RedisCluster` living in a new directory below ``directory``, every
    node killed when the block ends however it ends."""
    cluster = RedisCluster(
        _fresh_directory(directory, "redis-cluster"), masters=masters, replicas=replicas, args=args
    )
    try:
        yield cluster.start()
    finally:
        cluster.kill()

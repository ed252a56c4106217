"""Real components for integration tests: redis-server processes and servers.

Every Redis here is a real ``redis-server`` started on a free port, never a fake,
so tests can stop and restart it. When ``redis-server`` is missing the Redis
tests fail in CI and are skipped elsewhere, saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from broadcast_cli.hub import Hub
from broadcast_cli.message import Message
from broadcast_cli.protocol import SubscribeItem
from broadcast_cli.server.app import create_app
from broadcast_cli.server.config import ServerConfig
from broadcast_cli.server.http import HttpApi
from broadcast_cli.server.serve import ServerUrls, bind, urls_for
from broadcast_cli.server.websocket import WebSocketEndpoint
from tests.conftest import IN_CI, scaled, wait_until

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_redis() -> str:
    """The path of redis-server; fails (CI) or skips (elsewhere) when it is missing."""
    if REDIS_SERVER is None:
        message = "redis-server is not installed (apt-get install redis-server, or run the README's test command)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return REDIS_SERVER


def wait_for_redis(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Wait until the redis-server *process* answers PING on *port*; fail with the end of its *log*."""
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    deadline = time.monotonic() + scaled(15)
    try:
        while True:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    raise RuntimeError(f"redis-server did not start on port {port}:\n{text}") from None
                time.sleep(0.02)
    finally:
        client.close()


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """Stop *process* with SIGTERM, SIGKILL if it lingers, and reap it."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(scaled(10))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class RedisProcess:
    """A redis-server process of our own, on a free port, that can be stopped and restarted."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    persistent: bool = False
    """Keep the data across a restart (append-only file, fsync on every write)."""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        executable = require_redis()
        self.process = subprocess.Popen(
            [
                executable,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "yes" if self.persistent else "no",
                "--appendfsync", "always",
                "--dir", str(self.directory),
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_redis(self.process, self.port, self.directory / "redis.log")

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def flush(self) -> None:
        client = redis.Redis(port=self.port)
        client.flushall()
        client.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A redis-server shared by the session's tests (flushed before each by ``redis_url``)."""
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> str:
    """The URL of an empty Redis."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server for this test alone, which the test may stop and restart."""
    server = RedisProcess(tmp_path)
    server.start()
    yield server
    server.stop()


@dataclass
class LiveServer:
    """A server running in the test's own event loop, on a real socket."""

    app_hub: Hub
    endpoint: WebSocketEndpoint
    http_url: str
    ws_url: str
    http_api: HttpApi

    @property
    def hub(self) -> Hub:
        return self.app_hub

    def drop_connections(self, code: int = 1012) -> None:
        """Close every client connection from the server side."""
        self.endpoint.close_all(code, "dropped by the test")


@contextlib.asynccontextmanager
async def serve_asgi(app: Any, *, ws_max_size: int = 64 * 1024) -> AsyncIterator[ServerUrls]:
    """Serve any ASGI *app* with uvicorn in this event loop, on a real socket, until the block ends."""
    sock = bind("127.0.0.1", 0)
    urls = urls_for(sock)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", ws_max_size=ws_max_size, ws_per_message_deflate=False)
    )
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    deadline = time.monotonic() + scaled(15)
    while not server.started:
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise RuntimeError("the in-process server did not start")
        await asyncio.sleep(0.005)
    try:
        yield urls
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, scaled(15))
        sock.close()


@contextlib.asynccontextmanager
async def run_live_server(config: ServerConfig) -> AsyncIterator[LiveServer]:
    """Serve broadcast-cli's app with uvicorn in this event loop until the block ends."""
    app = create_app(config=config)
    async with serve_asgi(app, ws_max_size=config.limits.max_frame_bytes) as urls:
        yield LiveServer(app.state.hub, app.state.websocket, urls.http, urls.websocket, app.state.http)


@pytest.fixture
async def live_server() -> AsyncIterator[LiveServer]:
    """An in-memory server in the test's loop."""
    async with run_live_server(ServerConfig()) as server:
        yield server


@pytest.fixture
async def live_redis_server(redis_url: str) -> AsyncIterator[LiveServer]:
    """A server on the test Redis, in the test's loop."""
    async with run_live_server(ServerConfig(redis_url=redis_url)) as server:
        yield server


@dataclass
class ServerProcess:
    """A ``broadcast serve`` process; its stderr is collected in :attr:`stderr_lines`."""

    process: subprocess.Popen[str]
    http_url: str
    ws_url: str
    stderr_lines: list[str]
    reader: threading.Thread

    def _reap(self) -> int:
        code = self.process.wait()
        self.reader.join(scaled(10))
        if self.process.stderr is not None:
            self.process.stderr.close()
        return code

    def kill(self) -> None:
        """Kill it with SIGKILL, as a crash would."""
        if self.process.poll() is None:
            self.process.kill()
        self._reap()

    def terminate(self) -> int:
        """Stop it with SIGTERM and return its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(scaled(15))
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self._reap()


def start_server_process(*args: str, port: int = 0) -> ServerProcess:
    """Start ``python -m broadcast_cli serve`` and wait until it announces its URLs."""
    process = subprocess.Popen(
        [sys.executable, "-m", "broadcast_cli", "serve", "--port", str(port), "--log-level", "warning", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines: list[str] = []
    announced = threading.Event()
    urls: dict[str, str] = {}

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if "serving on " in line:
                urls["http"] = line.split("serving on ", 1)[1].strip()
            elif line.strip().startswith("WebSocket"):
                urls["ws"] = line.split()[-1]
                announced.set()
        announced.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    if not announced.wait(scaled(30)) or "ws" not in urls:
        process.kill()
        process.wait()
        reader.join(scaled(10))
        process.stderr.close()
        raise RuntimeError("broadcast serve did not announce its URLs:\n" + "".join(lines))
    return ServerProcess(process, urls["http"], urls["ws"], lines, reader)


@pytest.fixture
def start_server() -> Iterator[Callable[..., ServerProcess]]:
    """Start ``broadcast serve`` processes with ``start_server(*args)``; all are stopped afterwards."""
    started: list[ServerProcess] = []

    def start(*args: str, port: int = 0) -> ServerProcess:
        server = start_server_process(*args, port=port)
        started.append(server)
        return server

    yield start
    for server in started:
        server.terminate()


@contextlib.asynccontextmanager
async def stalled_connection(ws_url: str) -> AsyncIterator[ClientConnection]:
    """A connection that stops reading from the socket as soon as the test stops calling ``recv()``.

    A tiny receive buffer and a one-frame queue leave the server nowhere to
    put what it sends but its own send buffer.
    """
    url = urlsplit(ws_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (url.hostname, url.port))
    async with connect(ws_url, sock=sock, max_queue=1, close_timeout=scaled(5)) as ws:
        yield ws


@dataclass
class ThreadedServer:
    """A broadcast server running in a thread with its own event loop."""

    http_url: str
    ws_url: str
    hub: Hub
    endpoint: WebSocketEndpoint
    loop: asyncio.AbstractEventLoop

    def call(self, coroutine: Any) -> Any:
        """Run *coroutine* on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(scaled(10))

    def publish(self, channel: str, event: str, payload: Any = None) -> Any:
        """Publish through the server's hub."""
        return self.call(self.hub.publish(channel, event, payload))

    def subscribers(self, name: str) -> int:
        """How many connections subscribe to the channel or pattern *name*."""

        async def count() -> int:
            if "*" in name:
                return self.hub.patterns().get(name, 0)
            return self.hub.subscriber_count(name)

        return int(self.call(count()))

    def wait_subscribed(self, name: str, count: int = 1) -> None:
        """Wait until *count* connections subscribe to *name*."""
        deadline = time.monotonic() + scaled(15)
        while self.subscribers(name) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"nobody subscribed to {name!r}")
            time.sleep(0.005)

    def drop_connections(self) -> None:
        """Close every WebSocket connection with 1012, as a restarting server does."""

        async def drop() -> None:
            self.endpoint.close_all(1012, "dropped by the test")

        self.call(drop())

    def in_background(self, action: Callable[[ThreadedServer], None]) -> threading.Thread:
        """Run *action(server)* in a thread (while a command runs in the test's), re-raising its error on join."""
        errors: list[BaseException] = []

        def run() -> None:
            try:
                action(self)
            except BaseException as exc:
                errors.append(exc)

        thread = _Joining(target=run, daemon=True, errors=errors)
        thread.start()
        return thread


class _Joining(threading.Thread):
    def __init__(self, *, target: Callable[[], None], daemon: bool, errors: list[BaseException]) -> None:
        super().__init__(target=target, daemon=daemon)
        self.errors = errors

    def join(self, timeout: float | None = None) -> None:
        super().join(scaled(15) if timeout is None else timeout)
        if self.errors:
            raise self.errors[0]


@contextlib.contextmanager
def threaded_server(config: ServerConfig | None = None) -> Iterator[ThreadedServer]:
    """Serve broadcast-cli's app with uvicorn in a thread until the block ends."""
    config = config or ServerConfig()
    app = create_app(config=config)
    sock = bind("127.0.0.1", 0)
    urls = urls_for(sock)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            lifespan="on",
            ws_max_size=config.limits.max_frame_bytes,
            ws_per_message_deflate=False,
        )
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(sockets=[sock]),), daemon=True)
    thread.start()
    started = threading.Event()

    def check() -> None:
        if server.started:
            started.set()
        elif thread.is_alive():
            loop.call_later(0.005, check)

    loop.call_soon_threadsafe(check)
    if not started.wait(scaled(15)):
        raise RuntimeError("the threaded server did not start")
    try:
        yield ThreadedServer(urls.http, urls.websocket, app.state.hub, app.state.websocket, loop)
    finally:
        server.should_exit = True
        thread.join(scaled(15))
        loop.close()
        sock.close()


# -- Redis topologies: cluster nodes, replicas and sentinels ----------------------

REDIS_CLI = shutil.which("redis-cli")


def require_redis_cli() -> str:
    """The path of redis-cli (which creates clusters); fails (CI) or skips (elsewhere) when it is missing."""
    require_redis()
    if REDIS_CLI is None:
        message = "redis-cli is not installed (it comes with redis-server: apt-get install redis-server)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return REDIS_CLI


@dataclass
class RedisNode:
    """A redis-server (or, with *sentinel*, a Redis Sentinel) process on a free port, with any arguments.

    Arguments come after the defaults (no persistence), so they can override them.
    A sentinel's arguments are lines of its configuration file, which it rewrites.
    """

    directory: Path
    arguments: tuple[str, ...] = ()
    sentinel: bool = False
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        """A new synchronous client of this node (close it)."""
        return redis.Redis(port=self.port, socket_connect_timeout=scaled(5), socket_timeout=scaled(10))

    def start(self) -> None:
        executable = require_redis()
        self.directory.mkdir(parents=True, exist_ok=True)
        log = self.directory / "redis.log"
        if self.sentinel:
            config = self.directory / "sentinel.conf"
            lines = [f"port {self.port}", "bind 127.0.0.1", f"dir {self.directory}", f"logfile {log}"]
            config.write_text("\n".join([*lines, *self.arguments]) + "\n")
            command = [executable, str(config), "--sentinel"]
        else:
            command = [
                executable,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                "--logfile", str(log),
                *self.arguments,
            ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_redis(self.process, self.port, log)

    def stop(self) -> None:
        """Stop it with SIGTERM (SIGKILL if it lingers)."""
        stop_process(self.process)
        self.process = None

    def kill(self) -> None:
        """Kill it with SIGKILL, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


def poll(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Call *predicate* until it is true (Redis errors count as false); fail after *timeout* (scaled)."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        try:
            if predicate():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {scaled(timeout):.0f} s waiting for {what}")
        time.sleep(0.02)


@dataclass
class RedisClusterNodes:
    """A real Redis Cluster, each node a redis-server process of its own (primaries, unless replicas are added)."""

    nodes: list[RedisNode]
    options: tuple[str, ...] = ()
    """The redis-server arguments of every node (but its cluster bus port)."""

    @property
    def url(self) -> str:
        """The ``redis+cluster://`` URL naming every node."""
        return "redis+cluster://" + ",".join(node.address for node in self.nodes)

    def create(self) -> None:
        """Start the nodes, join them into one cluster, and wait until every node says it is ok."""
        cli = require_redis_cli()
        for node in self.nodes:
            node.start()
        subprocess.run(
            [cli, "--cluster", "create", *(node.address for node in self.nodes), "--cluster-replicas", "0",
             "--cluster-yes"],
            check=True, capture_output=True, timeout=scaled(60),
        )
        self.wait_ok()

    def wait_ok(self) -> None:
        """Wait until every node knows every other and serves the whole key space."""

        seen: dict[str, Any] = {}

        def ok(node: RedisNode) -> bool:
            with node.client() as client:
                info = seen[node.address] = client.cluster("INFO")
            return bool(
                info["cluster_state"] == "ok"
                and int(info["cluster_known_nodes"]) == len(self.nodes)
                and int(info["cluster_slots_ok"]) == 16384
            )

        for node in self.nodes:
            try:
                poll(lambda node=node: ok(node), f"the cluster to be ok on {node.address}")  # type: ignore[misc]
            except AssertionError as exc:
                raise AssertionError(f"{exc}; it said {seen.get(node.address)}") from None

    def _running(self) -> list[RedisNode]:
        return [node for node in self.nodes if node.process is not None]

    def add_replica(self, primary: RedisNode) -> RedisNode:
        """Start one more node as a replica of *primary*; wait until it replicates and every node knows it."""
        cli = require_redis_cli()
        replica = RedisNode(
            primary.directory.parent / f"node{len(self.nodes)}", (*self.options, "--cluster-port", str(free_port()))
        )
        replica.start()
        with primary.client() as client:
            primary_id = client.execute_command("CLUSTER", "MYID").decode()
        subprocess.run(
            [cli, "--cluster", "add-node", replica.address, primary.address, "--cluster-slave",
             "--cluster-master-id", primary_id],
            check=True, capture_output=True, timeout=scaled(60),
        )
        self.nodes.append(replica)

        def replicating() -> bool:
            with replica.client() as client:
                return bool(client.info("replication")["master_link_status"] == "up")

        poll(replicating, f"the replica {replica.address} to replicate {primary.address}")
        self.wait_ok()
        return replica

    def node_for(self, key: str) -> RedisNode:
        """The node whose slots hold *key* (as the first running node sees it)."""
        with self._running()[0].client() as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
            ranges = client.execute_command("CLUSTER", "SLOTS")
        for start, end, primary, *_ in ranges:
            if start <= slot <= end:
                port = int(primary[1])
                return next(node for node in self.nodes if node.port == port)
        raise AssertionError(f"no node serves slot {slot}")

    def shard_subscribers(self, name: str) -> dict[int, int]:
        """How many clients subscribe to shard channel *name*, per (running) node port."""
        counts = {}
        for node in self._running():
            with node.client() as client:
                reply = client.execute_command("PUBSUB", "SHARDNUMSUB", name)
            counts[node.port] = int(reply[1])
        return counts

    def flush(self) -> None:
        """Forget every key and function, on every node."""
        for node in self.nodes:
            with node.client() as client:
                client.flushall()
                client.execute_command("FUNCTION", "FLUSH")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def cluster_nodes(directory: Path, count: int = 3, *arguments: str) -> RedisClusterNodes:
    """*count* cluster-enabled redis-server processes (not started) in *directory*.

    Shards keep serving while another is down (``cluster-require-full-coverage no``).
    """
    options = (
        "--cluster-enabled", "yes",
        "--cluster-config-file", "nodes.conf",
        "--cluster-node-timeout", "5000",
        "--cluster-require-full-coverage", "no",
        "--repl-diskless-sync-delay", "0",  # a replica (see add_replica) syncs at once
        *arguments,
    )
    # The cluster bus needs a port of its own (by default the node's port + 10000, which may be taken or > 65535).
    return RedisClusterNodes(
        [RedisNode(directory / f"node{n}", (*options, "--cluster-port", str(free_port()))) for n in range(count)],
        options,
    )


@pytest.fixture(scope="session")
def redis_cluster_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    """A three-primary Redis Cluster shared by the session's tests (flushed before each by ``redis_cluster``)."""
    cluster = cluster_nodes(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_cluster(redis_cluster_session: RedisClusterNodes) -> RedisClusterNodes:
    """An empty three-primary Redis Cluster."""
    redis_cluster_session.flush()
    return redis_cluster_session


@pytest.fixture
def own_redis_cluster(tmp_path: Path) -> Iterator[RedisClusterNodes]:
    """A three-primary Redis Cluster for this test alone, whose nodes it may stop and restart.

    Nodes keep their data across a restart (append-only file, fsync on every write).
    """
    cluster = cluster_nodes(tmp_path, 3, "--appendonly", "yes", "--appendfsync", "always")
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.stop()


@dataclass
class SentinelGroup:
    """A Redis master, its replica and the sentinels that watch them, each a real process."""

    master: RedisNode
    replica: RedisNode
    sentinels: list[RedisNode]
    service: str = "mymaster"

    @property
    def url(self) -> str:
        """The ``redis+sentinel://`` URL naming every sentinel."""
        return f"redis+sentinel://{','.join(s.address for s in self.sentinels)}/{self.service}/0"

    def master_port(self) -> int:
        """The port of the master, as the first sentinel sees it."""
        with self.sentinels[0].client() as client:
            _, port = client.sentinel_get_master_addr_by_name(self.service)
        return int(port)

    def start(self) -> None:
        """Start the master and replica, wait for replication, then start the sentinels and wait until they see both."""
        self.master.start()
        self.replica.start()

        def replicating() -> bool:
            with self.replica.client() as client:
                return bool(client.info("replication")["master_link_status"] == "up")

        poll(replicating, "the replica to replicate the master")
        for sentinel in self.sentinels:
            sentinel.start()

        def watching(sentinel: RedisNode) -> bool:
            with sentinel.client() as client:
                return len(client.sentinel_slaves(self.service)) == 1

        for sentinel in self.sentinels:
            poll(lambda sentinel=sentinel: watching(sentinel), "the sentinels to see the replica")  # type: ignore[misc]

    def stop(self) -> None:
        for node in [*self.sentinels, self.replica, self.master]:
            node.stop()


@pytest.fixture
def redis_sentinel(tmp_path: Path) -> Iterator[SentinelGroup]:
    """A master, a replica and one sentinel (quorum 1) that fails over 1 s after the master stops answering."""
    master = RedisNode(tmp_path / "master", ("--repl-diskless-sync-delay", "0"))  # the replica syncs at once
    replica = RedisNode(tmp_path / "replica", ("--replicaof", "127.0.0.1", str(master.port)))
    sentinel = RedisNode(
        tmp_path / "sentinel",
        (
            f"sentinel monitor mymaster 127.0.0.1 {master.port} 1",
            "sentinel down-after-milliseconds mymaster 1000",
            "sentinel failover-timeout mymaster 10000",
        ),
        sentinel=True,
    )
    group = SentinelGroup(master, replica, [sentinel])
    try:
        group.start()
        yield group
    finally:
        group.stop()


class Collector:
    """A hub sink that keeps what it is given."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def deliver(self, message: Message) -> None:
        self.messages.append(message)

    def seqs(self, channel: str | None = None) -> list[int]:
        return [m.seq for m in self.messages if channel is None or m.channel == channel]


async def check_recovery_across_instances(a: Hub, b: Hub) -> None:
    """A subscriber leaves instance *a* after 5 messages, 5 more are published, it resubscribes on *b*
    with ``since=5``: it gets 6…10 from history, then the live 11, in order."""
    first = Collector()
    epoch = (await a.subscribe(first, [SubscribeItem("orders")]))["orders"].position.epoch
    for n in range(5):
        await a.publish("orders", "e", n)
    await wait_until(lambda: len(first.messages) == 5)
    a.unsubscribe_all(first)
    for n in range(5, 10):
        await a.publish("orders", "e", n)
    moved = Collector()
    results = await b.subscribe(moved, [SubscribeItem("orders", since=5, epoch=epoch)])
    assert results["orders"].recovered is True
    await b.publish("orders", "e", 10)
    await wait_until(lambda: len(moved.messages) == 6)
    assert moved.seqs() == [6, 7, 8, 9, 10, 11]


def worker_pids(server: ServerProcess) -> list[int]:
    """The worker pids that a ``--workers N`` server's banner names (its ``Workers`` line)."""
    deadline = time.monotonic() + scaled(15)
    while not (lines := [line for line in server.stderr_lines if line.strip().startswith("Workers")]):
        assert time.monotonic() < deadline, "no Workers line in the banner"
        time.sleep(0.005)  # the thread reading the server's stderr appends to stderr_lines
    return [int(pid) for pid in lines[0].split("(", 1)[1].rstrip(")\n").split(", ")]

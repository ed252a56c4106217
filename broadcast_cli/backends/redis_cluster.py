"""Sharded pub/sub over a Redis Cluster: one pub/sub connection per primary that serves a subscribed channel.

A channel's keys and its shard channel share a hash tag (``P:{C}``), so they
live in one slot, on one primary: the publishing function ``SPUBLISH``-es there
and only that node carries the message (Redis >= 7). An instance subscribes on
the primary that serves each channel with local subscribers, and nowhere else.

When the cluster changes — a slot moves (the node says so with an unasked
``sunsubscribe``, or refuses with ``MOVED``), a primary fails over to a replica
— the channel is subscribed again wherever it is served now, after reading the
cluster's layout afresh; then the hub catches up on it from history, as after
any lost subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from ..exceptions import BackendUnavailable
from .redis_pubsub import PubSubConnection, Redirected, Subscriptions, connected_pubsub

__all__ = ["ClusterSubscriptions"]

logger = logging.getLogger(__name__)

_PLACE_ATTEMPTS = 5
"""How many times a subscription follows its slot to another node before giving up (for now)."""


class ClusterSubscriptions(Subscriptions):
    """Shard-channel subscriptions spread over the primaries of a Redis Cluster.

    *cluster* is the backend's (initialized) cluster client, whose view of the
    slots is shared; *connection_options* are the keyword arguments of a
    connection to one node.
    """

    def __init__(
        self,
        cluster: RedisCluster,
        connection_options: Mapping[str, Any],
        *,
        on_frame: Callable[[bytes, bytes], None],
        on_restored: Callable[[bytes], None],
    ) -> None:
        super().__init__(on_frame, on_restored)
        self._cluster = cluster
        self._options = dict(connection_options)
        self._connections: dict[str, PubSubConnection] = {}
        self._clients: dict[PubSubConnection, aioredis.Redis] = {}
        self._opening: dict[str, asyncio.Lock] = {}

    @property
    def connected(self) -> bool:
        return all(connection.up for connection in self._connections.values())

    async def start(self) -> None:
        """Nothing to connect yet: a node's connection opens with its first channel."""

    async def close(self) -> None:
        await super().close()
        connections = {*self._connections.values(), *self._clients}
        self._connections.clear()
        for connection in connections:
            await self._discard(connection)

    def nodes(self) -> list[str]:
        """The nodes (``host:port``) this instance has a pub/sub connection to."""
        return sorted(self._connections)

    async def psubscribe(self, pattern: bytes) -> None:
        raise AssertionError("the backend refuses patterns in a cluster")  # pragma: no cover

    async def punsubscribe(self, pattern: bytes) -> None:
        """Nothing to do: no pattern is ever subscribed in a cluster."""

    # -- placing channels --------------------------------------------------------

    async def _refresh(self) -> None:
        """Read the cluster's layout afresh (which node serves which slot)."""
        try:
            await self._cluster.nodes_manager.initialize()
        except (RedisError, RedisClusterException, OSError) as exc:
            logger.warning("cannot read the Redis Cluster's layout: %s", exc)

    def _node(self, key: bytes) -> ClusterNode:
        try:
            node = self._cluster.get_node_from_key(key)  # type: ignore[arg-type]  # bytes work as well
        except RedisClusterException as exc:  # SlotNotCoveredError
            raise BackendUnavailable(f"no Redis Cluster node serves {key!r}: {exc}") from exc
        if node is None:  # pragma: no cover - only asked for replicas
            raise BackendUnavailable(f"no Redis Cluster node serves {key!r}")
        return node

    async def _connection(self, node: ClusterNode) -> PubSubConnection:
        connection = self._connections.get(node.name)
        if connection is not None:
            return connection
        # One lock per node: a node that does not answer delays only its own channels.
        async with self._opening.setdefault(node.name, asyncio.Lock()):
            connection = self._connections.get(node.name)
            if connection is not None:
                return connection
            client = aioredis.Redis(host=node.host, port=int(node.port), **self._options)
            connection = PubSubConnection(
                functools.partial(connected_pubsub, client), self, sharded=True, name=node.name
            )
            try:
                await connection.open()
            except BaseException:
                await client.aclose()
                raise
            self._connections[node.name] = connection
            self._clients[connection] = client
            return connection

    async def _discard(self, connection: PubSubConnection) -> None:
        await connection.close()
        client = self._clients.pop(connection, None)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _place(self, key: bytes) -> None:
        for attempt in range(_PLACE_ATTEMPTS):
            try:
                node = self._node(key)
            except BackendUnavailable:
                if attempt == _PLACE_ATTEMPTS - 1:
                    raise
                await self._refresh()
                continue
            connection = await self._connection(node)
            try:
                await connection.subscribe(key)
            except Redirected:
                if attempt == _PLACE_ATTEMPTS - 1:
                    raise
                await self._refresh()
                continue
            return

    async def _unplace(self, key: bytes) -> None:
        for connection in list(self._connections.values()):
            if key in connection.keys:
                await connection.unsubscribe(key)

    # -- what connections tell ---------------------------------------------------

    async def before_reconnect(self, connection: PubSubConnection) -> bool:
        """Move the channels of a lost node that another node serves now; close it if none is left."""
        await self._refresh()
        for key in list(connection.keys):
            try:
                node = self._node(key)
            except BackendUnavailable:
                continue
            if node.name != connection.name:
                connection.keys.discard(key)
                self.on_dropped(connection, key)
        if connection.keys:
            return True
        if self._connections.get(connection.name) is connection:
            del self._connections[connection.name]
        self._spawn(self._discard(connection))
        return False

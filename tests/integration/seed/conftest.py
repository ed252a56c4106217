"""What the seed's tests assume about their surroundings.

Section 2.2 of the seed connects to ``redis://localhost:6379/0`` ("Requires:
Redis running"). When a Redis answers there it is used (the tests use their own
key prefix); otherwise a redis-server of our own is started on that port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.conftest import RedisProcess


def _redis_answers(port: int) -> bool:
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def seed_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Make sure a Redis answers on localhost:6379 while the seed's Redis tests run."""
    if _redis_answers(6379):
        yield
        return
    server = RedisProcess(Path(tmp_path_factory.mktemp("seed-redis")), port=6379)
    server.start()
    yield
    server.stop()


@pytest.fixture
def main_thread_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A current event loop in the main thread, as ``asyncio.get_event_loop()`` in a sync test expects.

    (pytest-asyncio unsets the loop after each async test, so a sync test that
    runs after one would otherwise find none.)
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.set_event_loop(None)
    loop.close()


@pytest.fixture(autouse=True)
def _seed_surroundings(request: pytest.FixtureRequest) -> None:
    if request.module.__name__.endswith("test_redis_websocket_integration"):
        request.getfixturevalue("seed_redis")
    elif request.module.__name__.endswith("test_websocket_broadcast_integration"):
        request.getfixturevalue("main_thread_loop")

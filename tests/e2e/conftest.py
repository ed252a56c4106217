"""End-to-end tests: several real server processes, real Redis, real sockets."""

from tests.integration.conftest import own_redis, redis_server, redis_url, start_server

__all__ = ["own_redis", "redis_server", "redis_url", "start_server"]

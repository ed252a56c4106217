"""Redis URLs: topologies, hosts, options and the errors for what is wrong — no I/O."""

from __future__ import annotations

import pytest

from broadcast_cli.backends import create_backend
from broadcast_cli.backends.redis import RedisBackend
from broadcast_cli.backends.redis_url import parse_redis_url, redact
from broadcast_cli.exceptions import ConfigurationError


def test_a_single_redis_keeps_redis_py_options_and_drops_ours() -> None:
    target = parse_redis_url("redis://:secret@h:6380/2?socket_timeout=3&sharded=true")
    assert (target.topology, target.sharded) == ("single", True)
    assert target.client_url == "redis://:secret@h:6380/2?socket_timeout=3"
    assert target.url == "redis://:***@h:6380/2?socket_timeout=3&sharded=true"
    assert parse_redis_url("redis://h/0").sharded is False
    assert parse_redis_url("rediss://h/0?sharded=0").sharded is False
    assert parse_redis_url("unix:///run/redis.sock?db=1").topology == "single"


def test_the_keyword_overrides_the_url() -> None:
    assert parse_redis_url("redis://h/0?sharded=true", sharded=False).sharded is False
    assert parse_redis_url("redis://h/0", sharded=True).sharded is True


def test_sentinel_urls() -> None:
    target = parse_redis_url(
        "redis+sentinel://user:p%40ss@s1,s2:26380,[::1]:26381/mymaster/3"
        "?sharded=yes&socket_timeout=2&sentinel_password=sp&client_name=app"
    )
    assert target.topology == "sentinel" and target.sharded
    assert target.hosts == (("s1", 26379), ("s2", 26380), ("::1", 26381))
    assert target.service == "mymaster"
    assert dict(target.options) == {
        "username": "user", "password": "p@ss", "db": 3, "socket_timeout": 2.0, "client_name": "app"
    }
    assert dict(target.sentinel_options) == {"socket_timeout": 2.0, "password": "sp"}
    assert target.url.startswith("redis+sentinel://user:***@s1,")
    assert "db" not in parse_redis_url("redis+sentinel://s1/mymaster").options


def test_cluster_urls_are_always_sharded() -> None:
    target = parse_redis_url("redis+cluster://:pw@n1:7000,n2:7001,n3?max_connections=8")
    assert (target.topology, target.sharded) == ("cluster", True)
    assert target.hosts == (("n1", 7000), ("n2", 7001), ("n3", 6379))
    assert dict(target.options) == {"password": "pw", "max_connections": 8}
    assert parse_redis_url("redis+cluster://n1:7000/0").hosts == (("n1", 7000),)
    assert parse_redis_url("redis+cluster://n1:7000/?sharded=true").sharded


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h", "not a Redis URL: 'http://h'"),
        ("redis+cluster://n1:7000?sharded=false", "always carries messages over sharded pub/sub"),
        ("redis+cluster://n1:7000/3", "only database 0"),
        ("redis+cluster://n1:7000?db=1", "unknown option 'db'"),
        ("redis+cluster://n1:notaport", "invalid port 'notaport'"),
        ("redis+cluster://n1:70000", "invalid port 70000"),
        ("redis+cluster://n1,,n2", "empty host"),
        ("redis+cluster://", "names no host"),
        ("redis+cluster://[::1", "invalid host"),
        ("redis+cluster://[::1]x", "invalid host"),  # said by urlsplit itself on newer Pythons
        ("redis+cluster://[::1]:7000,[::2", "invalid host '[::2'"),
        ("redis+cluster://[::1]:7000,[::2]7001", "invalid host '[::2]7001'"),
        ("redis+sentinel://s1:26379", "names no Sentinel service"),
        ("redis+sentinel://s1/a/b/c", "names no Sentinel service"),
        ("redis+sentinel://s1/mymaster/x", "invalid database 'x'"),
        ("redis+sentinel://s1/m?socket_timeout=-1", "invalid value for 'socket_timeout'"),
        ("redis+sentinel://s1/m?bogus=1", "the options are client_name, max_connections"),
        ("redis://h/0?sharded=maybe", "'maybe' is not a boolean"),
    ],
)
def test_what_is_wrong_is_said(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("[", r"\[").replace("?", r"\?")):
        parse_redis_url(url)


def test_passwords_are_redacted_in_errors() -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_redis_url("redis+sentinel://:hunter2@s1/m/x")
    assert "hunter2" not in str(raised.value)
    assert redact("redis://h:1/0") == "redis://h:1/0"
    assert redact("redis+cluster://u:pw@a:1,b:2") == "redis+cluster://u:***@a:1,b:2"


def test_create_backend_knows_every_redis_scheme() -> None:
    for url in ("redis://h/0", "redis+sentinel://s/m", "redis+cluster://n:7000", "redis://h/0?sharded=true"):
        backend = create_backend(url, prefix="app")
        assert isinstance(backend, RedisBackend) and backend.prefix == "app"
    assert create_backend("redis+cluster://n:7000").topology == "cluster"  # type: ignore[attr-defined]
    assert create_backend("redis://h/0", sharded=True).sharded  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match=r"unknown Redis URL scheme 'redis\+foo'.*redis\+cluster://"):
        create_backend("redis+foo://h")
    with pytest.raises(ConfigurationError, match="unknown backend URL scheme 'mongodb'"):
        create_backend("mongodb://x")


def test_several_ipv6_hosts_each_in_brackets() -> None:
    target = parse_redis_url("redis+cluster://[::1]:7000,[::2]:7001,[::3]")
    assert target.hosts == (("::1", 7000), ("::2", 7001), ("::3", 6379))

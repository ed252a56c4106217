"""A run's configuration is checked when it is made, and says what the run should deliver."""

from __future__ import annotations

from typing import Any

import pytest

from broadcast_cli.bench.config import MAX_MESSAGES, BenchConfig, EmbeddedServer, http_url_for
from broadcast_cli.bench.system import parse_cpus
from broadcast_cli.exceptions import ConfigurationError


def test_defaults() -> None:
    config = BenchConfig()
    assert (config.subscribers, config.messages, config.channel_names) == (100, 10_000, ["bench"])
    assert config.http_url == "http://127.0.0.1:8000"
    assert config.expected_deliveries() == 1_000_000


def test_channels_are_numbered_after_the_prefix() -> None:
    assert BenchConfig(subscribers=4, channels=3, channel_prefix="load").channel_names == ["load.0", "load.1", "load.2"]


def test_expected_deliveries_over_several_channels() -> None:
    # 7 messages over 3 channels: 3, 2, 2; 5 subscribers over 3 channels: 2, 2, 1.
    config = BenchConfig(subscribers=5, channels=3, messages=7)
    assert [config.subscribers_of(index) for index in range(3)] == [2, 2, 1]
    assert config.expected_deliveries() == 3 * 2 + 2 * 2 + 2 * 1


def test_a_rate_and_a_duration_plan_the_messages() -> None:
    config = BenchConfig(messages=None, rate=200, duration=10)
    assert config.planned_messages == 2000
    assert BenchConfig(messages=500, rate=200, duration=10).planned_messages == 500


def test_a_duration_alone_is_bounded_by_time_only() -> None:
    config = BenchConfig(messages=None, duration=5)
    assert config.planned_messages == MAX_MESSAGES
    assert config.expected_deliveries() is None


def test_publish_url() -> None:
    assert BenchConfig(urls=("ws://10.0.0.1:9000/ws/broadcast",)).http_url == "http://10.0.0.1:9000"
    assert BenchConfig(publish_url="http://127.0.0.1:1").http_url == "http://127.0.0.1:1"
    assert http_url_for("wss://h/ws") == "https://h"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"urls": ()}, "at least one server URL"),
        ({"urls": ("http://127.0.0.1:8000",)}, "invalid WebSocket URL"),
        ({"publish_url": "ws://127.0.0.1"}, "invalid publish URL"),
        ({"subscribers": 0}, "subscribers must be at least 1"),
        ({"channels": 0}, "channels must be at least 1"),
        ({"publishers": 0}, "publishers must be at least 1"),
        ({"procs": 0}, "procs must be at least 1"),
        ({"procs": 3, "subscribers": 2}, "give fewer procs"),
        ({"sample_every": 0}, "sample every must be at least 1"),
        ({"payload_size": 10}, "payload size must be from 32"),
        ({"payload_size": 70_000}, "payload size must be from 32"),
        ({"batch": 0}, "batch must be from 1 to 1000"),
        ({"batch": 1001}, "batch must be from 1 to 1000"),
        ({"messages": None}, "a number of messages, a duration, or both"),
        ({"messages": 0}, "number of messages must be from 1"),
        ({"rate": 0}, "rate must be a positive number"),
        ({"rate": float("inf")}, "rate must be a positive number"),
        ({"duration": -1}, "duration must be a positive number"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"idle_timeout": 0}, "idle timeout must be a positive number"),
        ({"publishers": 3, "messages": 2}, "give fewer publishers"),
        ({"channel_prefix": "a b"}, "invalid channel prefix"),
        ({"cpus": frozenset({-1})}, "invalid CPU numbers"),
    ],
)
def test_invalid(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        BenchConfig(**changes)


def test_embedded_servers() -> None:
    assert EmbeddedServer().servers == 1
    with pytest.raises(ConfigurationError, match="need a Redis URL"):
        EmbeddedServer(servers=2)
    with pytest.raises(ConfigurationError, match="at least 1"):
        EmbeddedServer(servers=0)
    with pytest.raises(ConfigurationError, match="invalid Redis URL"):
        EmbeddedServer(redis_url="http://x")
    assert EmbeddedServer(redis_url="redis://127.0.0.1:6379/0", servers=2).servers == 2


@pytest.mark.parametrize(("text", "cpus"), [("0", {0}), ("0,2", {0, 2}), ("1-3", {1, 2, 3}), (" 1 , 4-5", {1, 4, 5})])
def test_parse_cpus(text: str, cpus: set[int]) -> None:
    assert parse_cpus(text) == frozenset(cpus)


@pytest.mark.parametrize("text", ["", "a", "1-", "-1", "1,,2"])
def test_parse_cpus_refuses(text: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid CPU list"):
        parse_cpus(text)

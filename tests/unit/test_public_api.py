"""The package's public names: sorted, documented, and all importable."""

from __future__ import annotations

import broadcast_cli


def test_all_is_sorted_and_every_name_resolves() -> None:
    names = broadcast_cli.__all__
    assert names == sorted(names)
    for name in names:
        value = getattr(broadcast_cli, name)
        if name != "__version__":
            assert value.__doc__, f"{name} has no docstring"


def test_the_seed_api_is_importable_from_the_package() -> None:
    from broadcast_cli import BroadcastClient, RedisBroadcastBackend, WebSocketBroadcastBackend

    assert callable(WebSocketBroadcastBackend().get_router)
    assert RedisBroadcastBackend(redis_url="redis://localhost:6379/0", channel_prefix="p").channel_prefix == "p"
    assert BroadcastClient("ws://localhost:8000/ws/broadcast").state == "disconnected"

"""Server URLs: every form of one server's URL gives its WebSocket endpoint and its HTTP API — no I/O."""

from __future__ import annotations

import dataclasses

import pytest

from broadcast_cli.exceptions import ConfigurationError
from broadcast_cli.urls import (
    ENDPOINTS,
    PUBLISH_PATH,
    SCHEMES,
    WEBSOCKET_PATH,
    ServerURL,
    parse_server_url,
    redact,
    redact_secrets,
)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",
        "http://127.0.0.1:8000/",
        "ws://127.0.0.1:8000",
        "ws://127.0.0.1:8000/",
        "ws://127.0.0.1:8000/ws/broadcast",
        "ws://127.0.0.1:8000/ws/broadcast/",
        "http://127.0.0.1:8000/ws/broadcast",
        "http://127.0.0.1:8000/publish",
        "http://127.0.0.1:8000/publish/",
        "ws://127.0.0.1:8000/publish",
        "HTTP://127.0.0.1:8000",
        "  http://127.0.0.1:8000\n",
        "http://127.0.0.1:8000/ws/broadcast//",
    ],
)
def test_every_form_of_the_local_server_names_the_same_server(url: str) -> None:
    server = parse_server_url(url)
    assert server == ServerURL("127.0.0.1:8000")
    assert server.websocket == "ws://127.0.0.1:8000/ws/broadcast"
    assert server.http == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    "url", ["https://example.com", "https://example.com/", "wss://example.com/ws/broadcast", "wss://example.com"]
)
def test_tls_is_https_and_wss(url: str) -> None:
    server = parse_server_url(url)
    assert server.secure
    assert (server.websocket, server.http) == ("wss://example.com/ws/broadcast", "https://example.com")


def test_without_tls_it_is_http_and_ws() -> None:
    server = parse_server_url("ws://example.com")
    assert not server.secure
    assert (server.websocket, server.http) == ("ws://example.com/ws/broadcast", "http://example.com")


@pytest.mark.parametrize(
    ("url", "websocket", "http"),
    [
        ("http://h:1", "ws://h:1/ws/broadcast", "http://h:1"),
        ("http://h:65535/", "ws://h:65535/ws/broadcast", "http://h:65535"),
        ("ws://h:80/ws/broadcast", "ws://h:80/ws/broadcast", "http://h:80"),  # a port is kept, even the default
        ("wss://h:8443/ws/broadcast", "wss://h:8443/ws/broadcast", "https://h:8443"),
        ("http://h:", "ws://h/ws/broadcast", "http://h"),  # an empty port is no port
        ("http://Example.COM:8000", "ws://example.com:8000/ws/broadcast", "http://example.com:8000"),
    ],
)
def test_ports_and_hosts(url: str, websocket: str, http: str) -> None:
    server = parse_server_url(url)
    assert (server.websocket, server.http) == (websocket, http)


@pytest.mark.parametrize(
    ("url", "netloc"),
    [
        ("http://[::1]:8000", "[::1]:8000"),
        ("ws://[::1]/ws/broadcast", "[::1]"),
        ("https://[2001:db8::7]:443/", "[2001:db8::7]:443"),
        ("http://[FE80::1]:9", "[fe80::1]:9"),
    ],
)
def test_ipv6_hosts_keep_their_brackets(url: str, netloc: str) -> None:
    server = parse_server_url(url)
    assert server.netloc == netloc
    assert server.websocket.split("://", 1)[1] == f"{netloc}/ws/broadcast"
    assert server.http.split("://", 1)[1] == netloc


def test_credentials_are_kept_on_both_sides() -> None:
    server = parse_server_url("https://user:p%40ss@example.com/ws/broadcast")
    assert server.netloc == "user:p%40ss@example.com"
    assert server.websocket == "wss://user:p%40ss@example.com/ws/broadcast"
    assert server.http == "https://user:p%40ss@example.com"


@pytest.mark.parametrize(
    ("url", "query"),
    [
        ("ws://h/ws/broadcast?token=abc.def", "token=abc.def"),
        ("http://h:8000?token=abc", "token=abc"),
        ("http://h:8000/?token=abc&x=1", "token=abc&x=1"),
        ("wss://h/ws/broadcast/?token=a%2Bb", "token=a%2Bb"),
        ("ws://h/ws/broadcast?", ""),
    ],
)
def test_the_query_goes_to_the_websocket_endpoint_only(url: str, query: str) -> None:
    server = parse_server_url(url)
    assert server.query == query
    assert server.websocket.endswith(f"/ws/broadcast?{query}" if query else "/ws/broadcast")
    assert "?" not in server.http and "token" not in server.http


@pytest.mark.parametrize(
    ("url", "prefix", "websocket", "http"),
    [
        ("https://example.com/realtime/ws/broadcast", "/realtime", "wss://example.com/realtime/ws/broadcast",
         "https://example.com/realtime"),
        ("http://h:8000/a/b/ws/broadcast/", "/a/b", "ws://h:8000/a/b/ws/broadcast", "http://h:8000/a/b"),
        ("http://h/api/publish", "/api", "ws://h/api/ws/broadcast", "http://h/api"),
        ("ws://h/rt/ws/broadcast?token=t", "/rt", "ws://h/rt/ws/broadcast?token=t", "http://h/rt"),
        ("http://h/ws/broadcast/publish", "/ws/broadcast", "ws://h/ws/broadcast/ws/broadcast", "http://h/ws/broadcast"),
    ],
)  # fmt: skip
def test_a_server_under_a_prefix_is_named_by_one_of_its_endpoints(
    url: str, prefix: str, websocket: str, http: str
) -> None:
    server = parse_server_url(url)
    assert server.prefix == prefix
    assert (server.websocket, server.http) == (websocket, http)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "localhost:8000",
            "invalid server URL 'localhost:8000': it must start with http://, https://, ws:// or wss://",
        ),
        ("127.0.0.1:8000", "invalid server URL '127.0.0.1:8000': it must start with http://"),
        ("", "invalid server URL '': it must start with http://"),
        ("ftp://h/ws/broadcast", "invalid server URL 'ftp://h/ws/broadcast': it must start with http://"),
        ("redis://h:6379/0", "invalid server URL 'redis://h:6379/0': it must start with http://"),
        ("http//h:8000", "invalid server URL 'http//h:8000': it must start with http://"),
    ],
)
def test_another_scheme_is_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match="^" + message.replace("?", r"\?")) as caught:
        parse_server_url(url)
    assert "e.g. http://127.0.0.1:8000" in str(caught.value)  # what is accepted


@pytest.mark.parametrize("url", ["http://", "ws://:8000", "http:///ws/broadcast", "http:h:8000", "https:/h"])
def test_a_url_without_a_host_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^invalid server URL '{url}': it names no host"):
        parse_server_url(url)


@pytest.mark.parametrize("url", ["http://h:port", "http://h:65536", "ws://h:-1/ws/broadcast", "http://h:80:80"])
def test_a_bad_port_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^invalid server URL '{url}': the port must be a number from 0 to"):
        parse_server_url(url)


@pytest.mark.parametrize("url", ["http://[::1:8000", "http://[::1"])
def test_an_unclosed_ipv6_bracket_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"an IPv6 host goes in brackets: http://\[::1\]:8000"):
        parse_server_url(url)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("http://h:8000/elsewhere/", "/elsewhere/"),
        ("http://h:8000/realtime", "/realtime"),  # a bare prefix: told apart from a typo by an endpoint only
        ("ws://h/ws", "/ws"),
        ("ws://h/broadcast", "/broadcast"),
        ("ws://h/ws/broadcasts", "/ws/broadcasts"),
        ("ws://h/xws/broadcast", "/xws/broadcast"),
        ("http://h/health", "/health"),
        ("http://h//ws/broadcast", "//ws/broadcast"),
        ("http://h/a//ws/broadcast", "/a//ws/broadcast"),
        ("http://h/publish/ws", "/publish/ws"),
    ],
)
def test_a_path_that_is_neither_the_base_nor_an_endpoint_is_refused(url: str, path: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_server_url(url)
    assert str(caught.value) == (
        f"invalid server URL '{url}': the path '{path}' is neither the server's base (/) nor one of its endpoints "
        "(/ws/broadcast, /publish), with or without a prefix (/PREFIX/ws/broadcast)"
    )


def test_a_fragment_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"^invalid server URL 'ws://h/ws/broadcast#top': .*no fragment"):
        parse_server_url("ws://h/ws/broadcast#top")


def test_an_error_never_shows_a_password_or_a_query() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_server_url("ws://alice:s3cret@h/x?token=eyJsecret")
    message = str(caught.value)
    assert message.startswith("invalid server URL 'ws://alice:***@h/x?…': the path '/x'")
    assert "s3cret" not in message and "eyJsecret" not in message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("ws://h/ws/broadcast", "ws://h/ws/broadcast"),
        ("ws://h/ws/broadcast?token=abc", "ws://h/ws/broadcast?…"),
        ("http://alice:pw@h:8000/", "http://alice:***@h:8000/"),
        ("http://alice@h:8000", "http://alice@h:8000"),  # a user name is no secret
        ("http://a:b@h/p@q:r", "http://a:***@h/p@q:r"),  # an @ in the path is not in the credentials
        ("alice:pw@h:8000", "alice:***@h:8000"),  # no scheme: still masked
        ("localhost:8000", "localhost:8000"),
        ("", ""),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_the_constants() -> None:
    assert ENDPOINTS == (WEBSOCKET_PATH, PUBLISH_PATH) == ("/ws/broadcast", "/publish")
    assert {scheme for scheme, secure in SCHEMES.items() if secure} == {"https", "wss"}
    assert {scheme for scheme, secure in SCHEMES.items() if not secure} == {"http", "ws"}


def test_a_server_url_is_a_frozen_value() -> None:
    server = parse_server_url("http://h:1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        server.prefix = "/x"  # type: ignore[misc]
    assert server == parse_server_url("ws://h:1/ws/broadcast") and hash(server) == hash(ServerURL("h:1"))
    assert ServerURL("h", secure=True, prefix="/p", query="a=1").websocket == "wss://h/p/ws/broadcast?a=1"


@pytest.mark.parametrize(
    ("text", "secrets", "shown"),
    [
        ("to ws://h/ws/broadcast?a=1&token=abc.def: no", (), "to ws://h/ws/broadcast?a=1&token=***: no"),
        ("Authorization: Bearer sk-live-1", (), "Authorization: Bearer ***"),
        ('{"auth": {"token": "abc"}}', (), '{"auth": {"token": "***"}}'),
        ("http://alice:pw@h:8000/ up", (), "http://alice:***@h:8000/ up"),
        ("a eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln b", (), "a *** b"),
        ("key hunter2hunter2 and hunter2hunter2x", ("hunter2hunter2",), "key *** and ***x"),
        ("encoded a%2Bb here", ("a+b",), "encoded *** here"),
        ("api_key=k1 secret=s2 password=p3", (), "api_key=*** secret=*** password=***"),
        ("nothing secret here: seq 5 of epoch e1", ("",), "nothing secret here: seq 5 of epoch e1"),
    ],
)  # fmt: skip
def test_redact_secrets(text: str, secrets: tuple[str, ...], shown: str) -> None:
    assert redact_secrets(text, secrets) == shown

"""``GET /`` of ``broadcast serve``: what the server offers, to a program (JSON) and to a browser (a page)."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urljoin

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from broadcast_cli import __version__
from broadcast_cli.server.app import create_app
from broadcast_cli.server.config import ServerConfig
from tests.conftest import scaled
from tests.integration.conftest import ServerProcess, serve_asgi

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
SERVED = [
    ("WEBSOCKET", "/ws/broadcast"),
    ("POST", "/publish"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/channels"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/client.js"),
    ("GET", "/client.d.ts"),
]


def test_a_program_gets_the_endpoints_as_json_and_each_listed_one_answers(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server("--demo")
    with httpx.Client(base_url=server.http_url, timeout=scaled(10)) as http:
        index = http.get("/")
        assert index.status_code == 200
        assert index.headers["content-type"] == "application/json"
        assert index.headers["vary"] == "Accept"
        document = index.json()
        assert (document["service"], document["version"], document["protocol"]) == ("broadcast-cli", __version__, 1)
        listed = [(entry["method"], entry["path"]) for entry in document["endpoints"]]
        assert listed == [*SERVED, ("GET", "/demo")]
        assert all(entry["description"] for entry in document["endpoints"])
        for method, path in listed:
            if method == "GET":
                assert http.get(path).status_code == 200, path
        assert http.get("/ws/broadcast").status_code == 426  # the WebSocket, asked over plain HTTP
        refused = http.post("/", json={})
        assert (refused.status_code, refused.json()["code"]) == (405, "method_not_allowed")


async def test_a_browser_gets_a_page_whose_links_work_and_no_demo_without_demo() -> None:
    async with (
        serve_asgi(create_app(config=ServerConfig())) as urls,
        httpx.AsyncClient(base_url=urls.http, timeout=scaled(10)) as http,
    ):
        page = await http.get("/", headers=BROWSER)
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        assert f"broadcast-cli {__version__}" in page.text
        links = re.findall(r'<a href="([^"]+)">', page.text)
        assert links == ["health", "ready", "channels", "metrics", "openapi.json", "client.js", "client.d.ts"]
        for link in links:
            assert (await http.get(urljoin(f"{urls.http}/", link))).status_code == 200, link
        for method, path in SERVED:
            assert f"<td>{method}</td>" in page.text and path in page.text
        assert "/demo" not in page.text
        assert [entry["path"] for entry in (await http.get("/")).json()["endpoints"]] == [p for _, p in SERVED]


async def test_under_a_path_prefix_the_index_gives_the_prefixed_paths() -> None:
    app = Starlette(routes=[Mount("/realtime", app=create_app())])
    async with serve_asgi(app) as urls, httpx.AsyncClient(base_url=urls.http, timeout=scaled(10)) as http:
        paths = [entry["path"] for entry in (await http.get("/realtime/")).json()["endpoints"]]
        assert paths == [f"/realtime{path}" for _, path in SERVED]
        assert (await http.get(paths[2])).json()["status"] == "ok"  # /realtime/health

"""``GET /``: what the server offers, as JSON for programs and as a small page for browsers.

A person who points a browser at the server's base URL, or a program that asks
it what it is, gets the list of its endpoints rather than a bare 404. The list
comes from the routes themselves (:mod:`.routes`), so it cannot drift from what
is served.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from .. import __version__
from ..protocol import PROTOCOL_VERSION
from .http import JSONResponse

__all__ = ["WEBSOCKET", "EndpointInfo", "Index"]

WEBSOCKET = "WEBSOCKET"
"""The :attr:`EndpointInfo.method` of a WebSocket endpoint."""

_HEADERS = {
    "Vary": "Accept",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}
_PAGE_HEADERS = {
    **_HEADERS,
    # The page is static text: no script, no outside resource.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """One endpoint as the index lists it."""

    path: str
    """Its path under the server's base, e.g. ``/publish``."""
    method: str
    """``GET``, ``POST``, or :data:`WEBSOCKET`."""
    description: str
    """What it is for, in a few words."""


def _wants_html(request: Request) -> bool:
    """Whether the client prefers a page: browsers ask for ``text/html`` first; API clients do not ask for it."""
    accept = request.headers.get("accept", "")
    return "text/html" in accept


class Index:
    """The ``GET /`` endpoint, listing *endpoints*."""

    def __init__(self, endpoints: Sequence[EndpointInfo]) -> None:
        self.endpoints = tuple(endpoints)
        """What the index lists, in order."""

    def document(self, root_path: str = "") -> dict[str, object]:
        """The JSON index: the server, its version and protocol, and its endpoints under *root_path*."""
        return {
            "service": "broadcast-cli",
            "version": __version__,
            "protocol": PROTOCOL_VERSION,
            "endpoints": [
                {"method": info.method, "path": root_path + info.path, "description": info.description}
                for info in self.endpoints
            ],
        }

    def page(self, root_path: str = "") -> str:
        """The HTML index: a table of the endpoints, each ``GET`` one a link."""
        rows = []
        for info in self.endpoints:
            path = html.escape(root_path + info.path)
            # A relative link keeps working when a proxy serves the server under a path prefix.
            shown = f'<a href="{html.escape(info.path.lstrip("/"))}">{path}</a>' if info.method == "GET" else path
            rows.append(
                f"<tr><td>{html.escape(info.method)}</td><td><code>{shown}</code></td>"
                f"<td>{html.escape(info.description)}</td></tr>"
            )
        return (
            '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>broadcast-cli {__version__}</title>\n"
            "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}"
            "table{border-collapse:collapse}td,th{padding:.3rem .8rem;text-align:left;border-bottom:1px solid #ddd}"
            "</style>\n</head>\n<body>\n"
            f"<h1>broadcast-cli {__version__}</h1>\n"
            f"<p>A broadcast server speaking WebSocket protocol v{PROTOCOL_VERSION}. "
            "Subscribe over the WebSocket endpoint; publish with <code>POST /publish</code>.</p>\n"
            "<table>\n<tr><th>Method</th><th>Path</th><th>What</th></tr>\n"
            + "\n".join(rows)
            + "\n</table>\n</body>\n</html>\n"
        )

    async def serve(self, request: Request) -> Response:
        """The endpoint: the page to a browser (``Accept: text/html``), the JSON index to anyone else."""
        root_path = str(request.scope.get("root_path", "")).rstrip("/")
        if _wants_html(request):
            return Response(self.page(root_path), media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)
        return JSONResponse(self.document(root_path), headers=_HEADERS)

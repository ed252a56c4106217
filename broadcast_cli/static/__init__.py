"""The browser client, shipped inside the package and served by ``broadcast serve``.

``broadcast.js`` is a dependency-free ES module (served at ``GET /client.js``) and
``broadcast.d.ts`` its TypeScript declarations (``GET /client.d.ts``); see
docs/browser.md. :class:`Asset` serves any packaged file with an ``ETag``, so
browsers revalidate instead of refetching.
"""

from __future__ import annotations

import hashlib
from importlib.resources import files
from importlib.resources.abc import Traversable

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["CLIENT_JS", "CLIENT_TYPES", "Asset", "client_asset"]

CLIENT_JS = "broadcast.js"
"""The browser client's file name inside this package."""

CLIENT_TYPES = "broadcast.d.ts"
"""The browser client's TypeScript declarations, inside this package."""

_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".ts": "text/plain; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


class Asset:
    """One packaged file, read once, served with its media type and an ``ETag``.

    Responses say ``Cache-Control: no-cache``: a browser keeps its copy but asks
    each time whether it changed (``If-None-Match``), so an upgraded server is
    never shadowed by a stale client. *cross_origin* adds
    ``Access-Control-Allow-Origin: *``, which module scripts imported from
    another origin need.
    """

    def __init__(self, resource: Traversable, *, cross_origin: bool = False) -> None:
        self.name = resource.name
        """The file's name."""
        self.body = resource.read_bytes()
        """The file's content."""
        suffix = "." + self.name.rsplit(".", 1)[-1]
        self.media_type = _MEDIA_TYPES.get(suffix, "application/octet-stream")
        """The ``Content-Type`` it is served with."""
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'
        """A strong validator of the content."""
        self.headers = {"ETag": self.etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        if cross_origin:
            self.headers["Access-Control-Allow-Origin"] = "*"

    async def serve(self, request: Request) -> Response:
        """The endpoint: the file, or ``304 Not Modified`` when the browser's copy is current."""
        if self.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=self.headers)
        return Response(self.body, media_type=self.media_type, headers=self.headers)


def client_asset(name: str = CLIENT_JS) -> Asset:
    """The packaged browser client file *name* (:data:`CLIENT_JS` or :data:`CLIENT_TYPES`)."""
    return Asset(files(__name__).joinpath(name), cross_origin=True)

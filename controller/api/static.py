"""The web console's files (controller/api/static/), served by the REST app without a token:
they hold no data; the page asks for a token and every API call it makes carries it.

    GET /                 console.html
    GET /static/<name>    a file of that folder (js, css, svg, ...); nothing else, no sub-folders

Only names listed in the folder when the app starts can be served, so no path (``..``,
``%2e%2e/``, absolute, encoded slashes) can reach another file. Every answer forbids what
the console does not need: scripts, styles and connections from anywhere but the
controller itself (Content-Security-Policy), framing, MIME sniffing, referrers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from webob import Request, Response

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX = "console.html"
PREFIX = "/static/"

TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain",
    ".json": "application/json",
}
TEXT = {".html", ".js", ".mjs", ".css", ".svg", ".txt", ".json"}

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Revalidate every time (a 304 when unchanged): a controller upgrade never leaves old js running.
    "Cache-Control": "no-cache",
}


class StaticFiles:
    """The folder's files, read once: name -> (bytes, content type, etag)."""

    def __init__(self, folder: Path = STATIC_DIR) -> None:
        self.files: dict[str, tuple[bytes, str, str]] = {}
        if not folder.is_dir():
            return
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.startswith(".") and path.suffix in TYPES:
                data = path.read_bytes()
                ctype = TYPES[path.suffix] + ("; charset=utf-8" if path.suffix in TEXT else "")
                self.files[path.name] = (data, ctype, hashlib.sha256(data).hexdigest()[:32])

    @staticmethod
    def wants(path: str) -> bool:
        """Is this a console path (not the API's)?"""
        return path == "/" or path.startswith(PREFIX)

    def name(self, path: str) -> str | None:
        """The file a console path asks for, or None when it is none of the folder's."""
        name = INDEX if path == "/" else path[len(PREFIX) :]
        return name if name in self.files else None

    def response(self, req: Request, name: str) -> Response:
        data, ctype, etag = self.files[name]
        resp = Response(body=data, conditional_response=True)
        resp.headers["Content-Type"] = ctype
        resp.etag = etag
        for k, v in HEADERS.items():
            resp.headers[k] = v
        return resp

"""The files of ``streamtag/web`` that the feed serves over plain HTTP, and the responses that carry them.

A URL path names a page (``/``, ``/overlay``) or ``/static/<name>``; only names of letters, digits, ``_``, ``.``
and ``-`` with a known extension, for a regular file (not a link) in the folder, are served: nothing else on
the disk can be reached by a crafted path.
"""

from __future__ import annotations

import email.utils
import http
import re
from pathlib import Path
from typing import Any

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
PAGES = {"/": "dashboard.html", "/overlay": "overlay.html"}
_STATIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}$")


def web_file(web_dir: Path, pages: dict[str, str], path: str) -> Path | None:
    """The file of ``web_dir`` that URL ``path`` names, or None (404)."""
    name = pages.get(path)
    if name is None and path.startswith("/static/"):
        name = path[len("/static/") :]
    if name is None or not _STATIC_NAME.match(name) or Path(name).suffix not in CONTENT_TYPES:
        return None
    file = web_dir / name
    return file if file.is_file() and not file.is_symlink() else None


def file_response(file: Path) -> Any:
    return response(file.read_bytes(), CONTENT_TYPES[file.suffix])


def response(body: bytes, content_type: str, *, status: int = 200) -> Any:
    """A websockets HTTP response (``process_request`` returns it instead of upgrading)."""
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", content_type),
            ("Cache-Control", "no-cache"),
            ("X-Content-Type-Options", "nosniff"),
        ]
    )
    return Response(status, http.HTTPStatus(status).phrase, headers, body)

"""The console's own CSS, JavaScript and icons under `/admin/static/`.

The files are read once, at start, and served from memory with their content type. Pages link
them as `/admin/static/<name>?v=<digest of the content>`: a URL with the current digest may be
cached for a year (a change gives a new URL), any other is revalidated through its ETag. Nothing
outside `admin_ui/static/` is reachable, and only the kinds of files listed here are served.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.router import Router

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PATH = "/admin/static"
CONTENT_TYPES = {  # Litestar adds "; charset=utf-8" to text types
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    version: str

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


class StaticAssets:
    def __init__(self, directory: Path) -> None:
        self.assets: dict[str, Asset] = {}
        for path in sorted(directory.rglob("*")):
            content_type = CONTENT_TYPES.get(path.suffix.lower())
            if not path.is_file() or content_type is None:
                continue
            body = path.read_bytes()
            name = path.relative_to(directory).as_posix()
            version = hashlib.sha256(body).hexdigest()[:12]
            self.assets[name] = Asset(body=body, content_type=content_type, version=version)

    def url(self, name: str) -> str:
        """The versioned URL of a file; an unknown name is a mistake in a template."""
        asset = self.assets.get(name)
        if asset is None:
            raise KeyError(f"no static file '{name}' in {STATIC_DIR}")
        return f"{STATIC_PATH}/{name}?v={asset.version}"


@cache
def static_assets() -> StaticAssets:
    return StaticAssets(STATIC_DIR)


@get("/{file_path:path}", include_in_schema=False, sync_to_thread=False)
def static_file(request: Request[Any, Any, Any], file_path: str) -> Response[bytes]:
    asset = static_assets().assets.get(file_path.lstrip("/"))
    if asset is None:
        return Response(
            b"Not found\n",
            status_code=404,
            media_type="text/plain",
            headers={"Cache-Control": REVALIDATE},
        )
    headers = {
        "ETag": asset.etag,
        "Cache-Control": IMMUTABLE
        if request.query_params.get("v") == asset.version
        else REVALIDATE,
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(b"", status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)


def static_router() -> Router:
    """No guard: the sign-in page needs its style sheet before anyone is signed in."""
    return Router(path=STATIC_PATH, route_handlers=[static_file])

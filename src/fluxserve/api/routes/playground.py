"""The browser playground: ``GET /`` is its page, ``GET /playground/{path}`` its static files.

The files ship inside the package (``fluxserve/api/static``): plain ES modules and CSS, no build
step and nothing fetched from elsewhere, so the playground works offline. The page talks to the
service only through the public API (signed in the browser), so serving it needs no credentials.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, JSONResponse, Response

router = APIRouter()

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}

_SECURITY_HEADERS = {
    # Scripts and styles only from this origin; images may come from the output URLs (which can be
    # on another public host behind a proxy) and from local previews of picked files (blob:).
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data: http: https:; "
        "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def static_file(relative: str) -> Path | None:
    """The shipped file at ``relative``, or None when it is not one (no way out of the folder)."""
    candidate = (STATIC_DIR / relative).resolve()
    if not candidate.is_relative_to(STATIC_DIR) or not candidate.is_file():
        return None
    if candidate.suffix not in _CONTENT_TYPES:
        return None
    return candidate


def _file_response(path: Path) -> Response:
    return FileResponse(path, media_type=_CONTENT_TYPES[path.suffix], headers=_SECURITY_HEADERS)


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def page() -> Response:
    return _file_response(STATIC_DIR / "index.html")


@router.api_route("/playground/{relative:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def asset(relative: str) -> Response:
    path = static_file(relative)
    if path is None:
        return JSONResponse({"result": False, "errors": [{"code": 1, "message": "File not found."}]}, 404)
    return _file_response(path)

"""The operator web console: static files from ``dashboards/console``.

Public on purpose: the shell holds no data, and every data route it calls checks the
caller's session. Served by explicit routes rather than a ``StaticFiles`` mount so the
security headers below ride on every response and the role table sees the routes.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse

CONSOLE_DIR = (Path(__file__).resolve().parents[2] / "dashboards" / "console").resolve()

# 'self' only: the console runs offline (no CDN, no external fonts) and never inline
# code, so an injected <script> or style cannot run. blob:/data: for snapshots, ws:
# for the live alert socket. No page may frame it (clickjacking), as X-Frame-Options says.
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    # A new deploy must reach operators on reload; files are small and on the LAN.
    "Cache-Control": "no-cache",
}
# Browsers refuse ES modules served with a wrong type, and mimetypes varies by host.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".wav": "audio/wav",
}

router = APIRouter(tags=["console"], include_in_schema=False)


def _file(path: Path) -> FileResponse:
    media_type = MEDIA_TYPES.get(path.suffix)
    if media_type is None or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="not found")
    return FileResponse(path, media_type=media_type, headers=SECURITY_HEADERS)


@router.get("/")
async def console_index() -> FileResponse:
    """The console's single page; pages are hash routes (#/wall, #/alerts, …)."""
    return _file(CONSOLE_DIR / "index.html")


@router.get("/console/{path:path}")
async def console_file(path: str) -> FileResponse:
    """A static file of the console. Resolved and checked to stay inside the console
    directory, so ``..`` or symlinks cannot reach the rest of the disk."""
    target = (CONSOLE_DIR / path).resolve()
    if not target.is_relative_to(CONSOLE_DIR):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="not found")
    return _file(target)

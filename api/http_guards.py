"""Protections every HTTP response and request gets, whatever the route.

* Security headers on every response. Routes that need their own (the console's
  CSP, the API docs') set them; the middleware only fills in what is missing.
* A request body larger than ``MAX_BODY_BYTES`` is refused with 413 before it is
  read into memory: FastAPI and uvicorn would otherwise buffer any size.
* A NUL character in the path or a query parameter is a 422 naming where it is:
  no id, name or search text can hold one, SQLite stores it silently, and
  PostgreSQL refuses it with an error that would otherwise surface as a 500.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The largest legitimate body is a camera with its zones and rules (a few KiB).
MAX_BODY_BYTES = 1024 * 1024

# JSON, media and everything else the API answers: nothing in it may run, load or be
# framed. img-src/media-src let a snapshot or a clip opened in its own tab display.
API_CSP = "default-src 'none'; img-src 'self'; media-src 'self'; frame-ancestors 'none'"
# Swagger UI and ReDoc, as FastAPI serves them: an inline bootstrap script and their
# bundles from the jsDelivr CDN (they only work where that is reachable).
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https:; "
    "worker-src 'self' blob:; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = DOCS_CSP if path.startswith(DOCS_PATHS) else API_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in (*BASE_HEADERS.items(), ("Content-Security-Policy", csp)):
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _json_response(send: Send, status: int, body: dict[str, object]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _nul_locations(scope: Scope) -> list[list[str]]:
    found: list[list[str]] = []
    if "\x00" in scope.get("path", ""):
        found.append(["path"])
    query = scope.get("query_string", b"").decode("latin-1")
    if "%00" in query or "\x00" in query:
        for name, value in parse_qsl(query, keep_blank_values=True):
            if "\x00" in value or "\x00" in name:
                found.append(["query", name.replace("\x00", "")])
    return found


class RequestLimitsMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nul = _nul_locations(scope)
        if nul:
            detail = [
                {"loc": loc, "msg": "must not contain a NUL character", "type": "value_error"}
                for loc in nul
            ]
            await _json_response(send, 422, {"detail": detail})
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send)
            return
        received = 0

        async def counted_receive() -> Message:
            # A chunked body has no length up front: count it as the route reads it.
            # FastAPI passes an HTTPException raised here through its body parsing.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(413, self._too_large_detail())
            return message

        await self.app(scope, counted_receive, send)

    def _too_large_detail(self) -> str:
        return f"the request body is larger than {self.max_body_bytes // 1024} KiB: send less"

    async def _too_large(self, send: Send) -> None:
        await _json_response(send, 413, {"detail": self._too_large_detail()})

"""A database or bus that does not answer now gives 503 with Retry-After, not 500.

- SQLite answers "database is locked" when another connection holds the write lock
  longer than the busy timeout (core/storage/db.py); PostgreSQL refuses
  connections while it restarts.
- Redis/Valkey restarting: every signed-in request checks its token against the
  revocation list there (api/auth.py), so it cannot be answered either way; it is
  refused as unavailable rather than let through unchecked.

Neither is a bug in the request: the client is told to try again shortly, and the
operator sees the cause in the log (docs/architecture.md, "When Redis or the
database fails").
"""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5
DATABASE_DETAIL = (
    "the database is busy or unavailable (another program may hold its write lock); "
    f"nothing was changed, try again in {RETRY_AFTER_S} seconds"
)
BUS_DETAIL = (
    "Redis/Valkey (the event bus) does not answer, so this request cannot be checked "
    f"or served now; nothing was changed, try again in {RETRY_AFTER_S} seconds"
)


def _unavailable(detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
    )


async def database_unavailable_handler(request: Request, exc: Exception) -> JSONResponse:
    cause = getattr(exc, "orig", None) or exc
    log.warning("%s %s: database unavailable: %s", request.method, request.url.path, cause)
    return _unavailable(DATABASE_DETAIL)


async def bus_unavailable_handler(request: Request, exc: Exception) -> JSONResponse:
    log.warning("%s %s: bus unavailable: %s", request.method, request.url.path, exc)
    return _unavailable(BUS_DETAIL)

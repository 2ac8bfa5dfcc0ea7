"""Who is calling, and may they: users with roles, API keys, and the role check
every route declares.

INTERFACE (stable):
- ``Role``: admin | operator | police | viewer.
- ``Principal``: the caller; ``actor`` is what the audit log records
  ("user:anh", "api_key:vms-bridge").
- ``require(*roles)``: a FastAPI dependency; use as
  ``principal: Annotated[Principal, Depends(require(*REVIEW))]``. 401 without valid
  credentials, 403 when the caller's role is not among ``roles``.
- Role groups: ``EVERYONE``, ``MEDIA`` (may watch footage), ``REVIEW`` (police
  review actions), ``ADMIN_ONLY``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NoReturn

from fastapi import HTTPException, WebSocket, WebSocketException
from fastapi.dependencies.models import Dependant
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from api.deps import get_auth_config, get_redis, get_users
from api.security import (
    InvalidTokenError,
    api_secret_matches,
    decode_token,
    parse_api_key,
    revoked_token_key,
)


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    POLICE = "police"
    VIEWER = "viewer"


EVERYONE: tuple[Role, ...] = (Role.ADMIN, Role.OPERATOR, Role.POLICE, Role.VIEWER)
MEDIA: tuple[Role, ...] = (Role.ADMIN, Role.OPERATOR, Role.POLICE)
REVIEW: tuple[Role, ...] = (Role.ADMIN, Role.POLICE)
ADMIN_ONLY: tuple[Role, ...] = (Role.ADMIN,)


@dataclass(frozen=True, slots=True)
class Principal:
    actor: str  # "user:<username>" or "api_key:<name>"
    role: Role
    username: str | None = None  # None for API keys


class RoleCheck:
    """The dependency ``require`` returns. ``roles`` is public so tests and docs can
    read which roles a route declared."""

    def __init__(self, roles: tuple[Role, ...]) -> None:
        if not roles:
            raise ValueError("require() needs at least one role, e.g. require(*EVERYONE)")
        self.roles = frozenset(Role(r) for r in roles)

    def __repr__(self) -> str:
        return f"require({', '.join(sorted(self.roles))})"

    async def __call__(self, conn: HTTPConnection) -> Principal:
        principal = await authenticate(conn)
        if principal is None:
            await _deny(conn, 401, "not authenticated: log in or send an API key")
        if principal.role not in self.roles:
            allowed = ", ".join(sorted(self.roles))
            await _deny(conn, 403, f"role {principal.role} may not do this (needs: {allowed})")
        return principal


def require(*roles: Role) -> Callable[..., Any]:
    """Dependency: the authenticated caller, if their role is among ``roles``."""
    return RoleCheck(roles)


async def _deny(conn: HTTPConnection, status: int, detail: str) -> NoReturn:
    if isinstance(conn, WebSocket):
        # Accept, then close with an application code: a handshake refused with an
        # HTTP status reaches browsers as a bare 1006, and the console could not tell
        # "log in again" (4401) from "not allowed" (4403) from a network problem.
        await conn.accept()
        raise WebSocketException(code=4000 + status, reason=detail)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    raise HTTPException(status_code=status, detail=detail, headers=headers)


def _bearer(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


async def authenticate(conn: HTTPConnection) -> Principal | None:
    """The caller from, in order: ``Authorization: Bearer``, ``X-API-Key``, the session
    cookie, and for WebSockets only ``?token=`` (browsers cannot set headers on a
    WebSocket; query strings end up in logs, so plain HTTP does not accept it).
    Credentials that are present but invalid never fall through to the next kind."""
    config = get_auth_config(conn)
    token = _bearer(conn)
    if token is None and (api_key := conn.headers.get("x-api-key")):
        return await _from_api_key(conn, api_key)
    if token is None:
        token = conn.cookies.get(config.cookie_name)
    if token is None and isinstance(conn, WebSocket):
        token = conn.query_params.get("token")
    if not token:
        return None
    return await principal_from_token(conn, token)


async def principal_from_token(conn: HTTPConnection, token: str) -> Principal | None:
    try:
        claims = decode_token(get_auth_config(conn), token)
    except InvalidTokenError:
        return None
    if await get_redis(conn).exists(revoked_token_key(claims.jti)):
        return None  # logged out
    user = await run_in_threadpool(get_users(conn).get_user, claims.username)
    if user is None or not user.active:
        return None
    return Principal(actor=f"user:{user.username}", role=Role(user.role), username=user.username)


async def _from_api_key(conn: HTTPConnection, api_key: str) -> Principal | None:
    parsed = parse_api_key(api_key)
    if parsed is None:
        return None
    prefix, secret = parsed
    users = get_users(conn)
    key = await run_in_threadpool(users.get_api_key, prefix)
    if key is None or key.revoked or not api_secret_matches(secret, key.key_hash):
        return None
    await run_in_threadpool(users.touch_api_key, key)
    return Principal(actor=f"api_key:{key.name}", role=Role(key.role))


def declared_roles(dependant: Dependant | None) -> frozenset[Role] | None:
    """The roles a route's ``require(...)`` admits (the intersection if it declares
    several); None if it declares none, i.e. the route is public."""
    if dependant is None:
        return None
    found: frozenset[Role] | None = None
    for sub in dependant.dependencies:
        if isinstance(sub.call, RoleCheck):
            found = sub.call.roles if found is None else found & sub.call.roles
        inner = declared_roles(sub)
        if inner is not None:
            found = inner if found is None else found & inner
    return found

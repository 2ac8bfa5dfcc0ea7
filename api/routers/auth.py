"""Log in, log out, who am I. Login is rate limited per username and client address
in Redis, so guessing passwords is slow even across API workers."""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from starlette.concurrency import run_in_threadpool

from api.auth import EVERYONE, Principal, require
from api.auth_schemas import LoginRequest, LoginResponse, Me, PasswordChange, UserOut
from api.deps import get_auth_config, get_redis, get_users
from api.security import (
    InvalidTokenError,
    decode_token,
    issue_token,
    revoked_token_key,
)
from core.passwords import burn_verify_time, hash_password, verify_password
from core.storage.users import User, normalize_username

log = logging.getLogger(__name__)
router = APIRouter(tags=["auth"])


def user_out(user: User) -> UserOut:
    return UserOut.model_validate(user, from_attributes=True)


def _client_ip(request: Request) -> str:
    # Behind a reverse proxy this is the proxy: run uvicorn with --proxy-headers
    # (and --forwarded-allow-ips) so limits stay per real client.
    return request.client.host if request.client else "unknown"


def _failures_key(username: str, ip: str) -> str:
    return f"auth:fail:{username}:{ip}"


def _set_session_cookie(response: Response, request: Request, token: str, ttl_s: int) -> None:
    response.set_cookie(
        get_auth_config(request).cookie_name,
        token,
        max_age=ttl_s,
        path="/",
        httponly=True,  # page scripts never see it
        secure=True,  # never sent over plain HTTP
        samesite="strict",  # never sent on cross-site requests: no CSRF
    )


@router.post("/api/auth/login", response_model=LoginResponse)
async def login(body: LoginRequest, request: Request, response: Response) -> LoginResponse:
    """Public. Returns a bearer token and sets the same token as the session cookie."""
    username = normalize_username(body.username)
    ip = _client_ip(request)
    redis = get_redis(request)
    config = get_auth_config(request)
    key = _failures_key(username, ip)
    failures = int(await redis.get(key) or 0)
    if failures >= config.max_failed_logins:
        retry_after = max(int(await redis.ttl(key)), 1)
        log.warning("login blocked for %r from %s: too many failures", username, ip)
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"too many failed logins for {username!r}: try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
    users = get_users(request)
    user = await run_in_threadpool(users.get_user, username)
    if user is None:
        await run_in_threadpool(burn_verify_time, body.password)
        ok = False
    else:
        ok = await run_in_threadpool(verify_password, body.password, user.password_hash)
    if user is None or not ok or not user.active:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, config.failed_login_window_s, nx=True)
            await pipe.execute()
        reason = "unknown user" if user is None else "inactive" if ok else "wrong password"
        log.warning("login failed for %r from %s: %s", username, ip, reason)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="wrong username or password, or the account is deactivated",
        )
    await redis.delete(key)
    await run_in_threadpool(users.record_login, username)
    token, expires_ts = issue_token(config, username)
    _set_session_cookie(response, request, token, config.token_ttl_s)
    log.info("login ok for %r (%s) from %s", username, user.role, ip)
    return LoginResponse(
        access_token=token,
        expires_in=config.token_ttl_s,
        expires_ts=expires_ts,
        user=user_out(user),
    )


@router.post("/api/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(request: Request, response: Response) -> None:
    """Public, so an expired session can still clear its cookie. A valid token (bearer
    or cookie) is revoked until it would have expired."""
    config = get_auth_config(request)
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    token = token or request.cookies.get(config.cookie_name)
    if token:
        try:
            claims = decode_token(config, token)
        except InvalidTokenError:
            pass
        else:
            ttl = max(int(claims.expires_ts - time.time()) + 1, 1)
            await get_redis(request).set(revoked_token_key(claims.jti), b"1", ex=ttl)
            log.info("logout for %r", claims.username)
    response.delete_cookie(
        config.cookie_name, path="/", secure=True, httponly=True, samesite="strict"
    )


@router.get("/api/auth/me", response_model=Me)
async def me(principal: Annotated[Principal, Depends(require(*EVERYONE))]) -> Me:
    return Me(actor=principal.actor, role=principal.role, username=principal.username)


@router.post("/api/auth/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    body: PasswordChange,
    request: Request,
    principal: Annotated[Principal, Depends(require(*EVERYONE))],
) -> None:
    """Change one's own password (users only; API keys are revoked and re-created)."""
    if principal.username is None:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, detail="API keys have no password: create a new key"
        )
    users = get_users(request)
    user = await run_in_threadpool(users.get_user, principal.username)
    ok = user is not None and await run_in_threadpool(
        verify_password, body.current_password, user.password_hash
    )
    if not ok:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[
                {
                    "loc": ["body", "current_password"],
                    "msg": "current_password is wrong",
                    "type": "value_error",
                }
            ],
        )
    new_hash = await run_in_threadpool(hash_password, body.new_password)
    await run_in_threadpool(users.update_user, principal.username, password_hash=new_hash)
    log.info("password changed for %r", principal.username)

"""User and API key management, for admins only."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from starlette.concurrency import run_in_threadpool

from api.auth import ADMIN_ONLY, Principal, require
from api.auth_schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, UserCreate, UserOut, UserUpdate
from api.deps import get_users
from api.params import RowId
from api.routers.auth import user_out
from api.security import new_api_key
from core.passwords import hash_password
from core.storage.users import ApiKey, DuplicateUsernameError, LastAdminError, normalize_username

log = logging.getLogger(__name__)
router = APIRouter(tags=["users"])
Admin = Annotated[Principal, Depends(require(*ADMIN_ONLY))]


def _key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut.model_validate(key, from_attributes=True)


# The api-keys routes come first: /api/users/{username} must not swallow them.


@router.get("/api/users/api-keys", response_model=list[ApiKeyOut])
async def list_api_keys(request: Request, _admin: Admin) -> list[ApiKeyOut]:
    keys = await run_in_threadpool(get_users(request).list_api_keys)
    return [_key_out(k) for k in keys]


@router.post(
    "/api/users/api-keys", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED
)
async def create_api_key(body: ApiKeyCreate, request: Request, admin: Admin) -> ApiKeyCreated:
    """The full key is in this response only; the server keeps a SHA-256 of it."""
    full_key, prefix, key_hash = new_api_key()
    key = await run_in_threadpool(
        get_users(request).create_api_key,
        body.name,
        prefix,
        key_hash,
        body.role.value,
        admin.actor,
    )
    log.info("API key %r (%s, %s) created by %s", key.name, key.prefix, key.role, admin.actor)
    return ApiKeyCreated(**_key_out(key).model_dump(), key=full_key)


@router.delete("/api/users/api-keys/{key_id}", response_model=ApiKeyOut)
async def revoke_api_key(key_id: RowId, request: Request, admin: Admin) -> ApiKeyOut:
    key = await run_in_threadpool(get_users(request).revoke_api_key, key_id)
    if key is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"no API key with id {key_id}: list them at GET /api/users/api-keys",
        )
    log.info("API key %r (%s) revoked by %s", key.name, key.prefix, admin.actor)
    return _key_out(key)


@router.get("/api/users", response_model=list[UserOut])
async def list_users(request: Request, _admin: Admin) -> list[UserOut]:
    return [user_out(u) for u in await run_in_threadpool(get_users(request).list_users)]


@router.post("/api/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
async def create_user(body: UserCreate, request: Request, admin: Admin) -> UserOut:
    password_hash = await run_in_threadpool(hash_password, body.password)
    try:
        user = await run_in_threadpool(
            get_users(request).create_user,
            body.username,
            password_hash,
            body.role.value,
            body.display_name,
        )
    except DuplicateUsernameError as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"username {body.username!r} is already taken: choose another username, "
            "or PATCH the existing user",
        ) from exc
    log.info("user %r (%s) created by %s", user.username, user.role, admin.actor)
    return user_out(user)


@router.patch("/api/users/{username}", response_model=UserOut)
async def update_user(username: str, body: UserUpdate, request: Request, admin: Admin) -> UserOut:
    """Change role, display name, password, or deactivate (``active: false``)."""
    name = normalize_username(username)
    password_hash = (
        None if body.password is None else await run_in_threadpool(hash_password, body.password)
    )
    try:
        user = await run_in_threadpool(
            lambda: get_users(request).update_user(
                name,
                role=None if body.role is None else body.role.value,
                active=body.active,
                display_name=body.display_name,
                password_hash=password_hash,
            )
        )
    except LastAdminError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    if user is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"no user {name!r}: list them at GET /api/users",
        )
    changed = sorted(body.model_dump(exclude_none=True, exclude={"password"}))
    if body.password is not None:
        changed.append("password")
    log.info("user %r updated by %s: %s", name, admin.actor, ", ".join(changed))
    return user_out(user)

"""Cameras: configuration (add, change, remove at run time) and live health.

Changes create a new camera config version and announce it on Redis; the
pipeline applies it to that camera only, without restarting the others.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, HTTPException, Response, status
from starlette.concurrency import run_in_threadpool

from api.auth import ADMIN_ONLY, EVERYONE, Principal, require
from api.deps import get_config_lock, get_config_store, get_redis
from api.schemas import CameraHealthOut, CameraOut
from core.bus import CONFIG_CHANNEL, HEALTH_HASH
from core.config import CameraConfig
from core.errors import ConfigError
from core.redact import redact_url
from core.storage.audit import Change, ChangesFor, camera_diff
from core.storage.config_store import ConfigStore, validate_cameras

router = APIRouter(prefix="/api/cameras", tags=["cameras"])

Redis = Annotated[aioredis.Redis, Depends(get_redis)]
Store = Annotated[ConfigStore, Depends(get_config_store)]
Lock = Annotated[asyncio.Lock, Depends(get_config_lock)]
Admin = Annotated[Principal, Depends(require(*ADMIN_ONLY))]


async def _health(client: aioredis.Redis) -> dict[str, CameraHealthOut]:
    raw = await client.hgetall(HEALTH_HASH)
    return {
        (k.decode() if isinstance(k, bytes) else k): CameraHealthOut(**json.loads(v))
        for k, v in raw.items()
    }


async def _cameras(store: ConfigStore) -> list[CameraConfig]:
    latest = await run_in_threadpool(store.latest)
    return latest.cameras if latest is not None else []


def redacted(camera: CameraConfig) -> CameraConfig:
    """The camera with credentials in its URLs shown as ``***``."""
    record_url = redact_url(camera.record_url) if camera.record_url else camera.record_url
    return camera.model_copy(update={"url": redact_url(camera.url), "record_url": record_url})


def _out(camera: CameraConfig, health: CameraHealthOut | None) -> CameraOut:
    return CameraOut(**redacted(camera).model_dump(mode="json"), health=health)


def _keep_secret(new_url: str | None, old_url: str | None) -> str | None:
    """A client that sends back the redacted URL means "keep the stored credentials"."""
    if new_url and old_url and "://***@" in new_url and redact_url(old_url) == new_url:
        return old_url
    return new_url


async def save_cameras(
    store: ConfigStore,
    client: aioredis.Redis,
    cameras: list[CameraConfig],
    actor: str,
    comment: str,
    audit: ChangesFor,
) -> int:
    """Validate, store as a new version authored by ``actor`` together with its audit
    entries (one transaction), then tell the pipeline. Every camera config change
    made through the API goes through here; hold the config lock around the
    read-modify-save so two edits do not lose one another."""
    try:
        validated = validate_cameras([c.model_dump() for c in cameras])
    except ConfigError as exc:
        raise HTTPException(422, exc.errors) from exc
    version = await run_in_threadpool(store.save, validated, actor, comment, None, audit)
    await client.publish(CONFIG_CHANNEL, str(version))
    return version


def camera_change(
    actor: str, action: str, old: CameraConfig | None, new: CameraConfig | None
) -> ChangesFor:
    """The audit entry of one camera's change; ``after`` names the new version."""
    before, after = camera_diff(old, new)
    camera = new or old
    assert camera is not None
    return lambda version: [
        Change(
            actor, action, "camera", camera.id, before, {**(after or {}), "config_version": version}
        )
    ]


@router.get("", response_model=list[CameraOut], dependencies=[Depends(require(*EVERYONE))])
async def list_cameras(store: Store, client: Redis) -> list[CameraOut]:
    health = await _health(client)
    return [_out(c, health.get(c.id)) for c in await _cameras(store)]


@router.get("/{camera_id}", response_model=CameraOut, dependencies=[Depends(require(*EVERYONE))])
async def get_camera(store: Store, client: Redis, camera_id: str) -> CameraOut:
    for camera in await _cameras(store):
        if camera.id == camera_id:
            return _out(camera, (await _health(client)).get(camera_id))
    raise HTTPException(404, f"camera {camera_id!r} is not configured")


@router.get(
    "/{camera_id}/health",
    response_model=CameraHealthOut,
    dependencies=[Depends(require(*EVERYONE))],
)
async def camera_health(client: Redis, camera_id: str) -> CameraHealthOut:
    raw = await client.hget(HEALTH_HASH, camera_id)
    if raw is None:
        raise HTTPException(
            404, f"camera {camera_id!r} is not running (not configured or disabled)"
        )
    return CameraHealthOut(**json.loads(raw))


@router.post(
    "",
    response_model=CameraOut,
    status_code=status.HTTP_201_CREATED,
)
async def add_camera(
    store: Store, client: Redis, lock: Lock, principal: Admin, camera: CameraConfig
) -> CameraOut:
    async with lock:
        cameras = await _cameras(store)
        if any(c.id == camera.id for c in cameras):
            raise HTTPException(
                409, f"camera {camera.id!r} exists; use PUT /api/cameras/{camera.id}"
            )
        change = camera_change(principal.actor, "camera.create", None, camera)
        await save_cameras(
            store, client, [*cameras, camera], principal.actor, f"add camera {camera.id}", change
        )
    return _out(camera, None)


@router.put("/{camera_id}", response_model=CameraOut)
async def update_camera(
    store: Store, client: Redis, lock: Lock, principal: Admin, camera_id: str, camera: CameraConfig
) -> CameraOut:
    if camera.id != camera_id:
        raise HTTPException(422, f"body id {camera.id!r} does not match the path id {camera_id!r}")
    async with lock:
        cameras = await _cameras(store)
        old = next((c for c in cameras if c.id == camera_id), None)
        if old is None:
            raise HTTPException(404, f"camera {camera_id!r} is not configured; use POST to add it")
        camera = camera.model_copy(
            update={
                "url": _keep_secret(camera.url, old.url),
                "record_url": _keep_secret(camera.record_url, old.record_url),
            }
        )
        new_list = [camera if c.id == camera_id else c for c in cameras]
        change = camera_change(principal.actor, "camera.update", old, camera)
        comment = f"update camera {camera_id}"
        await save_cameras(store, client, new_list, principal.actor, comment, change)
    return _out(camera, None)


@router.delete(
    "/{camera_id}",
    status_code=status.HTTP_204_NO_CONTENT,
)
async def remove_camera(
    store: Store, client: Redis, lock: Lock, principal: Admin, camera_id: str
) -> Response:
    async with lock:
        cameras = await _cameras(store)
        old = next((c for c in cameras if c.id == camera_id), None)
        if old is None:
            raise HTTPException(404, f"camera {camera_id!r} is not configured")
        change = camera_change(principal.actor, "camera.delete", old, None)
        rest = [c for c in cameras if c.id != camera_id]
        await save_cameras(
            store, client, rest, principal.actor, f"remove camera {camera_id}", change
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)

"""Cameras: live health as the ingest process reports it."""

from __future__ import annotations

import json
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, HTTPException

from api.deps import get_redis
from api.schemas import CameraHealthOut
from core.bus import HEALTH_HASH

router = APIRouter(prefix="/api/cameras", tags=["cameras"])

Redis = Annotated[aioredis.Redis, Depends(get_redis)]


@router.get("", response_model=list[CameraHealthOut])
async def list_cameras(client: Redis) -> list[CameraHealthOut]:
    raw = await client.hgetall(HEALTH_HASH)
    items = [CameraHealthOut(**json.loads(v)) for v in raw.values()]
    return sorted(items, key=lambda c: c.camera_id)


@router.get("/{camera_id}/health", response_model=CameraHealthOut)
async def camera_health(client: Redis, camera_id: str) -> CameraHealthOut:
    raw = await client.hget(HEALTH_HASH, camera_id)
    if raw is None:
        raise HTTPException(404, f"camera {camera_id!r} is not known to the running service")
    return CameraHealthOut(**json.loads(raw))

"""Camera configuration versions: who changed what, when; one version's cameras;
rollback to an old version (as a new version, so history is never rewritten)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, HTTPException, Query, status
from starlette.concurrency import run_in_threadpool

from api.auth import ADMIN_ONLY, EVERYONE, Principal, require
from api.deps import get_config_lock, get_config_store, get_redis
from api.params import RowId
from api.routers.cameras import redacted, save_cameras
from api.schemas import ConfigVersionDetailOut, ConfigVersionOut, RollbackOut
from core.errors import ConfigError
from core.storage.audit import Change
from core.storage.config_store import CamerasVersion, ConfigStore

router = APIRouter(prefix="/api/config", tags=["config"])


@router.get(
    "/versions", response_model=list[ConfigVersionOut], dependencies=[Depends(require(*EVERYONE))]
)
async def config_versions(
    store: Annotated[ConfigStore, Depends(get_config_store)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[ConfigVersionOut]:
    history = await run_in_threadpool(store.history, limit)
    return [
        ConfigVersionOut(
            id=v.id,
            created_ts=v.created_ts,
            author=v.author,
            comment=v.comment,
            camera_ids=[c.id for c in v.cameras],
        )
        for v in history
    ]


Store = Annotated[ConfigStore, Depends(get_config_store)]


async def _version(store: ConfigStore, version_id: int) -> CamerasVersion:
    try:
        version = await run_in_threadpool(store.get, version_id)
    except ConfigError as exc:
        # An old version that the current schema rejects cannot be shown or restored.
        errors = [f"config version {version_id} no longer validates", *exc.errors]
        raise HTTPException(409, errors) from exc
    if version is None:
        raise HTTPException(
            404, f"config version {version_id} not found; GET /api/config/versions lists them"
        )
    return version


@router.get(
    "/versions/{version_id}",
    response_model=ConfigVersionDetailOut,
    dependencies=[Depends(require(*EVERYONE))],
)
async def config_version(store: Store, version_id: RowId) -> ConfigVersionDetailOut:
    """One version with its cameras; credentials in URLs are shown as ``***``."""
    v = await _version(store, version_id)
    return ConfigVersionDetailOut(
        id=v.id,
        created_ts=v.created_ts,
        author=v.author,
        comment=v.comment,
        camera_ids=[c.id for c in v.cameras],
        cameras=[redacted(c) for c in v.cameras],
    )


@router.post(
    "/versions/{version_id}/rollback",
    response_model=RollbackOut,
    status_code=status.HTTP_201_CREATED,
)
async def rollback(
    store: Store,
    client: Annotated[aioredis.Redis, Depends(get_redis)],
    lock: Annotated[asyncio.Lock, Depends(get_config_lock)],
    principal: Annotated[Principal, Depends(require(*ADMIN_ONLY))],
    version_id: RowId,
) -> RollbackOut:
    """Make an old version's camera list live again, as a new version authored by the
    caller (audited, announced to the pipeline like any camera edit)."""
    async with lock:
        old = await _version(store, version_id)
        latest = await run_in_threadpool(store.latest)
        if latest is not None and latest.id == version_id:
            raise HTTPException(409, f"config version {version_id} is already the live one")
        live = {c.id: c for c in latest.cameras} if latest is not None else {}
        restored = {c.id: c for c in old.cameras}
        before = {"version": latest.id if latest else None, "camera_ids": sorted(live)}
        changed = sorted(i for i in live.keys() & restored.keys() if live[i] != restored[i])
        after = {
            "restored_from": version_id,
            "camera_ids": sorted(restored),
            "added": sorted(restored.keys() - live.keys()),
            "removed": sorted(live.keys() - restored.keys()),
            "changed": changed,
        }
        actor = principal.actor
        version = await save_cameras(
            store,
            client,
            old.cameras,
            actor,
            f"rollback to version {version_id}",
            lambda v: [Change(actor, "config.rollback", "camera_config", str(v), before, after)],
        )
    return RollbackOut(
        version=version, restored_from=version_id, camera_ids=[c.id for c in old.cameras]
    )

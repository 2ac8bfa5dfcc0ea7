"""Pipeline workers of a cluster and the cameras each serves (``commune-vision worker``).

A single-box install (``commune-vision run``) has no workers: the list is empty and
every camera is served by the one pipeline.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.auth import EVERYONE, Principal, require
from api.deps import get_config_store, get_redis
from core.leases import LEASE_PREFIX, WORKERS_KEY, as_text, summarize_workers
from core.storage.config_store import ConfigStore

router = APIRouter(prefix="/api/workers", tags=["workers"])

Redis = Annotated[aioredis.Redis, Depends(get_redis)]
Store = Annotated[ConfigStore, Depends(get_config_store)]
Anyone = Annotated[Principal, Depends(require(*EVERYONE))]


class WorkerOut(BaseModel):
    id: str
    alive: bool = Field(description="its heartbeat has not expired")
    expires_ts: float = Field(description="when its heartbeat (and its leases) run out")
    cameras: list[str] = Field(description="cameras it holds leases on")


class WorkersOut(BaseModel):
    workers: list[WorkerOut]
    unassigned: list[str] = Field(
        description="enabled cameras no worker holds (empty on a single box: it runs all)"
    )


@router.get("", response_model=WorkersOut)
async def list_workers(client: Redis, store: Store, _user: Anyone) -> WorkersOut:
    raw: list[Any] = await client.zrange(WORKERS_KEY, 0, -1, withscores=True)
    heartbeats = [(member, float(score)) for member, score in raw]
    keys = [as_text(k) async for k in client.scan_iter(match=f"{LEASE_PREFIX}*", count=500)]
    values = await client.mget(keys) if keys else []
    holders = {
        k.removeprefix(LEASE_PREFIX): as_text(v) for k, v in zip(keys, values, strict=True) if v
    }
    views = summarize_workers(heartbeats, holders, time.time())
    latest = await run_in_threadpool(store.latest)
    enabled = [c.id for c in latest.cameras if c.enabled] if latest is not None else []
    # One box runs every camera without leases: nothing is "unassigned" there.
    unassigned = [c for c in enabled if c not in holders] if heartbeats else []
    return WorkersOut(workers=[WorkerOut(**vars(v)) for v in views], unassigned=sorted(unassigned))

"""Liveness for supervisors and load balancers."""

from __future__ import annotations

from typing import Annotated

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, Response

from api.deps import get_redis
from api.schemas import Health

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_model=Health)
async def healthz(
    response: Response, client: Annotated[aioredis.Redis, Depends(get_redis)]
) -> Health:
    checks = {"api": "ok"}
    try:
        await client.ping()
        checks["bus"] = "ok"
    except Exception as exc:  # the bus is down: report it, stay alive
        checks["bus"] = f"error: {type(exc).__name__}"
        response.status_code = 503
    return Health(status="ok" if response.status_code != 503 else "degraded", checks=checks)

"""Operational statistics: traffic counts from line-crossing rules."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from starlette.concurrency import run_in_threadpool

from api.deps import get_traffic_repo
from api.schemas import TrafficPointOut
from core.storage.repository import TrafficRepository

router = APIRouter(prefix="/api/stats", tags=["stats"])

BUCKETS = {"1m": 60.0, "5m": 300.0, "15m": 900.0, "1h": 3600.0, "1d": 86400.0}


@router.get("/traffic", response_model=list[TrafficPointOut])
async def traffic(
    repo: Annotated[TrafficRepository, Depends(get_traffic_repo)],
    camera_id: Annotated[str, Query(max_length=64)],
    line: Annotated[str | None, Query(max_length=64)] = None,
    since_ts: Annotated[float | None, Query(description="UTC epoch s; default 24 h ago")] = None,
    until_ts: Annotated[float | None, Query(description="UTC epoch s; default now")] = None,
    bucket: Literal["1m", "5m", "15m", "1h", "1d"] = "15m",
) -> list[TrafficPointOut]:
    """Crossings per line, class and direction, summed per ``bucket``."""
    until = until_ts if until_ts is not None else time.time()
    since = since_ts if since_ts is not None else until - 86400.0
    if until <= since:
        raise HTTPException(422, "until_ts must be later than since_ts")
    points = await run_in_threadpool(repo.series, camera_id, since, until, BUCKETS[bucket], line)
    return [
        TrafficPointOut(
            bucket_start_ts=p.bucket_start_ts,
            line=p.line,
            label=p.label,
            direction=p.direction,
            count=p.count,
        )
        for p in points
    ]

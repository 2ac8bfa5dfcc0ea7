"""Operational statistics: traffic counts from line-crossing rules, incident counts."""

from __future__ import annotations

import time
from typing import Annotated, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, HTTPException, Query
from starlette.concurrency import run_in_threadpool

from api.auth import EVERYONE, require
from api.deps import get_repo, get_traffic_repo
from api.params import ts_query
from api.schemas import IncidentCountOut, IncidentStatsOut, TrafficPointOut
from core.storage.repository import IncidentRepository, TrafficRepository
from core.storage.search import GROUP_KEYS, GroupKey

router = APIRouter(prefix="/api/stats", tags=["stats"])

BUCKETS = {"1m": 60.0, "5m": 300.0, "15m": 900.0, "1h": 3600.0, "1d": 86400.0}


@router.get(
    "/traffic", response_model=list[TrafficPointOut], dependencies=[Depends(require(*EVERYONE))]
)
async def traffic(
    repo: Annotated[TrafficRepository, Depends(get_traffic_repo)],
    camera_id: Annotated[str, Query(max_length=64)],
    line: Annotated[str | None, Query(max_length=64)] = None,
    since_ts: Annotated[float | None, ts_query("UTC epoch s; default 24 h ago")] = None,
    until_ts: Annotated[float | None, ts_query("UTC epoch s; default now")] = None,
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


MAX_COUNT_WINDOW_S = 3 * 366 * 86400.0


def _group_keys(group_by: str) -> list[GroupKey]:
    keys = [k.strip() for k in group_by.split(",") if k.strip()]
    unknown = [k for k in keys if k not in GROUP_KEYS]
    if unknown or len(set(keys)) != len(keys):
        raise HTTPException(
            422,
            f"group_by must be distinct keys among {', '.join(GROUP_KEYS)} "
            f"separated by commas, not {group_by!r}",
        )
    return cast(list[GroupKey], keys)


@router.get(
    "/incidents", response_model=IncidentStatsOut, dependencies=[Depends(require(*EVERYONE))]
)
def incident_counts(
    repo: Annotated[IncidentRepository, Depends(get_repo)],
    since_ts: Annotated[float | None, ts_query("UTC epoch s; default 30 days ago")] = None,
    until_ts: Annotated[float | None, ts_query("UTC epoch s; default now")] = None,
    group_by: Annotated[
        str, Query(max_length=64, description="comma-separated: camera, day, type")
    ] = "day",
    tz: Annotated[
        str, Query(max_length=64, description="time zone of the days (IANA name)")
    ] = "Asia/Ho_Chi_Minh",
) -> IncidentStatsOut:
    """Incidents that started in ``[since_ts, until_ts)``, counted per camera, local day
    and/or type. Days follow ``tz``'s calendar, daylight saving included."""
    until = until_ts if until_ts is not None else time.time()
    since = since_ts if since_ts is not None else until - 30 * 86400.0
    if until <= since:
        raise HTTPException(422, "until_ts must be later than since_ts")
    if until - since > MAX_COUNT_WINDOW_S:
        raise HTTPException(422, "until_ts - since_ts must be at most 3 years")
    keys = _group_keys(group_by)
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "Asia" is a folder
        raise HTTPException(
            422, f"tz {tz!r} is not a known time zone, e.g. Asia/Ho_Chi_Minh"
        ) from exc
    counts = repo.counts(since, until, keys, zone)
    return IncidentStatsOut(
        since_ts=since,
        until_ts=until,
        tz=tz,
        group_by=list(keys),
        total=sum(c.count for c in counts),
        groups=[
            IncidentCountOut(camera_id=c.camera_id, day=c.day, type=c.type, count=c.count)
            for c in counts
        ],
    )

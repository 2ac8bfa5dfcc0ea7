"""System events (camera state changes …), newest first, from the Redis event stream."""

from __future__ import annotations

import json
from typing import Annotated, Any, cast

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, Query

from api.auth import EVERYONE, require
from api.deps import get_redis
from api.schemas import EventOut
from core.bus import EVENT_STREAM

router = APIRouter(prefix="/api/events", tags=["events"])


@router.get("", response_model=list[EventOut], dependencies=[Depends(require(*EVERYONE))])
async def recent_events(
    client: Annotated[aioredis.Redis, Depends(get_redis)],
    camera_id: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[EventOut]:
    # Scan a bounded window; filters apply within it.
    entries = cast(
        list[tuple[bytes, dict[bytes, bytes]]],
        await client.xrevrange(EVENT_STREAM, count=max(limit * 10, 1000)),
    )
    out: list[EventOut] = []
    for entry_id, fields in entries:
        data: dict[str, Any] = json.loads(fields[b"data"])
        event_kind = fields[b"kind"].decode()
        if kind is not None and event_kind != kind:
            continue
        if camera_id is not None and data.get("camera_id") != camera_id:
            continue
        out.append(EventOut(id=entry_id.decode(), kind=event_kind, data=data))
        if len(out) == limit:
            break
    return out

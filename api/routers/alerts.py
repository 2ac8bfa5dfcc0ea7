"""Live alerts, read from the incident stream in Redis: a WebSocket for the console,
Server-Sent Events for anything that speaks plain HTTP (``EventSource``, curl).

Both take the same filters (``camera_id``, ``type``, each repeatable) and replay
what a reconnecting client missed: ``?last_id=`` (WebSocket, SSE) or the
``Last-Event-ID`` header that ``EventSource`` sends by itself (SSE). Without a
position the client gets only what happens after it connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from api.alert_stream import (
    STREAM_ID_PATTERN,
    AlertFilter,
    AlertReader,
    observe_sent,
    sse_events,
)
from api.auth import EVERYONE, require
from api.deps import get_alert_heartbeat_s, get_api_metrics, get_redis

log = logging.getLogger(__name__)
router = APIRouter(tags=["alerts"])

LastId = Annotated[
    str | None,
    Query(pattern=STREAM_ID_PATTERN, description="resume after this alert id (replay)"),
]
CameraIds = Annotated[
    list[str] | None, Query(alias="camera_id", description="only these cameras (repeatable)")
]
Types = Annotated[
    list[str] | None, Query(alias="type", description="only these incident types (repeatable)")
]


# Auth: bearer header, the session cookie (the console) or ?token=; a bad or missing
# one is accepted then closed with 4401 (4403: role not allowed).
@router.websocket("/api/alerts/ws", dependencies=[Depends(require(*EVERYONE))])
async def alerts_ws(
    websocket: WebSocket,
    last_id: LastId = None,
    camera_ids: CameraIds = None,
    types: Types = None,
) -> None:
    reader = await AlertReader.open(
        get_redis(websocket), last_id, AlertFilter.of(camera_ids, types)
    )
    metrics = get_api_metrics(websocket)
    await websocket.accept()
    # A receive task notices a client that went away while we block on Redis.
    gone = asyncio.create_task(websocket.receive())
    try:
        while True:
            if gone.done():
                if gone.result()["type"] == "websocket.disconnect":
                    break
                gone = asyncio.create_task(websocket.receive())  # ignore client chatter
            for alert in await reader.read():
                await websocket.send_json(alert.message())
                observe_sent(metrics, "ws", alert)
    except WebSocketDisconnect:
        pass
    finally:
        gone.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await gone


@router.get(
    "/api/alerts/stream",
    dependencies=[Depends(require(*EVERYONE))],
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "alert events"}},
)
async def alerts_sse(
    request: Request,
    last_id: LastId = None,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            pattern=STREAM_ID_PATTERN,
            description="sent by EventSource on reconnect; wins over last_id",
        ),
    ] = None,
    camera_ids: CameraIds = None,
    types: Types = None,
) -> StreamingResponse:
    """Server-Sent Events: one ``data:`` JSON per alert (``{"id","kind","incident"}``,
    as on the WebSocket) with ``id:`` = the stream id, and a ``: keepalive`` comment
    when nothing happened for a while."""
    reader = await AlertReader.open(
        get_redis(request), last_event_id or last_id, AlertFilter.of(camera_ids, types)
    )
    return StreamingResponse(
        sse_events(reader, get_api_metrics(request), get_alert_heartbeat_s(request)),
        media_type="text/event-stream",
        # No caching, and no buffering in a reverse proxy (nginx), or alerts arrive late.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

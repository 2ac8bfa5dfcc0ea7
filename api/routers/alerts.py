"""Live alerts over a WebSocket, read from the incident stream in Redis.

``?last_id=`` replays what a reconnecting client missed; without it the client
gets only what happens after it connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any, cast

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from api.deps import get_redis
from core.bus import INCIDENT_STREAM

log = logging.getLogger(__name__)
router = APIRouter(tags=["alerts"])

READ_BLOCK_MS = 1000

# redis-py's stream replies, with decode_responses off.
StreamReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]


@router.websocket("/api/alerts/ws")
async def alerts_ws(websocket: WebSocket, last_id: str | None = None) -> None:
    client = get_redis(websocket)
    cursor = last_id or "$"
    if cursor == "$":
        # Resolve "$" once, before accepting, so nothing published after the
        # client is connected is missed (re-reading with "$" would skip entries).
        latest = cast(list[tuple[bytes, Any]], await client.xrevrange(INCIDENT_STREAM, count=1))
        cursor = latest[0][0].decode() if latest else "0-0"
    await websocket.accept()
    # A receive task notices a client that went away while we block on Redis.
    gone = asyncio.create_task(websocket.receive())
    try:
        while True:
            if gone.done():
                if gone.result()["type"] == "websocket.disconnect":
                    break
                gone = asyncio.create_task(websocket.receive())  # ignore client chatter
            reply = cast(
                StreamReply,
                await client.xread({INCIDENT_STREAM: cursor}, block=READ_BLOCK_MS, count=100),
            )
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    cursor = entry_id.decode()
                    await websocket.send_json(
                        {
                            "id": cursor,
                            "kind": fields[b"kind"].decode(),
                            "incident": json.loads(fields[b"data"]),
                        }
                    )
    except WebSocketDisconnect:
        pass
    finally:
        gone.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await gone

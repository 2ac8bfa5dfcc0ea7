"""The newest detections of a camera, for the console's threshold preview.

Analytics publishes, once a second, each camera's newest detections before its
per-class filters (``cv:latest_detections``, ``commune_vision/analytics.py``); the
console draws them over the frame they were found on and greys out those the
thresholds being edited would drop. The frame comes from the camera's ring while it
still holds it (same host only, like the live view in ``api/live_preview.py``).
"""

from __future__ import annotations

import base64
import json
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, HTTPException
from starlette.concurrency import run_in_threadpool

from api.auth import EVERYONE, require
from api.deps import get_config_store, get_live_preview, get_redis
from api.live_preview import LivePreview
from api.replay_schemas import DetectionOut, LatestDetectionsOut
from core.bus import LATEST_DETECTIONS_HASH
from core.storage.config_store import ConfigStore
from core.types import FrameRef

router = APIRouter(prefix="/api/cameras", tags=["cameras"])


@router.get(
    "/{camera_id}/detections/latest",
    response_model=LatestDetectionsOut,
    responses={503: {"description": "no detections yet: the camera is offline or starting"}},
    # Boxes over the live picture: the live view's audience (snapshot.jpg is EVERYONE).
    dependencies=[Depends(require(*EVERYONE))],
)
async def latest_detections(
    client: Annotated[aioredis.Redis, Depends(get_redis)],
    preview: Annotated[LivePreview, Depends(get_live_preview)],
    store: Annotated[ConfigStore, Depends(get_config_store)],
    camera_id: str,
) -> LatestDetectionsOut:
    """Every box of a person or vehicle class on the camera's newest detected frame,
    with that frame as JPEG (``image``), before the camera's per-class filters."""
    raw = await client.hget(LATEST_DETECTIONS_HASH, camera_id)
    if raw is None:
        latest = await run_in_threadpool(store.latest)
        if latest is None or not any(c.id == camera_id for c in latest.cameras):
            raise HTTPException(404, f"camera {camera_id!r} is not configured")
        raise HTTPException(
            503,
            f"camera {camera_id!r} has no detections yet: it is offline, disabled or "
            "starting; retry in a few seconds",
            headers={"Retry-After": "2"},
        )
    data = json.loads(raw)
    ref = FrameRef(**data["ref"])
    jpeg = await preview.frame_jpeg(ref)
    return LatestDetectionsOut(
        camera_id=camera_id,
        capture_ts=ref.capture_ts,
        frame_seq=ref.seq,
        width=ref.width,
        height=ref.height,
        image=None
        if jpeg is None
        else "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii"),
        detections=[
            DetectionOut(label=label, confidence=conf, box=(x1, y1, x2, y2))
            for x1, y1, x2, y2, conf, label in data["boxes"]
        ],
    )

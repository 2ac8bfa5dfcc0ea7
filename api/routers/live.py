"""Live view of a camera: its newest frame as JPEG, and an MJPEG stream of them.

Frames come from ingest's shared memory on this host (``api/live_preview.py``);
they are the detector's frames, so their size is the camera's detect size.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from api.auth import EVERYONE, require
from api.deps import get_api_metrics, get_live_preview
from api.live_preview import (
    BOUNDARY,
    MAX_FPS,
    MAX_WIDTH,
    LivePreview,
    PreviewUnavailableError,
    Snapshot,
    UnknownCameraError,
)
from api.telemetry import ApiMetrics

router = APIRouter(prefix="/api/cameras", tags=["cameras"])

Preview = Annotated[LivePreview, Depends(get_live_preview)]
Width = Annotated[
    int | None,
    Query(ge=16, le=MAX_WIDTH, description="downscale to this width (never upscales)"),
]
ERRORS: dict[int | str, dict[str, str]] = {
    404: {"description": "the camera is not configured"},
    503: {"description": "no live image now: no frame yet, camera offline or restarting"},
}


async def _first(preview: LivePreview, camera_id: str, width: int | None) -> Snapshot:
    try:
        return await preview.snapshot(camera_id, width)
    except UnknownCameraError as exc:
        raise HTTPException(404, str(exc)) from exc
    except PreviewUnavailableError as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": "1"}) from exc


@router.get(
    "/{camera_id}/snapshot.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **ERRORS},
    dependencies=[Depends(require(*EVERYONE))],
)
async def live_snapshot(preview: Preview, camera_id: str, width: Width = None) -> Response:
    """The camera's newest frame. ``X-Capture-Ts`` is its capture time (UTC seconds)."""
    snap = await _first(preview, camera_id, width)
    return Response(
        snap.jpeg,
        media_type="image/jpeg",
        headers={
            "Cache-Control": "no-store",
            "X-Capture-Ts": f"{snap.ref.capture_ts:.3f}",
            "X-Frame-Seq": str(snap.ref.seq),
        },
    )


@router.get(
    "/{camera_id}/live.mjpeg",
    response_class=StreamingResponse,
    responses={
        200: {"content": {f"multipart/x-mixed-replace; boundary={BOUNDARY}": {}}},
        **ERRORS,
    },
    dependencies=[Depends(require(*EVERYONE))],
)
async def live_mjpeg(
    preview: Preview,
    metrics: Annotated[ApiMetrics, Depends(get_api_metrics)],
    camera_id: str,
    fps: Annotated[float, Query(gt=0, le=MAX_FPS, description="most frames per second")] = 2.0,
    width: Width = None,
) -> StreamingResponse:
    """An MJPEG stream (``<img src>`` shows it): a part only when the frame changed,
    at most ``fps`` a second, until the client disconnects."""
    first = await _first(preview, camera_id, width)  # 404/503 before the stream starts
    parts = preview.mjpeg(camera_id, fps, width, first)

    async def counted() -> AsyncGenerator[bytes, None]:
        metrics.live_streams.inc()
        try:
            async for part in parts:
                yield part
        finally:
            metrics.live_streams.dec()  # first: the close below may see the cancel again
            await parts.aclose()

    body = counted()
    return StreamingResponse(
        body,
        media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        # Starlette cancels the body when the client goes; closing it afterwards runs
        # its cleanup even when the cancel caught it between two parts.
        background=BackgroundTask(body.aclose),
    )

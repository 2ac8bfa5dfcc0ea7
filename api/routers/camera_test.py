"""``POST /api/cameras/test``: can the service open this stream, and what is in it?

The admin console's "test connection" button calls it before saving a camera, so a
wrong password or path shows up at once instead of as an ``auth_failed`` camera
later. It opens the stream exactly as the ingest reader would (same FFmpeg
options, same error classes) and stops at the first decoded video frame.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Annotated, Any, Literal

import av
import av.error
from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.auth import ADMIN_ONLY, Principal, require
from api.deps import get_config_store
from core.config import CameraConfig
from core.redact import redact_url
from core.storage.config_store import ConfigStore
from core.types import CameraState
from streams.classify import classify
from streams.reader import open_options

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/cameras", tags=["cameras"])

# FFmpeg protocols a camera can use. Anything else ("concat:", "pipe:", "tcp:" …)
# would let the test read local files or sockets the camera config never would.
NETWORK_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "rtmps://", "http://", "https://")
MAX_TESTS = 4  # at once: each holds a camera connection for up to MAX_TIMEOUT_S
MAX_TIMEOUT_S = 15.0

# Probes run here so the request can give up at its deadline even while FFmpeg is
# still blocked in a read (FFmpeg's own timeouts end that read soon after).
_pool = ThreadPoolExecutor(max_workers=MAX_TESTS, thread_name_prefix="camera-test")
_slots = threading.BoundedSemaphore(MAX_TESTS)


class CameraTestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="rtsp(s)://, rtmp(s)://, http(s):// or an absolute file path",
    )
    transport: Literal["tcp", "udp"] = Field("tcp", description="RTSP transport")
    timeout_s: float = Field(
        10.0, gt=0, le=MAX_TIMEOUT_S, description="give up after this long without a frame"
    )
    camera_id: str | None = Field(
        None,
        description="a configured camera: a URL with its credentials shown as ``***`` "
        "(as GET /api/cameras returns it) is tested with that camera's stored ones",
    )

    @field_validator("url")
    @classmethod
    def _known_source(cls, url: str) -> str:
        url = url.strip()
        if url.lower().startswith(NETWORK_SCHEMES) or url.startswith(("/", "file:///")):
            return url
        raise ValueError(
            "url must start with rtsp://, rtsps://, rtmp://, rtmps://, http:// or https:// "
            "(or be an absolute file path)"
        )


class CameraTestOut(BaseModel):
    ok: bool = Field(description="a video frame was decoded")
    state: CameraState = Field(description="the state the camera would have: online, …")
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = Field(None, description="the stream's declared frame rate")
    error: str | None = Field(None, description="what went wrong and what to check")
    elapsed_s: float


def _source(url: str) -> str:
    """What FFmpeg opens: files with an explicit ``file:`` so no prefix of the path
    can be taken for another protocol."""
    if url.startswith("file://"):
        return "file:" + url.removeprefix("file://")
    if url.startswith("/"):
        return "file:" + url
    return url


def _fps(stream: Any) -> float | None:
    rate = stream.average_rate or stream.guessed_rate
    return round(float(rate), 3) if rate else None


def probe(url: str, transport: Literal["tcp", "udp"], timeout_s: float) -> CameraTestOut:
    """Open ``url`` and decode one video frame; every failure becomes a state and a
    message with the credentials redacted."""
    started = time.monotonic()
    camera = CameraConfig(id="connection-test", url=url, transport=transport)
    try:
        with av.open(
            _source(url), options=open_options(camera), timeout=(timeout_s, timeout_s)
        ) as container:
            if not container.streams.video:
                return CameraTestOut(
                    ok=False,
                    state=CameraState.ERROR,
                    error="the source has no video stream; check the URL points at a camera",
                    elapsed_s=time.monotonic() - started,
                )
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                for frame in packet.decode():
                    return CameraTestOut(
                        ok=True,
                        state=CameraState.ONLINE,
                        codec=stream.codec_context.name,
                        width=frame.width,
                        height=frame.height,
                        fps=_fps(stream),
                        elapsed_s=time.monotonic() - started,
                    )
                if time.monotonic() - started > timeout_s:
                    # Packets, but none decodes (no key frame yet, broken stream).
                    raise TimeoutError(f"no decodable frame within {timeout_s:g} s")
            raise av.error.EOFError(0, "the stream ended before its first video frame")
    except Exception as exc:
        elapsed = time.monotonic() - started
        failure = classify(exc, url, was_online=False, timed_out=elapsed >= 0.8 * timeout_s)
        return CameraTestOut(
            ok=False,
            state=failure.state,
            error=redact_url(failure.message),
            elapsed_s=elapsed,
        )


def _stored_url(store: ConfigStore, camera_id: str, url: str) -> str:
    """The camera's stored URL when ``url`` is its redacted form; else ``url``."""
    if "://***@" not in url:
        return url
    latest = store.latest()
    cameras = latest.cameras if latest is not None else []
    camera = next((c for c in cameras if c.id == camera_id), None)
    if camera is None:
        raise HTTPException(
            422, f"camera_id: camera {camera_id!r} is not configured; send the full URL instead"
        )
    for stored in (camera.url, camera.record_url):
        if stored and redact_url(stored) == url:
            return stored
    return url


@router.post("/test", response_model=CameraTestOut)
def try_camera_connection(
    body: CameraTestIn,
    principal: Annotated[Principal, Depends(require(*ADMIN_ONLY))],
    store: Annotated[ConfigStore, Depends(get_config_store)],
) -> CameraTestOut:
    """Open the stream as the service would and decode its first frame. A sync route:
    FastAPI runs it in its thread pool, so the blocking open never stalls the loop."""
    url = body.url if body.camera_id is None else _stored_url(store, body.camera_id, body.url)
    if not _slots.acquire(blocking=False):
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"{MAX_TESTS} connection tests are running; try again in a few seconds",
            headers={"Retry-After": str(int(MAX_TIMEOUT_S))},
        )
    started = time.monotonic()
    future: Future[CameraTestOut] = _pool.submit(probe, url, body.transport, body.timeout_s)
    # The slot is freed when FFmpeg lets go, not when this request gives up.
    future.add_done_callback(lambda _: _slots.release())
    try:
        result = future.result(timeout=body.timeout_s + 1.0)
    except FutureTimeout:
        result = CameraTestOut(
            ok=False,
            state=CameraState.STALLED,
            error=f"no video frame within {body.timeout_s:g} s (stalled stream); "
            "check the camera is streaming and the transport (tcp/udp)",
            elapsed_s=time.monotonic() - started,
        )
    log.info(
        "connection test by %s of %s: %s%s",
        principal.actor,
        redact_url(url),
        result.state,
        f" ({result.error})" if result.error else "",
    )
    return result

"""Live preview: a camera's newest frame as JPEG, read from ingest's shared memory.

Ingest publishes each camera's newest ``FrameRef`` to ``cv:latest_frame`` once a
second. That ref names the camera's ring; the ring's header names its newest frame
(``FrameReader.newest``), so the preview follows the detect rate although the hash
moves once a second. Frames reach the ring at the detect rate while the motion gate
admits them and at least every ``motion.refresh_s`` (3 s by default) otherwise.

Same host only: the rings are POSIX shared memory of the ingest host, and the API
attaches to them. An API on another node (issue 11) cannot open them and answers
503; multi-node needs another path (ingest publishing small JPEGs, or a relay).
The API must also run under the service's supervisor (``commune-vision run``), which
shares one resource tracker with ingest: a separately started Python process that
attaches would have its own tracker unlink the rings when it exits.

Every ``FrameReader`` call runs on the event loop thread (a header scan and one
copy, well under a millisecond at detect sizes), so the reader needs no lock;
only JPEG encoding goes to a worker thread. Encoded frames are cached per camera
and width, so many viewers of one camera cost one encode per frame.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import redis
import redis.asyncio as aioredis
from starlette.concurrency import run_in_threadpool

from core.bus import HEALTH_HASH, LATEST_FRAME_HASH, decode_frame_ref
from core.frames import FrameReader
from core.storage.config_store import ConfigStore
from core.types import CameraState, FrameRef

log = logging.getLogger(__name__)

JPEG_QUALITY = 80
MAX_WIDTH = 1920
MAX_FPS = 5.0
# Ingest refreshes camera health every second; much older means ingest is not running.
HEALTH_STALE_S = 10.0
SWEEP_S = 10.0  # how often rings of cameras that left the hash are unmapped
# Encoded frames kept, oldest dropped first: viewers asking for many widths must not
# grow the cache without end.
MAX_CACHED_JPEGS = 64
BOUNDARY = "frame"


class UnknownCameraError(Exception):
    """No such camera in the configuration (404)."""


class PreviewUnavailableError(Exception):
    """The camera exists but there is no live image to show now (503)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    ref: FrameRef  # the frame encoded: its seq and capture time
    jpeg: bytes


def encode_jpeg(frame: npt.NDArray[np.uint8], width: int | None) -> bytes:
    """JPEG of a BGR frame, downscaled (never upscaled) to ``width`` keeping its aspect."""
    height, frame_width = frame.shape[:2]
    image: np.ndarray = frame
    if width is not None and width < frame_width:
        size = (width, max(1, round(height * width / frame_width)))
        image = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("OpenCV could not encode the frame as JPEG")
    return buf.tobytes()


def mjpeg_part(jpeg: bytes) -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
    return head.encode() + jpeg + b"\r\n"


class LivePreview:
    """One per API process (lifespan state): the ring mappings and the JPEG cache."""

    def __init__(self, client: aioredis.Redis, store: ConfigStore) -> None:
        self._client = client
        self._store = store
        self._frames = FrameReader()
        self._rings: dict[str, str] = {}  # camera -> name of the ring we have mapped
        self._jpegs: dict[tuple[str, int | None], Snapshot] = {}
        self._next_sweep = time.monotonic() + SWEEP_S

    @property
    def mapped_rings(self) -> dict[str, str]:
        return dict(self._rings)

    @property
    def cached_jpegs(self) -> int:
        return len(self._jpegs)

    async def snapshot(
        self, camera_id: str, width: int | None, check_config: bool = True
    ) -> Snapshot:
        """The camera's newest frame as JPEG.

        Raises ``UnknownCameraError`` when the camera is not configured (looked up
        only when ``check_config``: it costs a database read) and
        ``PreviewUnavailableError`` when it has no live image now.
        """
        ref, frame = await self._newest_frame(camera_id, check_config)
        key = (camera_id, width)
        cached = self._jpegs.get(key)
        if cached is not None and (cached.ref.shm_name, cached.ref.seq) == (ref.shm_name, ref.seq):
            return cached
        snap = Snapshot(ref, await run_in_threadpool(encode_jpeg, frame, width))
        self._jpegs.pop(key, None)  # re-inserted last: the cache drops from the front
        self._jpegs[key] = snap
        while len(self._jpegs) > MAX_CACHED_JPEGS:
            del self._jpegs[next(iter(self._jpegs))]
        return snap

    async def mjpeg(
        self, camera_id: str, fps: float, width: int | None, first: Snapshot
    ) -> AsyncGenerator[bytes, None]:
        """Parts of a ``multipart/x-mixed-replace`` body: one JPEG per new frame, at
        most ``fps`` a second. It ends when the client disconnects: Starlette cancels
        the response (the route also closes the generator afterwards)."""
        period_s = 1.0 / min(fps, MAX_FPS)
        last = (first.ref.shm_name, first.ref.seq)
        yield mjpeg_part(first.jpeg)
        due_s = time.monotonic()
        while True:
            # A steady cadence; a late tick runs at once, with no burst to catch up.
            due_s = max(due_s + period_s, time.monotonic())
            await asyncio.sleep(due_s - time.monotonic())
            try:
                snap = await self.snapshot(camera_id, width, check_config=False)
            except PreviewUnavailableError:
                continue  # offline or restarting: the viewer keeps the last image meanwhile
            except redis.RedisError as exc:
                # End the stream, not the process's log with a traceback per viewer:
                # the client reconnects and gets a clear 5xx if the bus is still down.
                log.warning("live view of %s ended: the bus failed: %s", camera_id, exc)
                return
            if (snap.ref.shm_name, snap.ref.seq) != last:
                last = (snap.ref.shm_name, snap.ref.seq)
                yield mjpeg_part(snap.jpeg)

    async def frame_jpeg(self, ref: FrameRef) -> bytes | None:
        """JPEG of exactly the frame ``ref`` names (the threshold preview draws boxes
        detected on it), or None once its ring slot was overwritten or the ring is gone."""
        frame = self._exact(ref)
        return None if frame is None else await run_in_threadpool(encode_jpeg, frame, None)

    def close(self) -> None:
        self._frames.close()
        self._rings.clear()
        self._jpegs.clear()

    # -- internals -----------------------------------------------------------
    async def _lookup(self, camera_id: str) -> tuple[FrameRef | None, dict[str, Any] | None]:
        pipe = self._client.pipeline(transaction=False)
        pipe.hget(LATEST_FRAME_HASH, camera_id)
        pipe.hget(HEALTH_HASH, camera_id)
        raw_ref, raw_health = await pipe.execute()
        ref = decode_frame_ref(raw_ref) if raw_ref is not None else None
        health = json.loads(raw_health) if raw_health is not None else None
        return ref, health

    async def _newest_frame(
        self, camera_id: str, check_config: bool
    ) -> tuple[FrameRef, npt.NDArray[np.uint8]]:
        await self._sweep()
        ref, health = await self._lookup(camera_id)
        if ref is None:
            raise await self._no_frame(camera_id, health, check_config)
        _check_health(camera_id, health)
        got = self._read(camera_id, ref)
        if got is None:
            # The ring the hash names is gone or empty: the camera restarted after
            # ingest's last publish. Ask once more; the next publish names the new ring.
            ref, _health = await self._lookup(camera_id)
            got = self._read(camera_id, ref) if ref is not None else None
        if got is None:
            raise PreviewUnavailableError(
                f"camera {camera_id!r} is restarting its stream: no frame to show; "
                "retry in a second"
            )
        return got

    def _read(self, camera_id: str, ref: FrameRef) -> tuple[FrameRef, npt.NDArray[np.uint8]] | None:
        old = self._rings.get(camera_id)
        if old is not None and old != ref.shm_name:
            self._forget(camera_id)  # the camera restarted: its old ring is unlinked
        self._rings[camera_id] = ref.shm_name
        got = self._frames.newest(ref)
        if got is None:
            self._forget(camera_id)
        return got

    def _exact(self, ref: FrameRef) -> npt.NDArray[np.uint8] | None:
        # The same bookkeeping as _read: one mapped ring per camera, so a restarted
        # camera's old ring is unmapped (the detections name the ingest ring too).
        old = self._rings.get(ref.camera_id)
        if old is not None and old != ref.shm_name:
            self._forget(ref.camera_id)
        self._rings[ref.camera_id] = ref.shm_name
        return self._frames.read(ref)

    def _forget(self, camera_id: str) -> None:
        name = self._rings.pop(camera_id, None)
        if name is not None:
            # Unmapping matters: an unlinked segment's memory lives while it is mapped.
            self._frames.forget(name)
        for key in [k for k in self._jpegs if k[0] == camera_id]:
            del self._jpegs[key]

    async def _sweep(self) -> None:
        """Unmap rings of cameras that left the hash (removed) or moved to a new ring."""
        if time.monotonic() < self._next_sweep or not self._rings:
            return
        self._next_sweep = time.monotonic() + SWEEP_S
        current = {
            (k.decode() if isinstance(k, bytes) else str(k)): decode_frame_ref(v).shm_name
            for k, v in (await self._client.hgetall(LATEST_FRAME_HASH)).items()
        }
        for camera_id, name in list(self._rings.items()):
            if current.get(camera_id) != name:
                self._forget(camera_id)

    async def _no_frame(
        self, camera_id: str, health: dict[str, Any] | None, check_config: bool
    ) -> Exception:
        if check_config:
            latest = await run_in_threadpool(self._store.latest)
            cameras = latest.cameras if latest is not None else []
            camera = next((c for c in cameras if c.id == camera_id), None)
            if camera is None:
                return UnknownCameraError(f"camera {camera_id!r} is not configured")
            if not camera.enabled:
                return PreviewUnavailableError(f"camera {camera_id!r} is disabled: no live image")
        state = f" (state: {health['state']})" if health else ""
        return PreviewUnavailableError(
            f"camera {camera_id!r} has no frame yet{state}: it is starting or not connected"
        )


def _check_health(camera_id: str, health: dict[str, Any] | None) -> None:
    if health is None:
        return  # published in the same tick as the ref; missing only in the gap
    updated_ts = health.get("updated_ts")
    if isinstance(updated_ts, int | float) and time.time() - updated_ts > HEALTH_STALE_S:
        raise PreviewUnavailableError(
            f"camera {camera_id!r}: no health report for {time.time() - updated_ts:.0f} s; "
            "the ingest process is not running"
        )
    if health.get("state") != CameraState.ONLINE.value:
        error = health.get("last_error")
        raise PreviewUnavailableError(
            f"camera {camera_id!r} is {health.get('state')}"
            + (f" ({error})" if error else "")
            + ": no live image"
        )

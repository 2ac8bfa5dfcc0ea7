"""One camera: open, demux, decode at the detect rate into the shared-memory ring.

A reader never blocks on the consumer: ``publish`` returns False when the
detector queue is full and the frame is counted as dropped.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from fractions import Fraction

import av
import av.error
import cv2
import numpy as np

from core.config import CameraConfig
from core.frames import FrameRing
from core.redact import redact_url
from core.types import CameraHealth, CameraState, FrameRef
from streams.pacing import FilePacer, RateSelector, WallClockMapper

log = logging.getLogger(__name__)

Publish = Callable[[FrameRef], bool]

OPEN_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 10.0
BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 30.0


def detect_size(src_w: int, src_h: int, width: int, height: int | None) -> tuple[int, int]:
    """The (width, height) frames are resized to; never upscales, keeps even sizes."""
    if src_w <= width and height is None:
        return src_w - src_w % 2, src_h - src_h % 2
    w = min(width, src_w)
    h = height if height is not None else round(src_h * w / src_w)
    return w - w % 2, h - h % 2


class _Fps:
    """Frames per second over a sliding window of about two seconds."""

    def __init__(self) -> None:
        self._count = 0
        self._since = time.monotonic()
        self.value = 0.0

    def tick(self) -> None:
        self._count += 1
        elapsed = time.monotonic() - self._since
        if elapsed >= 2.0:
            self.value = self._count / elapsed
            self._count = 0
            self._since = time.monotonic()


class CameraReader:
    def __init__(
        self,
        camera: CameraConfig,
        publish: Publish,
        stop: threading.Event,
        health: CameraHealth | None = None,
    ) -> None:
        self.camera = camera
        self._publish = publish
        self._stop = stop
        self.health = health or CameraHealth(camera_id=camera.id)
        self._ring: FrameRing | None = None
        self._selector = RateSelector(camera.detect.fps)
        self._input_fps = _Fps()
        self._decoded_fps = _Fps()
        self._safe_url = redact_url(camera.url)

    # -- lifecycle -----------------------------------------------------------
    def run(self) -> None:
        backoff_s = BACKOFF_START_S
        while not self._stop.is_set():
            self._set_state(CameraState.CONNECTING)
            try:
                self._session()
                backoff_s = BACKOFF_START_S
            except av.error.HTTPUnauthorizedError as exc:
                self._fail(CameraState.AUTH_FAILED, exc)
                backoff_s = BACKOFF_MAX_S  # wrong password: do not hammer the camera
            except (av.error.FileNotFoundError, av.error.HTTPNotFoundError) as exc:
                self._fail(CameraState.NOT_FOUND, exc)
            except (av.error.FFmpegError, OSError) as exc:
                self._fail(CameraState.OFFLINE, exc)
            except Exception as exc:
                log.exception("camera %s: unexpected error", self.camera.id)
                self._fail(CameraState.ERROR, exc)
            if self._stop.is_set():
                break
            self.health.reconnects += 1
            delay_s = backoff_s * random.uniform(0.8, 1.2)
            backoff_s = min(backoff_s * 2, BACKOFF_MAX_S)
            self._stop.wait(delay_s)
        self.close()

    def close(self) -> None:
        if self._ring is not None:
            self._ring.close()
            self._ring = None

    # -- one connection ------------------------------------------------------
    def _session(self) -> None:
        options = {"rtsp_transport": "tcp"} if self.camera.url.startswith("rtsp") else {}
        source = str(self.camera.file_path) if self.camera.is_file else self.camera.url
        pacer = FilePacer() if self.camera.is_file else None
        mapper = WallClockMapper()
        while not self._stop.is_set():
            with av.open(
                source, options=options, timeout=(OPEN_TIMEOUT_S, READ_TIMEOUT_S)
            ) as container:
                stream = container.streams.video[0]
                last_pts_s = self._decode_all(container, stream, pacer, mapper)
            if pacer is None or not self.camera.loop:
                raise av.error.EOFError(0, "end of stream")
            frame_s = float(1 / stream.average_rate) if stream.average_rate else 0.04
            pacer.loop_offset_s += last_pts_s + frame_s

    def _decode_all(
        self,
        container: av.container.InputContainer,
        stream: av.video.stream.VideoStream,
        pacer: FilePacer | None,
        mapper: WallClockMapper,
    ) -> float:
        time_base = stream.time_base or Fraction(1, 90000)
        last_pts_s = 0.0
        for packet in container.demux(stream):
            if self._stop.is_set():
                break
            for frame in packet.decode():
                if frame.pts is None:
                    continue
                pts_s = float(frame.pts * time_base)
                last_pts_s = pts_s
                if pacer is not None:
                    due_s = pacer.due_wall_s(pts_s)
                    wait_s = due_s - time.time()
                    if wait_s > 0 and self._stop.wait(wait_s):
                        return last_pts_s
                    capture_ts = due_s
                else:
                    capture_ts = mapper.capture_ts(pts_s)
                self._input_fps.tick()
                if self._selector.take(capture_ts):
                    self._deliver(frame, capture_ts)
        return last_pts_s

    def _deliver(self, frame: av.VideoFrame, capture_ts: float) -> None:
        # Colour conversion only for frames that go to the detector.
        bgr = frame.to_ndarray(format="bgr24")
        src_h, src_w = bgr.shape[:2]
        width, height = detect_size(
            src_w, src_h, self.camera.detect.width, self.camera.detect.height
        )
        ring = self._ring
        if ring is None or (ring.height, ring.width) != (height, width):
            self.close()
            ring = self._ring = FrameRing(
                self.camera.id, height, width, self.camera.detect.ring_slots
            )
        slot = ring.begin_write()
        if (src_w, src_h) == (width, height):
            np.copyto(slot, bgr)
        else:
            cv2.resize(bgr, (width, height), dst=slot, interpolation=cv2.INTER_AREA)
        ref = ring.commit(capture_ts)
        self._decoded_fps.tick()
        health = self.health
        health.last_frame_ts = capture_ts
        health.state = CameraState.ONLINE
        health.last_error = None
        if not self._publish(ref):
            health.frames_dropped += 1
        health.input_fps = round(self._input_fps.value, 2)
        health.decoded_fps = round(self._decoded_fps.value, 2)
        health.updated_ts = time.time()

    # -- health --------------------------------------------------------------
    def _set_state(self, state: CameraState) -> None:
        if self.health.state != state:
            log.info("camera %s: %s -> %s", self.camera.id, self.health.state.value, state.value)
        self.health.state = state
        self.health.updated_ts = time.time()

    def _fail(self, state: CameraState, exc: BaseException) -> None:
        message = redact_url(str(exc)) or type(exc).__name__
        if self.health.state != state or self.health.last_error != message:
            log.warning("camera %s (%s): %s", self.camera.id, self._safe_url, message)
        self.health.last_error = message
        self.health.decoded_fps = 0.0
        self.health.input_fps = 0.0
        self._set_state(state)

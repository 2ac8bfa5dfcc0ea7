"""Backpressure from the detector to ingest: each camera's offered rate follows what
the detector actually takes from it.

Without it, at 29 cameras × 10 fps on 2 cores ingest converted 290 frames/s to BGR,
wrote them to shared memory and queued them, and the detector's per-camera queues
then dropped 255 of them: about 0.2 core of the detector's CPU spent on frames
thrown away (docs/performance.md).

Once a second, per camera, from the detector's cumulative counters (its published
stats: ``detected_per_camera``, ``dropped_per_camera``) and ingest's own count of
admitted frames (AIMD, as TCP does):

- **frames were dropped in the last ``window_s``**: admit about what the detector
  took, plus some headroom, so the camera has a frame waiting at its turn:
  ``admitted fps × taken share × headroom`` over the window, where the taken share
  (detected ÷ (detected + dropped)) comes from one snapshot of the detector's
  counters, so publish and read times cancel out;
- **nothing dropped for a whole window**: raise the rate by a quarter (at least
  0.5 fps) per update, back towards the configured ``detect.fps``, which stays the
  ceiling (about 6 s from the 3 fps floor to 10 fps);
- never below ``floor_fps``, which also bounds the age of the frame the detector
  gets (below).

Deciding on the window rather than on the last second matters: at 1.5 frames/s
taken and 1.8 offered, a second often passes without a drop, and raising then made
the rate saw-tooth (about 15 % more frames converted and dropped, in simulation).

Fairness comes from the detector: it serves the per-camera queues round-robin, so a
camera that offers at least its turn's worth gets its turn, and every camera keeps
offering ``headroom`` × what it got, and at least ``floor_fps``. A camera that gets
more than it offers (others went quiet behind the motion gate) sees no drops and
rises. Nothing here can starve a camera: the lowest rate is the floor, and the
detector does not skip a camera with frames queued.

When the detector's stats stop changing (it restarts, the bus is down) the rates are
held; after ``stale_s`` they rise back to the ceilings, which is the behaviour
without backpressure. A detector restart (counters going back) starts the windows
afresh.

Pure logic: the caller reads the stats, applies the rates
(``CameraManager.set_admit_fps``) and publishes :meth:`Backpressure.stats`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# Every camera keeps offering at least this (or its detect fps, if lower) whatever
# the load. Not for the rules' sake alone: with one frame waiting per camera
# (``detector.per_camera_queue: 1``) the detector takes a camera's newest frame at
# whatever moment its turn comes, so that frame's age is up to 1 ÷ the admitted fps.
# At 29 cameras the detector takes ~1 fps from each: 1.2 fps admitted left frames
# up to 0.8 s old and raised the alert p95 above the no-backpressure run (1.24 vs
# 0.92 s); 3 fps (⅓ s) brought it under (0.75–0.81 vs 0.88 s) for 29 × 3 = 87 frames/s
# converted instead of 290 (benchmarks.streams, 29 cameras, runs back to back on a
# shared 2-core box).
FLOOR_FPS = 3.0
# Offer this much more than the detector took, so the camera has a frame waiting
# when its turn comes (the detector's take varies from second to second).
HEADROOM = 1.2
# The taken share and the admitted rate are measured over this many seconds: at
# 1–2 detected frames/s per camera, one second holds too few frames to go by.
WINDOW_S = 3.0
INCREASE_SHARE = 0.25  # additive-ish increase: +25 % per update ...
INCREASE_MIN_FPS = 0.5  # ... and at least this much, so the floor recovers quickly
STALE_S = 10.0  # detector stats unchanged this long: back to the ceilings


class CameraAdmission(NamedTuple):
    """What ingest knows of one camera (``CameraReader.admission``)."""

    ceiling_fps: float  # its configured detect fps
    # Cumulative: detect-rate frames let on to the motion gate and the detector
    # (a count; float so a caller may pass a fitted or simulated figure).
    frames_admitted: float
    frames_throttled: int  # cumulative: detect-rate frames held back by backpressure


@dataclass(frozen=True, slots=True)
class _Point:
    t_s: float
    detected: float
    dropped: float
    admitted: float


@dataclass(slots=True)
class _Camera:
    fps: float
    ceiling_fps: float
    throttled: int = 0
    history: deque[_Point] = field(default_factory=deque)


def _per_camera(stats: Mapping[str, Any] | None, key: str) -> dict[str, float]:
    if stats is None:
        return {}
    raw = stats.get(key)
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): float(v) for k, v in raw.items() if isinstance(v, int | float)}


def _signature(stats: Mapping[str, Any] | None) -> tuple[Any, ...] | None:
    """What changes whenever the detector publishes news: frames in, detected, dropped."""
    if stats is None:
        return None
    dropped = _per_camera(stats, "dropped_per_camera")
    return (stats.get("frames_in"), stats.get("frames_detected"), sum(dropped.values()))


class Backpressure:
    def __init__(
        self,
        floor_fps: float = FLOOR_FPS,
        headroom: float = HEADROOM,
        window_s: float = WINDOW_S,
        increase_share: float = INCREASE_SHARE,
        increase_min_fps: float = INCREASE_MIN_FPS,
        stale_s: float = STALE_S,
    ) -> None:
        self.floor_fps = floor_fps
        self.headroom = headroom
        self.window_s = window_s
        self.increase_share = increase_share
        self.increase_min_fps = increase_min_fps
        self.stale_s = stale_s
        self._cameras: dict[str, _Camera] = {}
        self._signature: tuple[Any, ...] | None = None
        self._fresh_s: float | None = None  # when the detector's stats last changed

    def update(
        self,
        detector_stats: Mapping[str, Any] | None,
        cameras: Mapping[str, CameraAdmission],
        now_s: float | None = None,
    ) -> dict[str, float]:
        """The admitted fps per camera (its ceiling when not throttled).

        ``detector_stats``: the detector's newest published stats (None if none);
        ``cameras``: every running camera; ``now_s``: monotonic seconds (default now)."""
        now_s = time.monotonic() if now_s is None else now_s
        for camera_id in set(self._cameras) - set(cameras):
            del self._cameras[camera_id]
        signature = _signature(detector_stats)
        fresh = signature is not None and signature != self._signature
        self._signature = signature
        if fresh or self._fresh_s is None:
            self._fresh_s = now_s
        detected = _per_camera(detector_stats, "detected_per_camera")
        dropped = _per_camera(detector_stats, "dropped_per_camera")
        for camera_id, admission in cameras.items():
            cam = self._cameras.get(camera_id)
            if cam is None or cam.ceiling_fps != admission.ceiling_fps:
                cam = self._cameras[camera_id] = _Camera(
                    admission.ceiling_fps, admission.ceiling_fps
                )
            cam.throttled = admission.frames_throttled
            if fresh:
                point = _Point(
                    now_s,
                    detected.get(camera_id, 0),
                    dropped.get(camera_id, 0),
                    admission.frames_admitted,
                )
                self._follow(cam, point)
            elif now_s - self._fresh_s >= self.stale_s:
                cam.history.clear()  # nothing known about the detector: no throttling
                cam.fps = self._raised(cam)
        return {camera_id: cam.fps for camera_id, cam in self._cameras.items()}

    def _follow(self, cam: _Camera, point: _Point) -> None:
        history = cam.history
        if history and (
            point.detected < history[-1].detected
            or point.dropped < history[-1].dropped
            or point.admitted < history[-1].admitted
        ):
            history.clear()  # the detector or the reader restarted: counters from 0
        if not history:
            history.append(point)
            return
        history.append(point)
        while len(history) > 2 and history[1].t_s <= point.t_s - self.window_s:
            history.popleft()
        first = history[0]
        lost = point.dropped - first.dropped
        if lost <= 0:  # nothing dropped for a whole window: there is room, go up
            cam.fps = self._raised(cam)
            return
        elapsed_s = point.t_s - first.t_s
        if elapsed_s <= 0:
            return
        taken = point.detected - first.detected
        admitted_fps = (point.admitted - first.admitted) / elapsed_s
        target = admitted_fps * taken / (taken + lost) * self.headroom
        cam.fps = min(cam.ceiling_fps, max(self.floor_fps, target))

    def _raised(self, cam: _Camera) -> float:
        step = max(self.increase_min_fps, cam.fps * self.increase_share)
        return min(cam.ceiling_fps, cam.fps + step)

    def stats(self) -> dict[str, Any]:
        """For ``cv:stats`` entry ``ingest``: what the controller decided."""
        cams = self._cameras
        return {
            "admit_fps": {i: round(c.fps, 2) for i, c in sorted(cams.items())},
            "throttled_cameras": sum(c.fps < c.ceiling_fps for c in cams.values()),
            "frames_throttled": {i: c.throttled for i, c in sorted(cams.items())},
            "frames_throttled_total": sum(c.throttled for c in cams.values()),
        }

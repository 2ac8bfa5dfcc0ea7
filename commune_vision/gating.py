"""Which decoded frames go to the detector: motion, a hold after motion, moving
tracks reported back by analytics, and a periodic refresh.

The refresh keeps objects that stopped moving (a parked car) in view of the
tracker: its ``lost_track_s`` is longer than ``refresh_s``, so a stationary
object keeps its track id across refreshes.
"""

from __future__ import annotations

import threading

import numpy as np

from core.config import CameraConfig
from vision.motion import MotionDetector


class ActivityBoard:
    """Cameras with moving tracks, and until when (capture time), as analytics reports."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def update(self, until_ts: dict[str, float]) -> None:
        with self._lock:
            self._until = dict(until_ts)

    def active(self, camera_id: str, ts: float) -> bool:
        with self._lock:
            return ts < self._until.get(camera_id, 0.0)


class MotionRefreshGate:
    def __init__(self, camera: CameraConfig, activity: ActivityBoard | None = None) -> None:
        settings = camera.motion
        self.camera_id = camera.id
        self._activity = activity
        self._refresh_s = settings.refresh_s
        self._hold_s = settings.hold_s
        self._detector = MotionDetector(threshold=settings.threshold, min_area=settings.min_area)
        self._next_refresh_ts = 0.0
        self._hold_until_ts = 0.0
        self.admitted = 0
        self.skipped = 0
        self.last_motion = False

    def admit(self, luma: np.ndarray, capture_ts: float) -> bool:
        # Motion runs on every detect-rate frame so the background keeps adapting.
        moving = self.last_motion = self._detector.update(luma).motion
        if moving:
            self._hold_until_ts = capture_ts + self._hold_s
        admit = (
            moving
            or capture_ts < self._hold_until_ts
            or capture_ts >= self._next_refresh_ts
            or (self._activity is not None and self._activity.active(self.camera_id, capture_ts))
        )
        if admit:
            self._next_refresh_ts = capture_ts + self._refresh_s
            self.admitted += 1
        else:
            self.skipped += 1
        return admit


def gate_for(camera: CameraConfig, activity: ActivityBoard | None) -> MotionRefreshGate | None:
    return MotionRefreshGate(camera, activity) if camera.motion.enabled else None

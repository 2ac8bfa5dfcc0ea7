"""Frame selection at the detect rate, and real-time pacing of local files."""

from __future__ import annotations

import time


class RateSelector:
    """Pick frames at ``fps`` from a stream of timestamps, like FFmpeg's fps filter.

    Output slots are due every ``1/fps`` seconds; the frame nearest each slot is
    taken (a frame is accepted up to half a source frame early).  Slots advance
    by exactly one interval, so the long-run rate is ``fps`` even when the
    source is 10.04 fps or jittery; after a gap the schedule restarts from now
    instead of catching up with a burst.
    """

    def __init__(self, fps: float) -> None:
        self.interval_s = 1.0 / fps
        self._slot_s: float | None = None  # the slot the last taken frame filled
        self._last_t_s: float | None = None
        self._source_dt_s = 0.0  # running estimate of the source frame interval

    @property
    def fps(self) -> float:
        return 1.0 / self.interval_s

    def set_fps(self, fps: float) -> None:
        """Change the rate from another thread (ingest's backpressure): one float
        assignment, read once per ``take``. The next slot is one new interval after
        the last one, so a rate raised from 0.5 to 10 fps applies at the next frame."""
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.interval_s = 1.0 / fps

    def take(self, t_s: float) -> bool:
        interval_s = self.interval_s  # once: set_fps may change it meanwhile
        dt = t_s - self._last_t_s if self._last_t_s is not None else 0.0
        if 0.0 < dt < 1.0:  # gaps say nothing about the source frame rate
            self._source_dt_s = (
                dt if self._source_dt_s == 0.0 else 0.9 * self._source_dt_s + 0.1 * dt
            )
        self._last_t_s = t_s
        if self._slot_s is None:
            self._slot_s = t_s
            return True
        due_s = self._slot_s + interval_s
        early_s = min(self._source_dt_s / 2, interval_s / 2) + 1e-6
        if t_s < due_s - early_s:
            return False
        # More than a slot behind (a gap in the stream): restart the schedule.
        self._slot_s = due_s if due_s + interval_s >= t_s else t_s
        return True


class WallClockMapper:
    """Map stream presentation time to wall-clock capture time.

    The offset (wall - PTS) follows the least-delayed frame seen: frames that
    arrive in a burst (a server flushing its buffer, a network hiccup) are
    stamped no later than their arrival, never in the future.  A jump the other
    way (PTS reset by a camera reboot, or frames consistently late by more than
    ``max_skew_s``) re-anchors on the current frame.
    """

    def __init__(self, max_skew_s: float = 2.0) -> None:
        self.max_skew_s = max_skew_s
        self._offset_s: float | None = None

    def capture_ts(self, pts_s: float, now_s: float | None = None) -> float:
        now = time.time() if now_s is None else now_s
        candidate = now - pts_s
        if (
            self._offset_s is None
            or candidate < self._offset_s
            or candidate - self._offset_s > self.max_skew_s
        ):
            self._offset_s = candidate
        return pts_s + self._offset_s


class FilePacer:
    """Play a file at real time: frame ``pts_s`` is due at start + pts (+ loop offset)."""

    def __init__(self) -> None:
        self._start_wall_s: float | None = None
        self.loop_offset_s = 0.0

    def due_wall_s(self, pts_s: float) -> float:
        if self._start_wall_s is None:
            self._start_wall_s = time.time() - pts_s
        return self._start_wall_s + self.loop_offset_s + pts_s

"""Frame selection at the detect rate, and real-time pacing of local files."""

from __future__ import annotations

import time


class RateSelector:
    """Pick frames at ``fps`` from a stream of timestamps, without bursts after a gap."""

    def __init__(self, fps: float) -> None:
        self.interval_s = 1.0 / fps
        self._next_due_s: float | None = None

    def take(self, t_s: float) -> bool:
        # 1 ms tolerance so 30 fps -> 5 fps picks every 6th frame despite float error.
        if self._next_due_s is None or t_s + 1e-3 >= self._next_due_s:
            nxt = (self._next_due_s or t_s) + self.interval_s
            # After a gap, restart from now instead of catching up with a burst.
            self._next_due_s = nxt if nxt > t_s else t_s + self.interval_s
            return True
        return False


class WallClockMapper:
    """Map stream presentation time to wall-clock capture time.

    Anchored on the first frame; re-anchored when the two drift apart by more
    than ``max_skew_s`` (a camera that restarted its clock, or a file that looped).
    """

    def __init__(self, max_skew_s: float = 2.0) -> None:
        self.max_skew_s = max_skew_s
        self._offset_s: float | None = None

    def capture_ts(self, pts_s: float, now_s: float | None = None) -> float:
        now = time.time() if now_s is None else now_s
        if self._offset_s is None or abs(pts_s + self._offset_s - now) > self.max_skew_s:
            self._offset_s = now - pts_s
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

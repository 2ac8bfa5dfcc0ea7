"""The backpressure controller: each camera's admitted fps follows what the detector
takes from it (streams/backpressure.py). Numbers from the streams benchmark: 10 fps
per camera; the detector takes about 4–5 from each at 8 cameras, 1 at 29."""

from __future__ import annotations

from typing import Any

import pytest

from streams.backpressure import Backpressure, CameraAdmission


def detector_stats(detected: dict[str, float], dropped: dict[str, float]) -> dict[str, Any]:
    """The fields of the detector's published stats (vision/detector/stats.py) it reads."""
    return {
        "frames_in": sum(detected.values()) + sum(dropped.values()),
        "frames_detected": sum(detected.values()),
        "detected_per_camera": detected,
        "dropped_per_camera": dropped,
    }


class OneCamera:
    """Feeds the controller the counters of one camera that admits ``admit`` fps of
    which the detector takes ``take`` fps (the rest is dropped), second by second."""

    def __init__(self, bp: Backpressure, ceiling: float = 10.0) -> None:
        self.bp, self.ceiling = bp, ceiling
        self.t, self.admitted, self.detected, self.dropped = 0.0, 0.0, 0.0, 0.0
        self.fps = ceiling

    def second(self, take: float | None = None) -> float:
        """One second at the current admitted rate; ``take``: what the detector takes
        (None: all of it). Returns the new admitted fps."""
        self.t += 1.0
        self.admitted += self.fps
        taken = self.fps if take is None else min(take, self.fps)
        self.detected += taken
        self.dropped += self.fps - taken
        stats = detector_stats({"c": self.detected}, {"c": self.dropped})
        admission = CameraAdmission(self.ceiling, self.admitted, 0)
        self.fps = self.bp.update(stats, {"c": admission}, self.t)["c"]
        return self.fps


def test_unthrottled_camera_stays_at_its_detect_fps() -> None:
    cam = OneCamera(Backpressure())
    assert [cam.second() for _ in range(5)] == [10.0] * 5


def test_overloaded_camera_is_cut_to_what_the_detector_takes_plus_headroom() -> None:
    cam = OneCamera(Backpressure(headroom=1.2, window_s=3.0))
    cam.second(take=4.0)  # the first reading only starts the window
    # 10 fps admitted, 4 taken, 6 dropped: 10 × 0.4 × 1.2 = 4.8 fps.
    assert cam.second(take=4.0) == pytest.approx(4.8)
    # Then it stays there: 4.8 offered, 4 taken, 0.8 dropped each second. The
    # window still spans seconds at 10 fps; the taken share of the same window
    # makes up for it.
    assert [cam.second(take=4.0) for _ in range(8)] == pytest.approx([4.8] * 8)


def test_rate_rises_back_to_the_ceiling_when_nothing_is_dropped() -> None:
    cam = OneCamera(Backpressure(increase_share=0.25, increase_min_fps=0.5))
    cam.second(take=4.0)
    assert cam.second(take=4.0) == pytest.approx(4.8)
    # The other cameras went quiet: the detector now takes all it is given. While
    # the 3 s window still holds drops the rate follows the taken share (which
    # grows), then it rises by 25 % a second.
    rates = [cam.second() for _ in range(8)]
    assert rates[:4] == pytest.approx([5.28, 5.632, 7.04, 8.8], abs=0.01)
    assert rates[4:] == [10.0] * 4  # back at the ceiling in 5 s, never above it


def test_never_below_the_floor() -> None:
    # 29 cameras on 2 cores: the detector takes about 1 fps from each. The default
    # floor keeps 3 fps offered, so the frame it takes is at most 1/3 s old.
    cam = OneCamera(Backpressure())
    cam.second(take=1.0)
    assert [cam.second(take=1.0) for _ in range(5)] == [3.0] * 5
    low = OneCamera(Backpressure(floor_fps=0.5))
    low.second(take=0.1)
    assert [low.second(take=0.1) for _ in range(5)] == [0.5] * 5
    # A camera configured under the floor is never throttled.
    slow = OneCamera(Backpressure(), ceiling=2.0)
    slow.second(take=1.0)
    assert [slow.second(take=1.0) for _ in range(3)] == [2.0] * 3


def test_motion_gated_frames_count_as_admitted() -> None:
    """Half the admitted frames are held back by the motion gate (never reach the
    detector); of the other half (5 fps) the detector takes 3: the camera should
    deliver 3.6 fps, that is admit 7.2 fps."""
    bp = Backpressure(headroom=1.2)
    ceiling = CameraAdmission(10.0, 0, 0)
    bp.update(detector_stats({"c": 0}, {"c": 0}), {"c": ceiling}, 0.0)
    after = CameraAdmission(10.0, 10, 0)  # 10 admitted, 5 delivered: 3 detected, 2 dropped
    fps = bp.update(detector_stats({"c": 3}, {"c": 2}), {"c": after}, 1.0)["c"]
    assert fps == pytest.approx(7.2)


def test_stale_detector_stats_hold_the_rates_then_release_them() -> None:
    bp = Backpressure(stale_s=10.0)
    cam = OneCamera(bp)
    cam.second(take=4.0)
    held = cam.second(take=4.0)
    assert held == pytest.approx(4.8)
    stats = detector_stats({"c": cam.detected}, {"c": cam.dropped})
    admission = {"c": CameraAdmission(10.0, cam.admitted + 50, 0)}
    # The detector publishes nothing new (restarting, or the bus is down).
    for t in range(3, 12):
        assert bp.update(stats, admission, float(t))["c"] == held
    # After 10 s without news, back towards the ceiling: what no backpressure does.
    rates = [bp.update(stats, admission, float(t))["c"] for t in range(12, 30)]
    assert rates[-1] == 10.0
    assert bp.update(None, admission, 30.0)["c"] == 10.0  # no stats at all


def test_detector_restart_starts_the_window_afresh() -> None:
    bp = Backpressure()
    cam = OneCamera(bp)
    cam.second(take=4.0)
    cut = cam.second(take=4.0)
    # A new detector process: its counters start from zero.
    restarted = detector_stats({"c": 2}, {"c": 0})
    admission = {"c": CameraAdmission(10.0, cam.admitted + 2, 0)}
    assert bp.update(restarted, admission, 3.0)["c"] == cut  # no decision from one point
    later = detector_stats({"c": 4}, {"c": 0})
    admission = {"c": CameraAdmission(10.0, cam.admitted + 4, 0)}
    assert bp.update(later, admission, 4.0)["c"] > cut  # nothing dropped since: rising


def test_cameras_come_and_go_and_publish_what_was_decided() -> None:
    bp = Backpressure()
    stats = detector_stats({"a": 0, "b": 0}, {"a": 0, "b": 0})
    cams = {"a": CameraAdmission(10.0, 0, 0), "b": CameraAdmission(5.0, 0, 0)}
    assert bp.update(stats, cams, 0.0) == {"a": 10.0, "b": 5.0}
    stats = detector_stats({"a": 5, "b": 5}, {"a": 5, "b": 0})
    cams = {"a": CameraAdmission(10.0, 10, 3), "b": CameraAdmission(5.0, 5, 0)}
    rates = bp.update(stats, cams, 1.0)
    assert rates == {"a": pytest.approx(6.0), "b": 5.0}
    assert bp.stats() == {
        "admit_fps": {"a": 6.0, "b": 5.0},
        "throttled_cameras": 1,
        "frames_throttled": {"a": 3, "b": 0},
        "frames_throttled_total": 3,
    }
    # b removed, a reconfigured to 5 fps (its reader restarted): a starts unthrottled.
    assert bp.update(stats, {"a": CameraAdmission(5.0, 0, 0)}, 2.0) == {"a": 5.0}

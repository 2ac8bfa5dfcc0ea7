"""Frame selection at the detect rate and PTS → wall-clock mapping."""

from __future__ import annotations

import pytest

from streams.pacing import RateSelector, WallClockMapper
from streams.reader import detect_size


@pytest.mark.parametrize(
    ("source_fps", "detect_fps", "expected_per_10s"),
    [(30, 5, 50), (10, 5, 50), (25, 10, 100), (10, 10, 100), (30, 7, 70), (5, 10, 50)],
)
def test_rate_selector_keeps_the_detect_rate(
    source_fps: int, detect_fps: int, expected_per_10s: int
) -> None:
    selector = RateSelector(detect_fps)
    taken = sum(selector.take(1000.0 + i / source_fps) for i in range(10 * source_fps))
    assert abs(taken - expected_per_10s) <= 1


def test_rate_selector_does_not_burst_after_a_gap() -> None:
    selector = RateSelector(5)
    for i in range(10):
        selector.take(i * 0.2)
    # 30 s of nothing, then frames at 30 fps: the rate stays 5 fps, no catch-up burst.
    taken = sum(selector.take(32.0 + i / 30) for i in range(30))
    assert taken == 5


def test_wall_clock_mapper_follows_pts_and_reanchors_on_jumps() -> None:
    mapper = WallClockMapper(max_skew_s=2.0)
    assert mapper.capture_ts(10.0, now_s=1000.0) == 1000.0
    assert mapper.capture_ts(10.5, now_s=1000.6) == pytest.approx(1000.5)  # PTS, not arrival
    # The camera restarted its clock: PTS jumped back; re-anchor to now.
    assert mapper.capture_ts(0.1, now_s=1001.0) == pytest.approx(1001.0)


@pytest.mark.parametrize(
    ("src", "width", "height", "expected"),
    [
        ((1920, 1080), 640, None, (640, 360)),
        ((480, 360), 640, None, (480, 360)),
        ((1280, 720), 640, 384, (640, 384)),
        ((641, 361), 1000, None, (640, 360)),
    ],
)
def test_detect_size(
    src: tuple[int, int], width: int, height: int | None, expected: tuple[int, int]
) -> None:
    assert detect_size(src[0], src[1], width, height) == expected

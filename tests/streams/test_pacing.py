"""Frame selection at the detect rate and PTS → wall-clock mapping."""

from __future__ import annotations

import itertools

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
    # 30 s of nothing, then frames at 30 fps: no catch-up burst of 150 frames; at
    # most one extra while the source-interval estimate adapts from 5 to 30 fps.
    taken = sum(selector.take(32.0 + i / 30) for i in range(30))
    assert 5 <= taken <= 6


def test_wall_clock_mapper_follows_pts_and_reanchors_on_jumps() -> None:
    mapper = WallClockMapper(max_skew_s=2.0)
    assert mapper.capture_ts(10.0, now_s=1000.0) == 1000.0
    # Network delay on this frame: it is stamped by its PTS, not its late arrival.
    assert mapper.capture_ts(10.5, now_s=1000.9) == pytest.approx(1000.5)
    # The camera rebooted and its PTS restarted at 0: re-anchor on this frame.
    assert mapper.capture_ts(0.1, now_s=1004.0) == pytest.approx(1004.0)


def test_wall_clock_mapper_never_stamps_a_burst_in_the_future() -> None:
    mapper = WallClockMapper(max_skew_s=2.0)
    # A server flushes 3 s of buffered frames within 0.1 s of connecting.
    stamps = [mapper.capture_ts(i / 10, now_s=1000.0 + i / 300) for i in range(30)]
    assert all(s <= 1000.0 + i / 300 + 1e-9 for i, s in enumerate(stamps))
    assert stamps == sorted(stamps)
    # Then real time: stamps follow PTS spacing again.
    assert mapper.capture_ts(3.1, now_s=1000.2) == pytest.approx(1000.2)
    assert mapper.capture_ts(3.2, now_s=1000.3) == pytest.approx(1000.3)


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


def test_rate_selector_fps_changes_at_run_time() -> None:
    """Backpressure sets the rate from another thread while frames flow (10 fps here)."""
    selector = RateSelector(10)
    frames = iter(1000.0 + i / 10 for i in range(300))

    def taken(seconds: int) -> list[float]:
        return [t for t in (next(frames) for _ in range(10 * seconds)) if selector.take(t)]

    assert len(taken(5)) == 50
    selector.set_fps(2.0)
    slow = taken(10)
    assert 19 <= len(slow) <= 21 and selector.fps == 2.0
    assert all(round(b - a, 6) == 0.5 for a, b in itertools.pairwise(slow))
    selector.set_fps(10.0)
    # Raised: the next slot is one new interval after the last, not the old 0.5 s.
    fast = taken(5)
    assert len(fast) >= 49 and fast[0] - slow[-1] <= 0.1 + 1e-6
    with pytest.raises(ValueError):
        selector.set_fps(0)

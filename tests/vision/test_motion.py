"""The motion detector on synthetic scenes: still, a moving object, a lighting change."""

from __future__ import annotations

import numpy as np

from vision.motion import MotionDetector


def _scene(x: int | None = None, brightness: int = 90) -> np.ndarray:
    rng = np.random.default_rng(1)  # same texture every frame: a fixed camera
    image = (rng.integers(0, 30, (360, 640), dtype=np.uint8) + brightness).astype(np.uint8)
    if x is not None:
        image[150:230, x : x + 60] = 230  # a bright "vehicle"
    return image


def test_still_scene_has_no_motion_after_the_first_frame() -> None:
    detector = MotionDetector()
    assert detector.update(_scene()).motion  # first frame: unknown scene, look
    assert not any(detector.update(_scene()).motion for _ in range(20))


def test_moving_object_is_found_where_it_is() -> None:
    detector = MotionDetector()
    detector.update(_scene())
    result = detector.update(_scene(x=300))
    assert result.motion and result.regions
    x1, y1, x2, y2 = result.regions[0]
    assert 0.40 < x1 < 0.50 and 0.55 < x2 < 0.65  # around x = 300..360 of 640
    assert 0.35 < y1 < 0.45 and 0.6 < y2 < 0.7


def test_lighting_change_resets_instead_of_reporting_motion_forever() -> None:
    detector = MotionDetector()
    detector.update(_scene())
    assert detector.update(_scene(brightness=170)).motion  # the lights came on
    assert not detector.update(_scene(brightness=170)).motion  # new background learnt


def test_tiny_change_below_min_area_is_not_motion() -> None:
    detector = MotionDetector(min_area=0.01)
    detector.update(_scene())
    image = _scene()
    image[10:14, 10:14] = 255  # a 4x4 px speck
    assert not detector.update(image).motion

"""The motion gate on real footage: still scenes cost (almost) no detections, and
parked cars stay detected and keep their track ids through the refreshes.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from commune_vision.gating import MotionRefreshGate
from core.config import CameraConfig
from streams.pacing import RateSelector
from streams.reader import luma, to_bgr
from vision.detector.backend import create_backend
from vision.detector.detector import Detector
from vision.tracking import ObjectTracker

FPS = 5.0
CAR = 2


def _frames(path: Path) -> list[tuple[float, np.ndarray, av.VideoFrame]]:
    out = []
    selector = RateSelector(FPS)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        time_base = stream.time_base
        assert time_base is not None
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = float(frame.pts * time_base)
            if selector.take(t):
                out.append((t, luma(frame).copy(), frame))
    return out


def _longest_still_run(flags: list[tuple[float, bool]]) -> tuple[float, float]:
    best, start = (0.0, 0.0), None
    end_of_clip = flags[-1][0] + 1.0 / FPS
    for t, moving in [*flags, (end_of_clip, True)]:
        if not moving and start is None:
            start = t
        elif moving and start is not None:
            if t - start > best[1] - best[0]:
                best = (start, t)
            start = None
    return best


@pytest.fixture(scope="module")
def street(video) -> list[tuple[float, np.ndarray, av.VideoFrame]]:  # type: ignore[no-untyped-def]
    return _frames(video("street_parking_ipcam_day.mp4"))


def test_still_segment_skips_at_least_90_percent(
    street: list[tuple[float, np.ndarray, av.VideoFrame]],
) -> None:
    camera = CameraConfig.model_validate({"id": "street", "url": "x.mp4"})
    gate = MotionRefreshGate(camera)
    decisions = []
    for t, y, _ in street:
        admitted = gate.admit(y, t)
        decisions.append((t, admitted, gate.last_motion))
    start, end = _longest_still_run([(t, m) for t, _, m in decisions])
    assert end - start >= 5.0, f"no still segment found (longest {start:.1f}-{end:.1f} s)"
    # Past the hold after the last motion, only refreshes should get through.
    segment = [a for t, a, _ in decisions if start + camera.motion.hold_s <= t < end]
    skipped = 1 - sum(segment) / len(segment)
    print(f"still segment {start:.1f}-{end:.1f} s: {len(segment)} frames, skipped {skipped:.0%}")
    assert skipped >= 0.90
    assert sum(segment) >= 1  # the refresh still looks
    overall = gate.skipped / (gate.skipped + gate.admitted)
    print(f"whole clip: skipped {overall:.0%} of {len(decisions)} frames")


def test_parked_cars_keep_being_detected_and_keep_their_ids(
    street: list[tuple[float, np.ndarray, av.VideoFrame]], model_dir: Path
) -> None:
    camera = CameraConfig.model_validate({"id": "street", "url": "x.mp4"})
    gate = MotionRefreshGate(camera)
    detector = Detector(create_backend("openvino", model_dir, "cpu", (640, 640), 1), 0.25, 0.45)
    tracker = ObjectTracker(fps=FPS, lost_track_s=1.5 * camera.motion.refresh_s)
    decisions = [(t, gate.admit(y, t), gate.last_motion, f) for t, y, f in street]
    start, end = _longest_still_run([(t, m) for t, _, m, _ in decisions])
    cars_at: dict[float, set[int]] = {}
    for t, admitted, _, frame in decisions:
        if t > end + 1.0:
            break
        if not admitted:
            continue
        dets = detector.detect([to_bgr(frame)])[0]
        cars = dets.select(dets.class_id == CAR)
        tracked = tracker.update(cars, t)
        cars_at[t] = {int(i) for i in tracked.tracker_id if i >= 0}
    inside = sorted(t for t in cars_at if start + camera.motion.hold_s <= t < end)
    assert inside, "no refresh inside the still segment"
    before = cars_at[max(t for t in cars_at if t < start + camera.motion.hold_s)]
    after = cars_at[inside[-1]]
    print(f"cars tracked before the still segment {sorted(before)}, at its end {sorted(after)}")
    assert len(after) >= 3, "parked cars were not detected at the refreshes"
    kept = before & after
    assert len(kept) >= 0.7 * len(after), (
        f"parked cars changed ids: {sorted(before)} -> {sorted(after)}"
    )

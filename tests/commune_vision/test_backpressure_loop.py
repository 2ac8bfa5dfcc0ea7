"""Backpressure in closed loop, as ``ingest_main`` wires it: cameras at 10 fps, each
through its admission ``RateSelector``, into the detector's real per-camera queues
(``CameraQueues``, served round-robin), a detector of fixed capacity, and the
controller updated once a second from the detector's counters. Simulated time."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from core.types import FrameRef
from streams.backpressure import Backpressure, CameraAdmission
from streams.pacing import RateSelector
from vision.detector.queues import CameraQueues

SOURCE_FPS = 10.0
STEP_S = 0.002


@dataclass
class Result:
    detected_fps: dict[str, float]  # per camera, over the measured window
    delivered_fps: float  # all cameras: converted to BGR and queued
    admit_fps: dict[str, float]  # the controller's last decision
    ages_s: list[float]  # detection time - capture time of each frame detected, sorted

    def age_p95_s(self) -> float:
        return self.ages_s[int(0.95 * len(self.ages_s))]

    @property
    def detected_total(self) -> float:
        return sum(self.detected_fps.values())


def run(
    cameras: int,
    capacity: Callable[[float], float],
    seconds: float = 50.0,
    measure_from_s: float = 20.0,
    control: bool = True,
    motion_every: dict[int, int] | None = None,
    per_camera_queue: int = 1,
    backpressure: Backpressure | None = None,
) -> Result:
    """``capacity(t)``: detector images/s; ``motion_every[i]``: camera i's motion gate
    passes one admitted frame in that many (the others are still)."""
    rnd = random.Random(7)
    ids = [f"cam{i:02d}" for i in range(cameras)]
    arrivals = sorted(  # 10 fps each, phases spread, up to 50 ms network jitter
        (i / cameras / SOURCE_FPS + k / SOURCE_FPS + rnd.uniform(0, 0.05), cam)
        for i, cam in enumerate(ids)
        for k in range(int(seconds * SOURCE_FPS))
    )
    queues = CameraQueues(per_camera_queue)
    admit = {cam: RateSelector(SOURCE_FPS) for cam in ids}
    throttled_to: dict[str, float | None] = dict.fromkeys(ids)
    admitted = dict.fromkeys(ids, 0)
    delivered = dict.fromkeys(ids, 0)
    detected = dict.fromkeys(ids, 0)
    measured = dict.fromkeys(ids, 0)
    delivered_measured = 0
    ages: list[float] = []
    controller = backpressure or Backpressure()
    rates: dict[str, float] = {}
    busy_until, next_control, i, t, seq = 0.0, 1.0, 0, 0.0, 0
    while t < seconds:
        while i < len(arrivals) and arrivals[i][0] <= t:
            capture_ts, cam = arrivals[i]
            i += 1
            fps = throttled_to[cam]
            if fps is not None and not admit[cam].take(capture_ts):
                continue
            admitted[cam] += 1
            every = (motion_every or {}).get(ids.index(cam), 1)
            if admitted[cam] % every:
                continue  # held back by the motion gate
            seq += 1
            queues.put(FrameRef(cam, "shm", 0, seq, 360, 640, capture_ts))
            delivered[cam] += 1
            delivered_measured += t >= measure_from_s
        if t >= busy_until:
            batch = queues.take_batch(4, 2, 0.0, 0.0)
            busy_until = t + len(batch) / capacity(t)
            for ref in batch:
                detected[ref.camera_id] += 1
                if t >= measure_from_s:
                    measured[ref.camera_id] += 1
                    ages.append(t - ref.capture_ts)
        if control and t >= next_control:
            next_control += 1.0
            stats = {
                "frames_in": sum(delivered.values()),
                "frames_detected": sum(detected.values()),
                "detected_per_camera": dict(detected),
                "dropped_per_camera": dict(queues.dropped),
            }
            admission = {cam: CameraAdmission(SOURCE_FPS, admitted[cam], 0) for cam in ids}
            rates = controller.update(stats, admission, t)
            for cam, fps in rates.items():  # what CameraReader.set_admit_fps does
                throttled_to[cam] = fps if fps < SOURCE_FPS else None
                if fps < SOURCE_FPS:
                    admit[cam].set_fps(fps)
        t += STEP_S
    window_s = seconds - measure_from_s
    return Result(
        {cam: n / window_s for cam, n in measured.items()},
        delivered_measured / window_s,
        rates,
        sorted(ages),
    )


def test_29_cameras_share_the_detector_fairly_and_stop_converting_frames_it_drops() -> None:
    # The quiet-machine benchmark: 29 cameras at 10 fps, the detector does ~40 img/s.
    without = run(29, lambda t: 40.0, control=False, per_camera_queue=4)
    with_bp = run(29, lambda t: 40.0)
    assert without.delivered_fps == pytest.approx(290, rel=0.02)  # 250 of them dropped
    assert with_bp.detected_total >= 0.97 * 40  # the detector is never left idle
    assert with_bp.detected_total >= 0.99 * without.detected_total
    # 1.2 × the ~1.4 fps each camera gets is under the 3 fps floor: 87 instead of 290.
    assert with_bp.admit_fps == dict.fromkeys(with_bp.admit_fps, 3.0)
    assert with_bp.delivered_fps == pytest.approx(29 * 3, rel=0.02)
    share = 40 / 29
    for cam, fps in with_bp.detected_fps.items():
        assert 0.9 * share <= fps <= 1.1 * share, (cam, fps)
    # The frame the detector takes is a camera's newest: at most 1/3 s old, fresher
    # than the oldest of 4 waiting at 10 fps that it took before.
    assert with_bp.age_p95_s() <= 0.36 < without.age_p95_s()


def test_a_deep_queue_or_a_low_floor_makes_the_detected_frames_old() -> None:
    # Why per_camera_queue is 1 and the floor 3 fps: a throttled camera's queue is
    # full by design and the detector takes its oldest frame.
    deep = run(29, lambda t: 40.0, per_camera_queue=4)
    assert deep.age_p95_s() > 1.0  # 3 frames in front of the newest at 3 fps
    low_floor = run(29, lambda t: 40.0, backpressure=Backpressure(floor_fps=0.5))
    assert 0.5 < low_floor.age_p95_s() < 0.7


def test_quiet_cameras_leave_their_share_to_busy_ones_and_are_not_starved() -> None:
    # 19 still scenes: their motion gate passes one admitted frame in ten.
    quiet = {i: 10 for i in range(10, 29)}
    result = run(29, lambda t: 40.0, motion_every=quiet)
    busy = [result.detected_fps[f"cam{i:02d}"] for i in range(10)]
    still = [result.detected_fps[f"cam{i:02d}"] for i in range(10, 29)]
    # The quiet cameras send about 1 fps each and all of it is detected ...
    assert all(0.9 <= fps <= 1.1 for fps in still), still
    # ... the 10 busy ones share the rest, about 2.1 fps each instead of 40/29 = 1.4.
    assert result.detected_total >= 0.97 * 40
    assert all(abs(fps - (40 - sum(still)) / 10) < 0.25 for fps in busy), busy


def test_rates_recover_when_the_detector_has_room_again() -> None:
    # Other work leaves the machine at t = 30 s: capacity 40 -> 200 img/s.
    result = run(29, lambda t: 40.0 if t < 30 else 200.0, seconds=60.0, measure_from_s=42.0)
    assert result.detected_total >= 0.97 * 200
    assert min(result.detected_fps.values()) >= 0.9 * 200 / 29


def test_a_detector_that_keeps_up_is_not_throttled() -> None:
    result = run(4, lambda t: 50.0, per_camera_queue=2)
    assert result.admit_fps == dict.fromkeys(result.admit_fps, 10.0)
    assert result.detected_total == pytest.approx(40, rel=0.02)

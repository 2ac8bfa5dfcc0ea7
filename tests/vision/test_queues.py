"""Per-camera detector queues: drop the oldest, serve cameras fairly, close batches on time."""

from __future__ import annotations

import threading
import time

from core.types import FrameRef
from tests.vision.clips import ManualClock
from vision.detector.queues import CameraQueues


def _ref(camera: str, seq: int) -> FrameRef:
    return FrameRef(camera, "shm", seq % 4, seq, 36, 64, 1000.0 + seq)


def test_full_camera_queue_drops_its_oldest_frame() -> None:
    queues = CameraQueues(per_camera_capacity=3)
    for seq in range(5):
        queues.put(_ref("busy", seq))
    queues.put(_ref("quiet", 0))
    assert queues.dropped == {"busy": 2}
    batch = queues.take_batch(max_batch=8, per_camera=8, max_wait_s=0.0, idle_timeout_s=0.1)
    # One frame of each camera per round, each camera's frames in order.
    assert [(r.camera_id, r.seq) for r in batch] == [
        ("busy", 2),
        ("quiet", 0),
        ("busy", 3),
        ("busy", 4),
    ]


def test_no_camera_starves_and_each_is_capped_per_batch() -> None:
    queues = CameraQueues(per_camera_capacity=16)
    for seq in range(16):
        queues.put(_ref("busy", seq))
    for cam in ("a", "b", "c"):
        queues.put(_ref(cam, 0))
    first = queues.take_batch(max_batch=4, per_camera=2, max_wait_s=0.0, idle_timeout_s=0.1)
    # Every camera gets its first frame in before any camera gets a second.
    assert [r.camera_id for r in first] == ["busy", "a", "b", "c"]
    second = queues.take_batch(max_batch=4, per_camera=2, max_wait_s=0.0, idle_timeout_s=0.1)
    # Only "busy" is left: capped at two of its 15 frames though the batch has room.
    assert [r.camera_id for r in second] == ["busy", "busy"]


def test_a_full_batch_shares_its_slots_one_frame_per_camera_first() -> None:
    queues = CameraQueues(per_camera_capacity=2)
    for cam in ("a", "b", "c", "d", "e", "f"):
        queues.put(_ref(cam, 0))
        queues.put(_ref(cam, 1))
    batch = queues.take_batch(max_batch=4, per_camera=2, max_wait_s=0.0, idle_timeout_s=0.1)
    assert [r.camera_id for r in batch] == ["a", "b", "c", "d"]
    batch = queues.take_batch(max_batch=4, per_camera=2, max_wait_s=0.0, idle_timeout_s=0.1)
    # e and f have waited longest: they come first, then a and b's second frames.
    assert [(r.camera_id, r.seq) for r in batch] == [("e", 0), ("f", 0), ("a", 1), ("b", 1)]


def test_batch_closes_when_full_or_after_max_wait() -> None:
    queues = CameraQueues(per_camera_capacity=8)
    queues.put(_ref("a", 0))
    started = time.monotonic()
    batch = queues.take_batch(max_batch=4, per_camera=4, max_wait_s=0.05, idle_timeout_s=1.0)
    waited = time.monotonic() - started
    assert len(batch) == 1 and 0.04 <= waited < 0.5

    def feed() -> None:
        for seq in range(1, 4):
            time.sleep(0.01)
            queues.put(_ref(f"cam{seq}", seq))

    queues.put(_ref("a", 1))
    threading.Thread(target=feed).start()
    batch = queues.take_batch(max_batch=4, per_camera=4, max_wait_s=2.0, idle_timeout_s=1.0)
    assert len(batch) == 4  # closed as soon as it was full, long before 2 s


def test_idle_returns_empty() -> None:
    assert CameraQueues(4).take_batch(4, 2, 0.01, idle_timeout_s=0.05) == []


def test_a_frame_that_waited_too_long_gives_way_to_a_newer_one() -> None:
    clock = ManualClock(50.0)
    queues = CameraQueues(per_camera_capacity=2, max_age_s=0.25, clock=clock)
    queues.put(_ref("a", 0))
    queues.put(_ref("b", 0))
    clock.now += 0.1
    queues.put(_ref("a", 1))  # a/0 is 0.1 s old: young enough, both are kept
    batch = queues.take_batch(max_batch=8, per_camera=2, max_wait_s=0.0, idle_timeout_s=0.1)
    assert [(r.camera_id, r.seq) for r in batch] == [("a", 0), ("b", 0), ("a", 1)]
    assert queues.dropped == {}

    queues.put(_ref("a", 2))
    queues.put(_ref("b", 1))
    clock.now += 0.3
    queues.put(_ref("a", 3))
    # a/2 waited 0.3 s with a/3 behind it: dropped and counted. b/1 is as old
    # but the newest of its camera, so it is still detected.
    batch = queues.take_batch(max_batch=8, per_camera=2, max_wait_s=0.0, idle_timeout_s=0.1)
    assert [(r.camera_id, r.seq) for r in batch] == [("a", 3), ("b", 1)]
    assert queues.dropped == {"a": 1}


def test_without_an_age_limit_old_frames_wait_their_turn() -> None:
    clock = ManualClock(50.0)
    queues = CameraQueues(per_camera_capacity=2, clock=clock)
    queues.put(_ref("a", 0))
    clock.now += 5.0
    queues.put(_ref("a", 1))
    batch = queues.take_batch(max_batch=8, per_camera=2, max_wait_s=0.0, idle_timeout_s=0.1)
    assert [r.seq for r in batch] == [0, 1]

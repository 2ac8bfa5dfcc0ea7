"""When the detector packs frames into mosaics: the planner's arithmetic, then the
real service under a load the model cannot take at full size, and under one it can."""

from __future__ import annotations

import math
import queue
import threading
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from core.frames import FrameReader, FrameRing
from core.types import FrameRef
from tests.vision.clips import ManualClock, clip_frames
from vision.detections import Detections
from vision.detector.backend import create_backend
from vision.detector.detector import Detector
from vision.detector.planner import HEADROOM, MosaicPlanner
from vision.detector.service import DetectorService


def _loaded(mode: str, frames_per_s: float, seconds_per_input: float) -> MosaicPlanner:
    clock = ManualClock()
    planner = MosaicPlanner(mode, frames_per_mosaic=6, max_inputs=4, clock=clock)  # type: ignore[arg-type]
    planner.batch_done(inputs=2, seconds=2 * seconds_per_input)
    planner.arrived(0)
    clock.now += 1.0
    planner.arrived(round(frames_per_s))
    return planner


def test_full_size_while_the_model_keeps_up() -> None:
    planner = _loaded("auto", frames_per_s=20, seconds_per_input=0.016)
    assert planner.full_fraction == 1.0
    assert planner.batch_limit() == 4  # one input per frame
    assert planner.full_frames(4) == 4


def test_overload_packs_just_enough_to_keep_up() -> None:
    planner = _loaded("auto", frames_per_s=80, seconds_per_input=0.016)
    f = planner.full_fraction
    assert 0.5 < f < 0.7
    # The inputs per second it leaves the model fill it to the headroom, no more.
    assert math.isclose(80 * (f + (1 - f) / 6) * 0.016, HEADROOM, rel_tol=1e-6)
    assert planner.batch_limit() == 24
    # Eight frames at f ≈ 0.6 want five full inputs, but only four inputs exist:
    # three full frames and one mosaic of five.
    assert planner.full_frames(8) == 3
    assert planner.full_frames(2) == 1


def test_heavy_overload_packs_everything() -> None:
    planner = _loaded("auto", frames_per_s=290, seconds_per_input=0.016)
    assert planner.full_fraction < 0.05
    assert planner.full_frames(24) == 0


def test_the_fraction_recovers_when_load_falls() -> None:
    clock = ManualClock()
    planner = MosaicPlanner("auto", 6, 4, clock=clock)
    planner.batch_done(1, 0.016)
    planner.arrived(0)
    clock.now += 1.0
    planner.arrived(290)
    assert planner.full_fraction < 0.05
    clock.now += 1.0
    planner.arrived(10)
    assert planner.full_fraction == 1.0


def test_off_and_always_and_a_one_cell_grid() -> None:
    off = _loaded("off", 290, 0.016)
    assert off.batch_limit() == 4 and off.full_frames(4) == 4
    always = _loaded("always", 5, 0.016)
    assert always.batch_limit() == 24 and always.full_frames(7) == 0
    assert MosaicPlanner("always", frames_per_mosaic=1, max_inputs=4).mode == "off"


def test_a_one_cell_grid_under_overload_stays_full_size() -> None:
    # A 1 × 1 grid turns mosaics off; overload must not reach the T − 1 = 0 in the
    # fraction (it once raised ZeroDivisionError in the detector's receiver thread).
    clock = ManualClock()
    planner = MosaicPlanner("auto", frames_per_mosaic=1, max_inputs=4, clock=clock)
    planner.batch_done(inputs=1, seconds=0.02)
    planner.arrived(0)
    clock.now += 1.0
    planner.arrived(290)
    assert planner.full_fraction == 1.0
    assert planner.batch_limit() == 4 and planner.full_frames(4) == 4


def _run_load(
    model_dir: Path, frames: list[npt.NDArray[np.uint8]], cameras: int, fps: float, seconds: float
) -> tuple[DetectorService, list[tuple[FrameRef, Detections]]]:
    backend = create_backend("openvino", model_dir, "cpu", (640, 640), 4)
    detector = Detector(backend, 0.25, 0.45, (3, 2))
    results: list[tuple[FrameRef, Detections]] = []
    service = DetectorService(
        detector, FrameReader(), lambda r, d: results.append((r, d)), 0.0, mosaic="auto"
    )
    height, width = frames[0].shape[:2]
    rings = [FrameRing(f"cam{i:02d}", height, width, slots=4) for i in range(cameras)]
    stop = threading.Event()
    idle: queue.Queue[FrameRef] = queue.Queue()
    runner = threading.Thread(target=service.run, args=(idle, stop))
    runner.start()
    try:
        tick, started = 0, time.monotonic()
        while time.monotonic() - started < seconds:
            for i, ring in enumerate(rings):
                service.submit(ring.write(frames[(tick + i) % len(frames)], time.time()))
            tick += 1
            time.sleep(max(0.0, started + tick / fps - time.monotonic()))
        time.sleep(0.5)
    finally:
        stop.set()
        runner.join(timeout=10)
        for ring in rings:
            ring.close()
    return service, results


def test_the_service_packs_under_overload_and_not_under_light_load(model_dir: Path, video) -> None:  # type: ignore[no-untyped-def]
    frames = clip_frames(video("intersection_cctv_day.mp4"), 6, step=15)
    # 16 cameras at 15 fps: 240 frames/s, about four times what this box's model
    # does at full size.
    busy, busy_results = _run_load(model_dir, frames, cameras=16, fps=15, seconds=4.0)
    stats = busy.stats
    assert stats.frames_mosaic > 0.5 * stats.frames_detected
    assert {r.camera_id for r, _ in busy_results} == {f"cam{i:02d}" for i in range(16)}
    # Packed frames still come back in their own pixels with the crossing's cars.
    cars = [int((d.class_id == 2).sum()) for _, d in busy_results[-32:]]
    assert np.mean(cars) >= 3
    assert all((d.xyxy[:, 2] <= 640).all() and (d.xyxy[:, 3] <= 480).all() for _, d in busy_results)
    quiet, quiet_results = _run_load(model_dir, frames, cameras=1, fps=5, seconds=2.5)
    assert len(quiet_results) >= 10
    assert quiet.stats.frames_mosaic == 0

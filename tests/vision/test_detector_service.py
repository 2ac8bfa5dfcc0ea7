"""The detector service with the real model: frames from shared memory of three
cameras, fair batches, stale frames counted, stats filled."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import numpy as np

from core.frames import FrameReader, FrameRing
from core.types import FrameRef
from tests.vision.clips import clip_frames
from vision.detections import Detections
from vision.detector.backend import create_backend
from vision.detector.detector import Detector
from vision.detector.service import DetectorService


def test_service_detects_every_camera_and_counts(model_dir: Path, video) -> None:  # type: ignore[no-untyped-def]
    detector = Detector(create_backend("openvino", model_dir, "cpu", (640, 640), 4), 0.25, 0.45)
    results: list[tuple[FrameRef, Detections]] = []
    service = DetectorService(
        detector, FrameReader(), lambda r, d: results.append((r, d)), 5.0, per_camera_queue=4
    )
    clips = {
        "pets": "pets2009_vtest_480x360.mp4",
        "street": "street_parking_ipcam_day.mp4",
        "crossing": "intersection_cctv_day.mp4",
    }
    rings = {}
    try:
        for cam, clip in clips.items():
            frames = clip_frames(video(clip), 3, step=10)
            h, w = frames[0].shape[:2]
            rings[cam] = ring = FrameRing(cam, h, w, slots=4)
            for i, frame in enumerate(frames):
                service.submit(ring.write(frame, 1000.0 + i))
        # One more camera whose frame is overwritten before the detector gets to it.
        stale_ring = rings["late"] = FrameRing("late", 36, 64, slots=4)
        stale = stale_ring.write(np.zeros((36, 64, 3), np.uint8), 1000.0)
        for _ in range(4):
            stale_ring.write(np.zeros((36, 64, 3), np.uint8), 1001.0)
        service.submit(stale)

        source: queue.Queue[FrameRef] = queue.Queue()
        stop = threading.Event()
        runner = threading.Thread(target=service.run, args=(source, stop))
        runner.start()
        deadline = time.monotonic() + 60
        while len(results) < 9 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        runner.join(timeout=10)
    finally:
        for ring in rings.values():
            ring.close()

    assert sorted({r.camera_id for r, _ in results}) == ["crossing", "pets", "street"]
    assert len(results) == 9
    people = sum(int((d.class_id == 0).sum()) for r, d in results if r.camera_id == "pets")
    cars = sum(int((d.class_id == 2).sum()) for r, d in results if r.camera_id == "crossing")
    assert people >= 9 and cars >= 9  # ~6 people and ~8 cars per frame in these clips
    stats = service.stats
    assert stats.frames_in == 10 and stats.frames_detected == 9 and stats.frames_stale == 1
    assert sum(stats.batch_sizes) == stats.batches and stats.mean_batch > 1.0
    assert sum(stats.infer_ms.counts) == stats.batches
    assert stats.detected_per_camera == {"pets": 3, "street": 3, "crossing": 3}

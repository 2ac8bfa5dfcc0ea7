"""One detector for all cameras: fair dynamic batching, bounded per-camera queues.

A receiver thread moves ``FrameRef``s from the inter-process queue into
per-camera queues (``CameraQueues``), so the process queue never fills while
the model runs.  The main loop takes fair batches, letterboxes straight from
shared memory into the batch buffer and runs the backend.  Frames whose ring
slot was overwritten while they waited are dropped and counted as stale.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

from core.frames import FrameReader
from core.types import FrameRef, StopSignal
from vision.detections import Detections
from vision.detector.detector import Detector
from vision.detector.planner import MosaicMode, MosaicPlanner
from vision.detector.prepost import Letterbox
from vision.detector.queues import CameraQueues
from vision.detector.stats import DetectorStats

log = logging.getLogger(__name__)

ResultSink = Callable[[FrameRef, Detections], None]
StatsSink = Callable[[DetectorStats], None]


class RefSource(Protocol):
    def get(self, block: bool = True, timeout: float | None = None) -> FrameRef: ...


class DetectorService:
    def __init__(
        self,
        detector: Detector,
        frames: FrameReader,
        sink: ResultSink,
        max_wait_ms: float,
        per_camera_queue: int = 2,
        per_camera_batch: int = 2,
        mosaic: MosaicMode = "off",
        max_frame_age_ms: float | None = 250.0,
    ) -> None:
        self._detector = detector
        self._frames = frames
        self._sink = sink
        self._max_wait_s = max_wait_ms / 1000.0
        self._per_camera_batch = per_camera_batch
        self.queues = CameraQueues(
            per_camera_queue, None if max_frame_age_ms is None else max_frame_age_ms / 1000.0
        )
        self.planner = MosaicPlanner(mosaic, detector.frames_per_mosaic, detector.backend.max_batch)
        self.stats = DetectorStats(max_batch=detector.max_batch)

    def submit(self, ref: FrameRef) -> None:
        self.stats.frames_in += 1
        self.planner.arrived()
        self.queues.put(ref)

    def next_batch(self, idle_timeout_s: float = 0.2) -> list[FrameRef]:
        return self.queues.take_batch(
            self.planner.batch_limit(), self._per_camera_batch, self._max_wait_s, idle_timeout_s
        )

    def process(self, batch: list[FrameRef]) -> int:
        """Detect one batch and hand each result to the sink; returns frames detected."""
        stats = self.stats
        now = time.time()
        full = self.planner.full_frames(len(batch))
        self._detector.layout(full)
        kept: list[FrameRef] = []
        boxes: list[Letterbox] = []
        for ref in batch:
            view = self._frames.view(ref)
            if view is None:
                stats.frames_stale += 1
                continue
            box = self._detector.prepare(len(kept), view)
            if not self._frames.still_valid(ref):
                stats.frames_stale += 1  # overwritten while we letterboxed it
                continue
            stats.queue_wait_ms.observe(max(0.0, now - ref.capture_ts) * 1000.0)
            kept.append(ref)
            boxes.append(box)
        if not kept:
            return 0
        started = time.perf_counter()
        results = self._detector.run(boxes)
        infer_s = time.perf_counter() - started
        stats.infer_ms.observe(infer_s * 1000.0)
        self.planner.batch_done(self._detector.inputs(len(kept)), infer_s)
        stats.batches += 1
        stats.batch_sizes[len(kept)] += 1
        stats.frames_detected += len(kept)
        stats.frames_mosaic += max(0, len(kept) - full)
        for ref, dets in zip(kept, results, strict=True):
            per_camera = stats.detected_per_camera
            per_camera[ref.camera_id] = per_camera.get(ref.camera_id, 0) + 1
            self._sink(ref, dets)
        return len(kept)

    def run(
        self,
        source: RefSource,
        stop: StopSignal,
        publish_stats: StatsSink | None = None,
        publish_every_s: float = 1.0,
    ) -> None:
        receiver = threading.Thread(
            target=self._receive, args=(source, stop), name="detector-receive", daemon=True
        )
        receiver.start()
        next_publish = time.monotonic() + publish_every_s
        while not stop.is_set():
            batch = self.next_batch()
            if batch:
                self.process(batch)
            if publish_stats is not None and time.monotonic() >= next_publish:
                next_publish = time.monotonic() + publish_every_s
                self.stats.dropped_per_camera = dict(self.queues.dropped)
                publish_stats(self.stats)
        receiver.join(timeout=2)

    def _receive(self, source: RefSource, stop: StopSignal) -> None:
        while not stop.is_set():
            try:
                self.submit(source.get(timeout=0.2))
            except queue.Empty:
                continue

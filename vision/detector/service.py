"""One detector for all cameras: dynamic batching by size and wait time.

A batch closes when it holds ``max_batch`` frames or ``max_wait_ms`` has passed
since its first frame arrived, whichever comes first (Savant/Triton policy).
Frames whose ring slot was overwritten while they waited are dropped and counted.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from core.frames import FrameReader
from core.types import FrameRef, StopSignal
from vision.detections import Detections
from vision.detector.detector import Detector
from vision.detector.prepost import Letterbox

log = logging.getLogger(__name__)

ResultSink = Callable[[FrameRef, Detections], None]


class RefSource(Protocol):
    def get(self, block: bool = True, timeout: float | None = None) -> FrameRef: ...


@dataclass(slots=True)
class DetectorStats:
    frames_in: int = 0
    frames_detected: int = 0
    frames_stale: int = 0
    batches: int = 0
    infer_s_total: float = 0.0
    queue_wait_s_total: float = 0.0
    per_camera_detected: dict[str, int] = field(default_factory=dict)

    @property
    def mean_batch(self) -> float:
        return self.frames_detected / self.batches if self.batches else 0.0


class DetectorService:
    def __init__(
        self,
        detector: Detector,
        frames: FrameReader,
        source: RefSource,
        sink: ResultSink,
        max_wait_ms: float,
    ) -> None:
        self._detector = detector
        self._frames = frames
        self._source = source
        self._sink = sink
        self._max_wait_s = max_wait_ms / 1000.0
        self.stats = DetectorStats()

    def next_batch(self, idle_timeout_s: float = 0.2) -> list[FrameRef]:
        try:
            first = self._source.get(timeout=idle_timeout_s)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self._max_wait_s
        while len(batch) < self._detector.max_batch:
            remaining = deadline - time.monotonic()
            try:
                if remaining > 0:
                    batch.append(self._source.get(timeout=remaining))
                else:
                    batch.append(self._source.get(block=False))
            except queue.Empty:
                break
        return batch

    def process(self, batch: list[FrameRef]) -> int:
        """Detect one batch and hand each result to the sink; returns frames detected."""
        stats = self.stats
        stats.frames_in += len(batch)
        now = time.time()
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
            stats.queue_wait_s_total += max(0.0, now - ref.capture_ts)
            kept.append(ref)
            boxes.append(box)
        if not kept:
            return 0
        started = time.perf_counter()
        results = self._detector.run(boxes)
        stats.infer_s_total += time.perf_counter() - started
        stats.batches += 1
        stats.frames_detected += len(kept)
        for ref, dets in zip(kept, results, strict=True):
            stats.per_camera_detected[ref.camera_id] = (
                stats.per_camera_detected.get(ref.camera_id, 0) + 1
            )
            self._sink(ref, dets)
        return len(kept)

    def run(self, stop: StopSignal, log_every_s: float = 30.0) -> None:
        last_log = time.monotonic()
        while not stop.is_set():
            batch = self.next_batch()
            if batch:
                self.process(batch)
            if time.monotonic() - last_log >= log_every_s:
                last_log = time.monotonic()
                s = self.stats
                log.info(
                    "detector: %d frames in, %d detected, %d stale, mean batch %.2f, %.1f ms/batch",
                    s.frames_in,
                    s.frames_detected,
                    s.frames_stale,
                    s.mean_batch,
                    1000 * s.infer_s_total / max(1, s.batches),
                )

"""Detector counters and histograms, kept as plain data so any process can publish
them (Redis) and the API can render them as Prometheus metrics."""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from typing import Any

INFER_MS_BUCKETS = (5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0)
QUEUE_WAIT_MS_BUCKETS = (10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0)


@dataclass(slots=True)
class Histogram:
    """Cumulative-on-render histogram: ``counts[i]`` observations ≤ ``buckets[i]``
    (exclusive of lower buckets), the last slot is +Inf."""

    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value


@dataclass(slots=True)
class DetectorStats:
    max_batch: int = 1
    frames_in: int = 0
    frames_detected: int = 0
    frames_stale: int = 0  # overwritten in shared memory before their turn
    frames_mosaic: int = 0  # detected packed with others at reduced size (planner.py)
    batches: int = 0
    batch_sizes: list[int] = field(default_factory=list)  # index = batch size
    infer_ms: Histogram = field(default_factory=lambda: Histogram(INFER_MS_BUCKETS))
    queue_wait_ms: Histogram = field(default_factory=lambda: Histogram(QUEUE_WAIT_MS_BUCKETS))
    detected_per_camera: dict[str, int] = field(default_factory=dict)
    dropped_per_camera: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.batch_sizes:
            self.batch_sizes = [0] * (self.max_batch + 1)

    @property
    def mean_batch(self) -> float:
        return self.frames_detected / self.batches if self.batches else 0.0

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)

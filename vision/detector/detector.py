"""A backend plus letterbox and decode: images in, ``Detections`` out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from vision.detections import Detections
from vision.detector.backend import DetectorBackend
from vision.detector.prepost import Letterbox, decode_output, letterbox_into


class Detector:
    def __init__(
        self, backend: DetectorBackend, confidence_threshold: float, iou_threshold: float
    ) -> None:
        self.backend = backend
        self.confidence_threshold = confidence_threshold
        self.iou_threshold = iou_threshold
        height, width = backend.input_hw
        # One batch buffer for the life of the detector: images are letterboxed
        # straight into it and the backend reads it in place.
        self._batch = np.empty((backend.max_batch, height, width, 3), np.uint8)

    @property
    def max_batch(self) -> int:
        return self.backend.max_batch

    def prepare(self, index: int, image_bgr: npt.NDArray[np.uint8]) -> Letterbox:
        """Letterbox ``image_bgr`` into slot ``index`` of the batch buffer."""
        return letterbox_into(image_bgr, self._batch[index])

    def infer_prepared(self, count: int) -> npt.NDArray[np.float32]:
        """The raw network output for the first ``count`` prepared slots (benchmarks)."""
        return self.backend.infer(self._batch[:count])

    def run(self, boxes: Sequence[Letterbox]) -> list[Detections]:
        """Infer the first ``len(boxes)`` prepared slots."""
        if not boxes:
            return []
        output = self.backend.infer(self._batch[: len(boxes)])
        return [
            decode_output(output[i], box, self.confidence_threshold, self.iou_threshold)
            for i, box in enumerate(boxes)
        ]

    def detect(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        results: list[Detections] = []
        for start in range(0, len(images), self.max_batch):
            chunk = images[start : start + self.max_batch]
            boxes = [self.prepare(i, image) for i, image in enumerate(chunk)]
            results.extend(self.run(boxes))
        return results

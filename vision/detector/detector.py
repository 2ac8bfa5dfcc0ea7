"""A backend plus letterbox and decode: images in, ``Detections`` out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from vision.detections import Detections
from vision.detector.backend import DetectorBackend
from vision.detector.mosaic import grid_cells, place, split
from vision.detector.prepost import Letterbox, decode_output, letterbox_into, raw_boxes


class Detector:
    """Letterboxes frames into the batch buffer, runs the backend, decodes.

    With ``tile_grid`` (rows, cols) other than (1, 1), each network input holds
    rows × cols frames (vision/detector/mosaic.py), so a batch carries
    ``backend.max_batch × rows × cols`` frames.
    """

    def __init__(
        self,
        backend: DetectorBackend,
        confidence_threshold: float,
        iou_threshold: float,
        tile_grid: tuple[int, int] = (1, 1),
    ) -> None:
        self.backend = backend
        self.confidence_threshold = confidence_threshold
        self.iou_threshold = iou_threshold
        self._cells = grid_cells(backend.input_hw, tile_grid)
        self.frames_per_input = len(self._cells)
        height, width = backend.input_hw
        # One batch buffer for the life of the detector: images are letterboxed
        # straight into it and the backend reads it in place.
        self._batch = np.empty((backend.max_batch, height, width, 3), np.uint8)

    @property
    def max_batch(self) -> int:
        """Frames per ``run``: network inputs per batch × frames per input."""
        return self.backend.max_batch * self.frames_per_input

    def prepare(self, index: int, image_bgr: npt.NDArray[np.uint8]) -> Letterbox:
        """Letterbox ``image_bgr`` into frame slot ``index`` of the batch buffer."""
        if self.frames_per_input == 1:
            return letterbox_into(image_bgr, self._batch[index])
        image, cell = divmod(index, self.frames_per_input)
        return place(image_bgr, self._batch[image], self._cells[cell])

    def infer_prepared(self, count: int) -> npt.NDArray[np.float32]:
        """The raw network output for the first ``count`` prepared frames (benchmarks)."""
        return self.backend.infer(self._batch[: self._inputs(count)])

    def _inputs(self, frames: int) -> int:
        return -(-frames // self.frames_per_input)

    def run(self, boxes: Sequence[Letterbox]) -> list[Detections]:
        """Infer the first ``len(boxes)`` prepared frames."""
        if not boxes:
            return []
        output = self.backend.infer(self._batch[: self._inputs(len(boxes))])
        conf, iou = self.confidence_threshold, self.iou_threshold
        if self.frames_per_input == 1:
            return [decode_output(output[i], box, conf, iou) for i, box in enumerate(boxes)]
        results: list[Detections] = []
        per = self.frames_per_input
        for image in range(self._inputs(len(boxes))):
            mine = list(boxes[image * per : (image + 1) * per])
            raw = raw_boxes(output[image], conf, iou, max_detections=300 * per)
            results.extend(split(raw, self._cells, mine))
        return results

    def detect(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        results: list[Detections] = []
        for start in range(0, len(images), self.max_batch):
            chunk = images[start : start + self.max_batch]
            boxes = [self.prepare(i, image) for i, image in enumerate(chunk)]
            results.extend(self.run(boxes))
        return results

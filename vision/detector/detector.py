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

    With ``tile_grid`` (rows, cols) other than (1, 1), frames can share a network
    input, rows × cols to one (vision/detector/mosaic.py).  ``layout(full)`` says
    how the next batch is laid out: its first ``full`` frames get an input of
    their own, the rest are packed.  Without a call, every frame is packed.
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
        self.frames_per_mosaic = len(self._cells)
        self._full = 0
        height, width = backend.input_hw
        # One batch buffer for the life of the detector: images are letterboxed
        # straight into it and the backend reads it in place.
        self._batch = np.empty((backend.max_batch, height, width, 3), np.uint8)

    @property
    def max_batch(self) -> int:
        """The most frames one ``run`` takes: every input a full mosaic."""
        return self.backend.max_batch * self.frames_per_mosaic

    def layout(self, full: int) -> None:
        """The next batch's first ``full`` frames get an input each; the rest share."""
        self._full = full if self.frames_per_mosaic > 1 else 0

    def inputs(self, frames: int) -> int:
        """Network inputs that ``frames`` prepared frames fill under the layout."""
        if self.frames_per_mosaic == 1:
            return frames
        full = min(frames, self._full)
        return full + -(-(frames - full) // self.frames_per_mosaic)

    def prepare(self, index: int, image_bgr: npt.NDArray[np.uint8]) -> Letterbox:
        """Letterbox ``image_bgr`` into frame slot ``index`` of the batch buffer."""
        if self.frames_per_mosaic == 1 or index < self._full:
            return letterbox_into(image_bgr, self._batch[index])
        image, cell = divmod(index - self._full, self.frames_per_mosaic)
        return place(image_bgr, self._batch[self._full + image], self._cells[cell])

    def infer_prepared(self, count: int) -> npt.NDArray[np.float32]:
        """The raw network output for the first ``count`` prepared frames (benchmarks)."""
        return self.backend.infer(self._batch[: self.inputs(count)])

    def run(self, boxes: Sequence[Letterbox]) -> list[Detections]:
        """Infer the first ``len(boxes)`` prepared frames."""
        if not boxes:
            return []
        output = self.backend.infer(self._batch[: self.inputs(len(boxes))])
        conf, iou = self.confidence_threshold, self.iou_threshold
        full = len(boxes) if self.frames_per_mosaic == 1 else min(len(boxes), self._full)
        results = [decode_output(output[i], boxes[i], conf, iou) for i in range(full)]
        per = self.frames_per_mosaic
        for image in range(full, len(output)):
            first = full + (image - full) * per
            mine = list(boxes[first : first + per])
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

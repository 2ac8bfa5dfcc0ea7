"""Several camera frames in one network input: the many-cameras-per-core mode.

On a CPU the model's cost is per input image, not per camera.  A 640×640 input
holds a 3×2 grid of 16:9 sub-stream frames at half width, so one inference
detects six cameras, each as if the network ran at ≈ 320 px.  Small objects are
missed sooner (docs/performance.md measures how many); the per-camera frame rate
rises up to six-fold.  Frigate makes the same trade with its 320 px models.

Each frame is letterboxed into its own cell, inside a grey gutter so that no box
can join two cameras.  One NMS runs over the whole input (cells do not overlap),
then every box goes to the cell that holds its centre and is mapped back to that
frame's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vision.detections import Detections
from vision.detector.prepost import PAD_VALUE, Letterbox, RawBoxes, letterbox_into, to_source

GUTTER_PX = 4  # grey on each side of a cell: two neighbours' objects stay 8 px apart


@dataclass(frozen=True, slots=True)
class Cell:
    """A rectangle of the network input, in network pixels."""

    y0: int
    y1: int
    x0: int
    x1: int


def grid_cells(input_hw: tuple[int, int], grid_rc: tuple[int, int]) -> list[Cell]:
    """The cells of a ``rows × cols`` grid over ``input_hw``, row by row."""
    height, width = input_hw
    rows, cols = grid_rc
    cell_h, cell_w = height // rows, width // cols
    return [
        Cell(r * cell_h, (r + 1) * cell_h, c * cell_w, (c + 1) * cell_w)
        for r in range(rows)
        for c in range(cols)
    ]


def place(
    image_bgr: npt.NDArray[np.uint8], dst_bgr: npt.NDArray[np.uint8], cell: Cell
) -> Letterbox:
    """Letterbox ``image_bgr`` into ``cell`` of one network input ``dst_bgr``.

    The returned ``Letterbox`` maps network pixels of the whole input (not of the
    cell) back to the frame, so ``to_source`` needs no other offset.
    """
    g = GUTTER_PX
    area = dst_bgr[cell.y0 : cell.y1, cell.x0 : cell.x1]
    area[:g] = PAD_VALUE
    area[-g:] = PAD_VALUE
    area[:, :g] = PAD_VALUE
    area[:, -g:] = PAD_VALUE
    inner = letterbox_into(image_bgr, area[g:-g, g:-g])
    return Letterbox(
        scale=inner.scale,
        pad_x=inner.pad_x + cell.x0 + g,
        pad_y=inner.pad_y + cell.y0 + g,
        src_hw=inner.src_hw,
    )


def split(raw: RawBoxes, cells: list[Cell], boxes: list[Letterbox]) -> list[Detections]:
    """One input's boxes (network pixels) → per-frame Detections, by box centre."""
    if raw.xyxy.shape[0] == 0:
        return [Detections.empty() for _ in boxes]
    cx = (raw.xyxy[:, 0] + raw.xyxy[:, 2]) / 2
    cy = (raw.xyxy[:, 1] + raw.xyxy[:, 3]) / 2
    out: list[Detections] = []
    for cell, box in zip(cells, boxes, strict=False):
        inside = np.flatnonzero((cx >= cell.x0) & (cx < cell.x1) & (cy >= cell.y0) & (cy < cell.y1))
        out.append(to_source(raw.take(inside), box))
    return out

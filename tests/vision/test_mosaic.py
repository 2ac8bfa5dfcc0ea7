"""Mosaic detection (detector.tile_grid): several cameras per network input, on real
frames through the real int8 model, against the same model at full size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from pydantic import ValidationError

from core.config import DetectorConfig
from tests.vision.clips import clip_frames
from vision.detections import Detections
from vision.detector.backend import create_backend
from vision.detector.detector import Detector
from vision.detector.mosaic import GUTTER_PX, grid_cells, place
from vision.detector.prepost import PAD_VALUE

CLIPS = (
    "pets2009_vtest_480x360.mp4",
    "street_parking_ipcam_day.mp4",
    "motorbikes_etle_cctv.mp4",
    "intersection_cctv_day.mp4",
    "parking_lot_topdown_intel.mp4",
    "highway_overpass_day.mp4",
)


def _frame(path: Path, index: int) -> npt.NDArray[np.uint8]:
    return clip_frames(path, 1, start=index)[0]


def _detector(model_dir: Path, grid: tuple[int, int], max_batch: int = 1) -> Detector:
    backend = create_backend("openvino", model_dir, "cpu", (640, 640), max_batch)
    return Detector(backend, 0.25, 0.45, grid)


def _iou(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return np.asarray(inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9), np.float64)


def _found(reference: Detections, candidate: Detections, min_iou: float) -> int:
    if len(reference) == 0 or len(candidate) == 0:
        return 0
    same_class = reference.class_id[:, None] == candidate.class_id[None, :]
    overlap = _iou(reference.xyxy, candidate.xyxy) * same_class
    return int((overlap.max(axis=1) >= min_iou).sum())


def test_grid_cells_tile_the_input_row_by_row() -> None:
    cells = grid_cells((640, 640), (3, 2))
    assert len(cells) == 6
    assert (cells[0].y0, cells[0].x0, cells[1].x0, cells[2].y0) == (0, 0, 320, 213)
    assert all(c.y1 - c.y0 == 213 and c.x1 - c.x0 == 320 for c in cells)


def test_a_point_maps_back_to_its_own_frame() -> None:
    # A 640x360 frame in cell 3 (row 1, col 1) of a 3x2 grid: the Letterbox maps
    # network pixels of the whole input back to the frame's own pixels.
    dst = np.zeros((640, 640, 3), np.uint8)
    frame = np.zeros((360, 640, 3), np.uint8)
    frame[100:110, 200:210] = 255
    cell = grid_cells((640, 640), (3, 2))[3]
    box = place(frame, dst, cell)
    ys, xs = np.nonzero(dst[..., 0] == 255)
    assert cell.x0 + GUTTER_PX <= xs.min() and xs.max() < cell.x1 - GUTTER_PX
    assert cell.y0 + GUTTER_PX <= ys.min() and ys.max() < cell.y1 - GUTTER_PX
    back_x = (xs.mean() - box.pad_x) / box.scale
    back_y = (ys.mean() - box.pad_y) / box.scale
    assert abs(back_x - 204.5) < 2.5 and abs(back_y - 104.5) < 2.5
    # The gutter is painted grey, whatever the buffer held before.
    assert (dst[cell.y0, cell.x0 : cell.x1] == PAD_VALUE).all()


def test_mosaic_keeps_most_of_what_full_size_finds(model_dir: Path, video) -> None:  # type: ignore[no-untyped-def]
    # Two moments of each clip, interleaved so each input holds six cameras.
    moments = [clip_frames(video(name), 2, step=120, start=40) for name in CLIPS]
    frames = [pair[moment] for moment in (0, 1) for pair in moments]
    full = _detector(model_dir, (1, 1))
    mosaic = _detector(model_dir, (3, 2))
    reference = [full.detect([f])[0] for f in frames]
    packed = mosaic.detect(frames)
    assert len(packed) == len(frames)
    wanted = found = 0
    for frame, ref, got in zip(frames, reference, packed, strict=True):
        height, width = frame.shape[:2]
        assert (got.xyxy[:, 0::2] <= width).all() and (got.xyxy[:, 1::2] <= height).all()
        tall = ref.xyxy[:, 3] - ref.xyxy[:, 1] >= 32
        confident = ref.select(tall & (ref.confidence >= 0.5))
        wanted += len(confident)
        found += _found(confident, got, min_iou=0.3)
    assert wanted >= 40, "busy scenes, not an empty reference"
    # Half the pixels per camera: measured 79 % over six moments of each clip.
    assert found / wanted >= 0.65, f"mosaic found {found} of {wanted} confident boxes"


def test_no_box_crosses_into_a_neighbouring_camera(model_dir: Path, video) -> None:  # type: ignore[no-untyped-def]
    busy = _frame(video("intersection_cctv_day.mp4"), 40)
    blank = np.full((360, 640, 3), 90, np.uint8)
    # Blank frames between and around busy ones, in both directions of the grid.
    frames = [busy, blank, blank, busy, busy, blank]
    results = _detector(model_dir, (3, 2)).detect(frames)
    assert all(len(results[i]) > 3 for i in (0, 3, 4))
    assert [len(results[i]) for i in (1, 2, 5)] == [0, 0, 0]


def test_a_part_filled_batch_gives_one_result_per_frame(model_dir: Path, video) -> None:  # type: ignore[no-untyped-def]
    frames = [_frame(video(name), 40) for name in CLIPS] + [
        _frame(video("motorbikes_etle_cctv.mp4"), 80)
    ]
    detector = _detector(model_dir, (3, 2), max_batch=2)
    assert detector.max_batch == 12
    results = detector.detect(frames)
    assert len(results) == 7
    alone = _detector(model_dir, (3, 2)).detect(frames[6:])[0]
    # The seventh frame sits alone in the second input, in the same cell as when
    # it is detected alone: the same boxes (a batch runs on OpenVINO's parallel
    # requests, whose int8 kernels round a little differently: ≈ 1 network px).
    assert len(alone) > 0 and abs(len(results[6]) - len(alone)) <= 1
    assert _found(alone, results[6], min_iou=0.9) >= len(alone) - 1


def test_tile_grid_is_checked() -> None:
    assert (DetectorConfig().mosaic, DetectorConfig().tile_grid) == ("auto", (3, 2))
    assert DetectorConfig.model_validate({"tile_grid": [3, 2]}).tile_grid == (3, 2)
    with pytest.raises(ValidationError, match="tile_grid"):
        DetectorConfig.model_validate({"tile_grid": [5, 1]})

"""The real int8 model through our own letterbox, decode and NMS."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.vision.clips import clip_frames
from vision.detector.backend import DetectorError, create_backend
from vision.detector.detector import Detector
from vision.labels import COCO_TO_DOMAIN


def _detector(model_dir: Path, max_batch: int = 1) -> Detector:
    backend = create_backend("openvino", model_dir, "cpu", (640, 640), max_batch)
    return Detector(backend, confidence_threshold=0.25, iou_threshold=0.45)


def _labels(class_ids: np.ndarray) -> Counter[str]:
    return Counter(COCO_TO_DOMAIN.get(int(c), str(int(c))) for c in class_ids)


def test_bus_jpg_has_four_people_and_one_bus(model_dir: Path, bus_jpg: Path) -> None:
    loaded = cv2.imread(str(bus_jpg))
    assert loaded is not None
    image = np.asarray(loaded, np.uint8)
    dets = _detector(model_dir).detect([image])[0]
    assert _labels(dets.class_id) == Counter({"person": 4, "bus": 1})
    # Boxes are in source pixels of the 810x1080 image, not network pixels.
    h, w = image.shape[:2]
    assert (dets.xyxy[:, 2] <= w).all() and (dets.xyxy[:, 3] <= h).all()
    bus = dets.xyxy[dets.class_id == 5][0]
    assert bus[2] - bus[0] > 0.8 * w  # the bus spans the width of the picture


def test_batched_results_equal_single_image_results(model_dir: Path, video) -> None:  # type: ignore[no-untyped-def]
    frames = clip_frames(video("intersection_cctv_day.mp4"), count=6, step=45)
    single = _detector(model_dir, max_batch=1)
    batched = _detector(model_dir, max_batch=4)
    one_by_one = [single.detect([f])[0] for f in frames]
    together = batched.detect(frames)
    assert sum(len(d) for d in one_by_one) > 20  # a busy crossing, not an empty result
    for a, b in zip(one_by_one, together, strict=True):
        assert len(a) == len(b)
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1.0)
        np.testing.assert_array_equal(a.class_id, b.class_id)


def test_wrong_input_size_names_the_setting(model_dir: Path) -> None:
    with pytest.raises(DetectorError, match=r"detector\.input_hw"):
        create_backend("openvino", model_dir, "cpu", (384, 640), 1)


def test_cuda_device_is_refused_by_openvino(model_dir: Path) -> None:
    with pytest.raises(DetectorError, match=r"detector\.device"):
        create_backend("openvino", model_dir, "cuda:0", (640, 640), 1)

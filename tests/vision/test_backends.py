"""The ONNX Runtime backend on the shared int8 ONNX files, checked against OpenVINO."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest

from vision.detections import Detections
from vision.detector.backend import DetectorError, create_backend
from vision.detector.detector import Detector
from vision.labels import COCO_TO_DOMAIN

ONNX_640 = "yolov8n_int8_onnx/yolov8n_int8.onnx"
ONNX_320 = "yolo11n_int8_onnx_320/yolo11n_int8.onnx"


def _model(assets: Path, relpath: str) -> Path:
    path = assets / "models" / relpath
    if not path.is_file():
        pytest.fail(f"model {path} is missing from the shared assets", pytrace=False)
    return path


def _detector(
    backend: str, path: Path, input_hw: tuple[int, int] = (640, 640), max_batch: int = 1
) -> Detector:
    return Detector(
        create_backend(backend, path, "cpu", input_hw, max_batch),
        confidence_threshold=0.25,
        iou_threshold=0.45,
    )


def _labels(class_ids: npt.NDArray[np.int32]) -> Counter[str]:
    return Counter(COCO_TO_DOMAIN.get(int(c), str(int(c))) for c in class_ids)


def _bus(bus_jpg: Path) -> npt.NDArray[np.uint8]:
    loaded = cv2.imread(str(bus_jpg))
    assert loaded is not None
    return np.asarray(loaded, np.uint8)


def _frames(path: Path, count: int) -> list[npt.NDArray[np.uint8]]:
    """``count`` frames spread evenly over the clip."""
    with av.open(str(path)) as container:
        total = container.streams.video[0].frames
        wanted = set(np.linspace(0, total - 1, count).astype(int).tolist())
        return [
            np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)
            for index, frame in enumerate(container.decode(video=0))
            if index in wanted
        ]


def _iou(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """(N, M) IoU of xyxy boxes."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.asarray(inter / np.maximum(union, 1e-9), np.float64)


def _matches(a: Detections, b: Detections, min_iou: float) -> int:
    """Same-class pairs with IoU ≥ ``min_iou``, greedily by IoU, each detection used once."""
    if len(a) == 0 or len(b) == 0:
        return 0
    iou = _iou(a.xyxy, b.xyxy)
    iou[a.class_id[:, None] != b.class_id[None, :]] = -1.0
    found = 0
    while True:
        i, j = np.unravel_index(np.argmax(iou), iou.shape)
        if iou[i, j] < min_iou:
            return found
        found += 1
        iou[i, :] = -1.0
        iou[:, j] = -1.0


def test_bus_jpg_640_has_four_people_and_one_bus(assets: Path, bus_jpg: Path) -> None:
    dets = _detector("onnxruntime", _model(assets, ONNX_640)).detect([_bus(bus_jpg)])[0]
    assert _labels(dets.class_id) == Counter({"person": 4, "bus": 1})


def test_bus_jpg_320_has_four_people_and_one_bus(assets: Path, bus_jpg: Path) -> None:
    detector = _detector("onnxruntime", _model(assets, ONNX_320), input_hw=(320, 320))
    dets = detector.detect([_bus(bus_jpg)])[0]
    assert _labels(dets.class_id) == Counter({"person": 4, "bus": 1})


def test_openvino_and_onnxruntime_agree_on_the_same_onnx(assets: Path, video) -> None:  # type: ignore[no-untyped-def]
    path = _model(assets, ONNX_640)
    frames = _frames(video("intersection_cctv_day.mp4"), count=8)
    assert len(frames) == 8
    by_ov = _detector("openvino", path).detect(frames)
    by_ort = _detector("onnxruntime", path).detect(frames)
    total = max(sum(len(d) for d in by_ov), sum(len(d) for d in by_ort))
    matched = sum(_matches(a, b, min_iou=0.9) for a, b in zip(by_ov, by_ort, strict=True))
    agreement = matched / total
    print(
        f"OpenVINO vs ONNX Runtime on {path.name}: {matched}/{total} detections "
        f"matched at IoU ≥ 0.9 = {agreement:.1%}"
    )
    assert total > 20  # a busy crossing, not an empty result
    assert agreement >= 0.9


def test_batched_results_equal_single_image_results(assets: Path, video) -> None:  # type: ignore[no-untyped-def]
    folder = _model(assets, ONNX_640).parent  # a folder holding one .onnx works too
    frames = _frames(video("intersection_cctv_day.mp4"), count=6)
    single = _detector("onnxruntime", folder, max_batch=1)
    batched = _detector("onnxruntime", folder, max_batch=4)
    one_by_one = [single.detect([f])[0] for f in frames]
    together = batched.detect(frames)
    assert sum(len(d) for d in one_by_one) > 20
    for a, b in zip(one_by_one, together, strict=True):
        assert len(a) == len(b)
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1.0)
        np.testing.assert_array_equal(a.class_id, b.class_id)


@pytest.mark.parametrize(("relpath", "input_hw"), [(ONNX_640, (320, 320)), (ONNX_320, (640, 640))])
def test_wrong_input_size_names_the_setting(
    assets: Path, relpath: str, input_hw: tuple[int, int]
) -> None:
    with pytest.raises(DetectorError, match=r"detector\.input_hw"):
        create_backend("onnxruntime", _model(assets, relpath), "cpu", input_hw, 1)


def test_cuda_device_needs_the_gpu_extra(assets: Path) -> None:
    """On a CPU-only install, asking for CUDA says which extra to install; where the GPU
    wheel and a GPU are present, the same request gives a working backend."""
    model = _model(assets, ONNX_640)
    if "CUDAExecutionProvider" in ort.get_available_providers():
        backend = create_backend("onnxruntime", model, "cuda:0", (640, 640), 1)
        assert backend.input_hw == (640, 640)
        return
    with pytest.raises(DetectorError, match=r"commune-vision\[gpu\]"):
        create_backend("onnxruntime", model, "cuda:0", (640, 640), 1)

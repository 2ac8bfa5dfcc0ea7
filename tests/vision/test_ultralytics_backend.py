"""The Ultralytics backend (the GPU path) checked on the CPU against OpenVINO.

torch must never enter the project's venv, so the backend runs in the separate
``.venv-gpu`` (torch's CPU wheel + ultralytics; ``make gpu-test-venv``, which
``make test`` builds) through ``ultralytics_probe.py``, and its detections are
compared here with the OpenVINO backend on the same images.  Ultralytics'
AutoBackend opens the shared int8 OpenVINO export, so the same weights run
through both paths; a ``.pt`` built from Ultralytics' yolo11n.yaml exercises
the PyTorch path itself.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tests.vision.test_backends import _bus, _detector, _frames, _labels, _matches
from vision.detections import Detections
from vision.detector.backend import DetectorError, create_backend

ROOT = Path(__file__).resolve().parents[2]
GPU_PYTHON = Path(
    os.environ.get("COMMUNE_VISION_GPU_PYTHON", ROOT / ".venv-gpu" / "bin" / "python")
)
OPENVINO_11N = "yolo11n_int8_openvino_model"


def _from_rows(rows: list[list[float]]) -> Detections:
    table = np.asarray(rows, np.float32).reshape(-1, 6)
    return Detections(
        xyxy=table[:, :4],
        confidence=table[:, 5],
        class_id=table[:, 4].astype(np.int32),
        tracker_id=np.full(len(table), -1, np.int32),
    )


@pytest.fixture(scope="module")
def probe(
    assets: Path, bus_jpg: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, object]:
    if not GPU_PYTHON.is_file():
        pytest.fail(
            f"{GPU_PYTHON} is missing: run `make gpu-test-venv` (torch CPU wheel + ultralytics, "
            "kept out of the project venv) or set COMMUNE_VISION_GPU_PYTHON",
            pytrace=False,
        )
    work = tmp_path_factory.mktemp("ultralytics")
    frames = _frames(assets / "videos" / "intersection_cctv_day.mp4", 8)
    images = [_bus(bus_jpg), *frames]
    np.savez(work / "images.npz", *images)
    done = subprocess.run(
        [
            str(GPU_PYTHON),
            str(Path(__file__).with_name("ultralytics_probe.py")),
            str(assets / "models" / OPENVINO_11N),
            str(work / "images.npz"),
            "--pt-from-yaml",
            str(work / "yolo11n-random.pt"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "YOLO_CONFIG_DIR": str(work), "YOLO_OFFLINE": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    result["images"] = images
    return result


def test_bus_jpg_has_four_people_and_one_bus(probe: dict[str, object]) -> None:
    bus = _from_rows(probe["batched"][0])  # type: ignore[index]
    assert _labels(bus.class_id) == Counter({"person": 4, "bus": 1})


def test_ultralytics_and_openvino_agree_on_real_cctv(
    assets: Path, probe: dict[str, object]
) -> None:
    images = probe["images"]
    assert isinstance(images, list)
    ours = _detector("openvino", assets / "models" / OPENVINO_11N).detect(images)
    theirs = [_from_rows(rows) for rows in probe["batched"]]  # type: ignore[attr-defined]
    total = sum(len(d) for d in ours)
    matched = sum(_matches(a, b, 0.9) for a, b in zip(ours, theirs, strict=True))
    assert total > 20, "too few detections on the intersection frames to compare"
    assert matched >= 0.9 * total, f"{matched} of {total} OpenVINO boxes matched at IoU ≥ 0.9"


def test_batched_results_equal_single_image_results(probe: dict[str, object]) -> None:
    batched = [_from_rows(rows) for rows in probe["batched"]]  # type: ignore[attr-defined]
    single = [_from_rows(rows) for rows in probe["single"]]  # type: ignore[attr-defined]
    for one, many in zip(single, batched, strict=True):
        assert len(one) == len(many)
        assert _matches(one, many, 0.99) == len(one)


def test_pytorch_checkpoint_runs_batched_like_single(probe: dict[str, object]) -> None:
    pt = probe["pt"]
    assert isinstance(pt, dict)
    assert pt["format"] == "pt"
    # (batch, 4 box + 80 classes, anchors) for 640x640: 80² + 40² + 20² anchors.
    assert pt["shape"] == [4, 84, 8400]
    assert pt["max_abs"] > 0.0
    assert pt["max_abs_diff"] <= 1e-3 * max(1.0, pt["max_abs"])


def test_missing_torch_names_the_setting_and_the_extra(assets: Path) -> None:
    # This venv has no torch, as a CPU install should not.
    with pytest.raises(DetectorError, match=r"detector\.backend.*commune-vision\[gpu\]"):
        create_backend("ultralytics", assets / "models" / OPENVINO_11N, "cpu", (640, 640), 1)

"""Known models by name, and where to look for their files.

Search order for a registry name: ``COMMUNE_VISION_MODELS_DIR`` (``:``-separated),
``./models-data``, then the shared test assets (``COMMUNE_VISION_ASSETS``/models or
``../shared/assets/models``).  A path (anything with a ``/`` or an existing file)
is used as given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.errors import CommuneVisionError


class ModelNotFoundError(CommuneVisionError):
    pass


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    relpath: str
    backend: str
    input_hw: tuple[int, int]
    notes: str


MODELS: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry(
            "yolo11n-int8",
            "yolo11n_int8_openvino_model",
            "openvino",
            (640, 640),
            "default CPU model: YOLO11n, int8 OpenVINO IR",
        ),
        ModelEntry(
            "yolov8n-int8",
            "yolov8n_int8_openvino_model",
            "openvino",
            (640, 640),
            "YOLOv8n, int8 OpenVINO IR",
        ),
        ModelEntry(
            "yolov8n-int8-onnx",
            "yolov8n_int8_onnx/yolov8n_int8.onnx",
            "onnxruntime",
            (640, 640),
            "YOLOv8n, dynamic-quantised ONNX",
        ),
        ModelEntry(
            "yolo11n-int8-onnx-320",
            "yolo11n_int8_onnx_320/yolo11n_int8.onnx",
            "onnxruntime",
            (320, 320),
            "YOLO11n at 320, dynamic-quantised ONNX",
        ),
    )
}

HOW_TO_GET_WEIGHTS = (
    "Export weights with Ultralytics on a machine with internet access: "
    "`pip install ultralytics && yolo export model=yolo11n.pt format=openvino int8=True` "
    "(writes yolo11n_int8_openvino_model/), then copy that folder into a models folder "
    "and set detector.model in the config or COMMUNE_VISION_MODEL to its path."
)


def search_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("COMMUNE_VISION_MODELS_DIR", "").split(":") if p]
    dirs.append(Path("models-data"))
    assets = os.environ.get("COMMUNE_VISION_ASSETS")
    dirs.append(Path(assets) / "models" if assets else Path("../shared/assets/models"))
    return dirs


def resolve_model(name_or_path: str) -> Path:
    """Return the model's file or folder, or raise ModelNotFoundError saying what to do."""
    entry = MODELS.get(name_or_path)
    if entry is None:
        path = Path(name_or_path)
        if path.exists():
            return path.resolve()
        raise ModelNotFoundError(
            f"detector.model: {name_or_path!r} is neither a known model name "
            f"({', '.join(MODELS)}) nor an existing path. {HOW_TO_GET_WEIGHTS}"
        )
    tried = [d / entry.relpath for d in search_dirs()]
    for candidate in tried:
        if candidate.exists():
            return candidate.resolve()
    where = ", ".join(str(t) for t in tried)
    raise ModelNotFoundError(
        f"detector.model: model {entry.name!r} not found (looked in {where}). "
        f"Set COMMUNE_VISION_MODELS_DIR or COMMUNE_VISION_ASSETS to the folder that holds "
        f"{entry.relpath}. {HOW_TO_GET_WEIGHTS}"
    )

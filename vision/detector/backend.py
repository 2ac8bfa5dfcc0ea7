"""The interface every inference backend implements, and the factory that picks one."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from core.errors import CommuneVisionError


class DetectorError(CommuneVisionError):
    pass


class DetectorBackend(Protocol):
    """Runs the raw network on a batch of letterboxed uint8 BGR images."""

    input_hw: tuple[int, int]
    max_batch: int

    def infer(self, batch_bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """(B, H, W, 3) uint8 BGR -> (B, 4 + classes, N) float32.

        The returned array may be reused by the next call: decode it first.
        """
        ...


def create_backend(
    backend: str, model_path: Path, device: str, input_hw: tuple[int, int], max_batch: int
) -> DetectorBackend:
    if backend == "openvino":
        from vision.detector.openvino_backend import OpenVinoBackend

        return OpenVinoBackend(model_path, device, input_hw, max_batch)
    if backend == "onnxruntime":
        from vision.detector.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(model_path, device, input_hw, max_batch)
    if backend == "ultralytics":
        from vision.detector.ultralytics_backend import UltralyticsBackend

        return UltralyticsBackend(model_path, device, input_hw, max_batch)
    raise DetectorError(
        f"detector.backend: unknown backend {backend!r}; use openvino, onnxruntime or ultralytics"
    )

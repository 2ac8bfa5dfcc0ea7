"""Ultralytics backend: PyTorch ``.pt`` and TensorRT ``.engine`` models, the GPU path.

It runs Ultralytics' ``AutoBackend`` on the raw network only; letterbox, decode
and NMS stay ours (``vision/detector/prepost.py``), so every backend returns the
same ``Detections`` for the same image.  ``AutoBackend`` also opens OpenVINO
and ONNX exports, which is how this path is tested on a machine without a GPU.

torch and ultralytics come with the ``gpu`` extra (``pip install
'commune-vision[gpu]'``); the CPU install never imports them.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vision.detector.backend import DetectorError

log = logging.getLogger(__name__)

_GPU_EXTRA = "pip install 'commune-vision[gpu]'"
_CUDA_DEVICE = re.compile(r"cuda(?::(\d+))?|gpu")


def _import_torch() -> tuple[Any, Any]:
    try:
        import torch
        from ultralytics.nn.autobackend import AutoBackend
    except ImportError as exc:
        raise DetectorError(
            f"detector.backend: 'ultralytics' needs torch and ultralytics ({exc.name} is "
            f"missing); install them with {_GPU_EXTRA}, or use backend openvino on a CPU"
        ) from exc
    return torch, AutoBackend


def torch_device(device: str, cuda_available: bool) -> str:
    """Map the config's ``cpu | cuda:N | gpu | auto`` to a torch device string."""
    if device == "cpu" or (device == "auto" and not cuda_available):
        return "cpu"
    if device == "auto":
        return "cuda:0"
    match = _CUDA_DEVICE.fullmatch(device)
    if match is None:
        raise DetectorError(f"detector.device: {device!r} is not cpu, cuda:N, gpu or auto")
    if not cuda_available:
        raise DetectorError(
            f"detector.device: {device!r} asks for CUDA, but torch sees no CUDA device; "
            "install a CUDA build of torch or set detector.device to cpu"
        )
    return f"cuda:{match.group(1) or 0}"


class UltralyticsBackend:
    def __init__(
        self, model_path: Path, device: str, input_hw: tuple[int, int], max_batch: int
    ) -> None:
        torch, auto_backend = _import_torch()
        self._torch = torch
        if not model_path.exists():
            raise DetectorError(f"detector.model: {model_path} does not exist")
        self.device = torch_device(device, bool(torch.cuda.is_available()))
        self.input_hw = input_hw
        self.max_batch = max_batch
        # fp16 halves memory and roughly doubles tensor-core throughput; on the CPU
        # it is slower than fp32, so only CUDA gets it.
        self.half = self.device.startswith("cuda")
        try:
            self._model = auto_backend(
                str(model_path), device=torch.device(self.device), fp16=self.half, verbose=False
            )
        except Exception as exc:  # ultralytics raises bare Exceptions/TypeErrors per format
            raise DetectorError(f"detector.model: cannot load {model_path}: {exc}") from exc
        self._model.eval()
        height, width = input_hw
        # The model's own dtype decides the input dtype: an fp16 engine wants half.
        self._dtype = torch.float16 if getattr(self._model, "fp16", False) else torch.float32
        self._flip = torch.tensor([2, 1, 0], device=self.device)
        with torch.inference_mode():
            self.infer(np.zeros((1, height, width, 3), np.uint8))
        log.info(
            "Ultralytics model %s (%s) on %s, input %sx%s, batch ≤ %s, %s",
            model_path,
            getattr(self._model, "format", "?"),
            self.device,
            height,
            width,
            max_batch,
            "fp16" if self._dtype == torch.float16 else "fp32",
        )

    def infer(self, batch_bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        torch = self._torch
        with torch.inference_mode():
            # uint8 crosses to the GPU (a quarter of float32's bytes); colour order,
            # layout and scaling then run there.
            images = torch.from_numpy(np.ascontiguousarray(batch_bgr)).to(self.device)
            images = images.permute(0, 3, 1, 2).index_select(1, self._flip)
            images = images.to(self._dtype).div_(255.0)
            output = self._model(images)
            if isinstance(output, list | tuple):
                output = output[0]
            result: npt.NDArray[np.float32] = output.float().cpu().numpy()
        return result

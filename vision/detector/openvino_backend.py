"""OpenVINO backend: the CPU default. Colour order, layout and scaling run inside the graph.

Ultralytics' IR exports are often static (batch 1, fixed size: YOLO11's attention
block bakes the shape into a Reshape).  When the model accepts a dynamic batch
we run one request per batch; otherwise the batch is spread over parallel infer
requests (OpenVINO's THROUGHPUT streams), which is how OpenVINO batches on CPU.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import openvino as ov
from openvino.preprocess import ColorFormat, PrePostProcessor

from vision.detector.backend import DetectorError

log = logging.getLogger(__name__)

_DEVICES = {"cpu": "CPU", "auto": "AUTO", "gpu": "GPU"}


def _model_file(model_path: Path) -> Path:
    if model_path.is_dir():
        xmls = sorted(model_path.glob("*.xml"))
        if not xmls:
            raise DetectorError(f"detector.model: no OpenVINO .xml file in {model_path}")
        return xmls[0]
    if model_path.suffix not in (".xml", ".onnx"):
        raise DetectorError(
            f"detector.model: {model_path} is not an OpenVINO IR (.xml) or ONNX file"
        )
    return model_path


def _try_reshape(model: Any, shape: ov.PartialShape) -> bool:
    try:
        model.reshape({model.input(0): shape})
    except RuntimeError:
        return False
    return True


def _with_preprocessing(model: Any) -> Any:
    ppp = PrePostProcessor(model)
    tensor = ppp.input().tensor()
    tensor.set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    tensor.set_color_format(ColorFormat.BGR)
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    steps = ppp.input().preprocess()
    steps.convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB).scale(255.0)
    return ppp.build()


class OpenVinoBackend:
    def __init__(
        self, model_path: Path, device: str, input_hw: tuple[int, int], max_batch: int
    ) -> None:
        ov_device = _DEVICES.get(device)
        if ov_device is None:
            raise DetectorError(
                f"detector.device: {device!r} is not an OpenVINO device; use cpu, gpu or auto "
                "(CUDA devices need another backend)"
            )
        self.input_hw = input_hw
        self.max_batch = max_batch
        core = ov.Core()
        try:
            model = core.read_model(str(_model_file(model_path)))
        except RuntimeError as exc:
            raise DetectorError(f"detector.model: cannot read {model_path}: {exc}") from exc
        height, width = input_hw
        native = model.input(0).partial_shape
        compiled: Any = None
        if max_batch > 1 and _try_reshape(
            model, ov.PartialShape([ov.Dimension(1, max_batch), 3, height, width])
        ):
            compiled = self._compile_checked(core, model, ov_device, "LATENCY", 2)
        self.dynamic_batch = compiled is not None
        if compiled is None:
            model = core.read_model(str(_model_file(model_path)))
            if _try_reshape(model, ov.PartialShape([1, 3, height, width])):
                compiled = self._compile_checked(core, model, ov_device, "LATENCY", 1)
        if compiled is None:
            raise DetectorError(
                f"detector.input_hw: the model {model_path.name} does not accept "
                f"{height}x{width} (its input is {native}); set detector.input_hw to the "
                "model's size or re-export it with dynamic=True"
            )
        self._request = compiled.create_infer_request()
        self._outputs: npt.NDArray[np.float32] | None = None
        self._parallel: list[Any] = []
        if not self.dynamic_batch and max_batch > 1:
            shape = compiled.output(0).get_shape()
            self._outputs = np.empty((max_batch, shape[1], shape[2]), np.float32)
            # A batch of a static model runs as parallel requests on a second
            # compilation with one stream per core: 62-64 img/s at batch 4 against
            # 44 with one two-thread request in turn (interleaved rounds on this
            # 2-core box, docs/performance.md). A lone image keeps the latency
            # compilation (both cores on one image).
            # ``model`` already carries the preprocessing (PrePostProcessor edits it).
            throughput = core.compile_model(model, ov_device, {"PERFORMANCE_HINT": "THROUGHPUT"})
            jobs = int(throughput.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
            self._parallel = [throughput.create_infer_request() for _ in range(max(1, jobs))]
        log.info(
            "OpenVINO model %s on %s, input %sx%s, batch ≤ %s (%s)",
            model_path,
            ov_device,
            height,
            width,
            max_batch,
            "dynamic batch" if self.dynamic_batch else "one image at a time",
        )

    def _compile_checked(
        self, core: ov.Core, model: Any, device: str, hint: str, probe_batch: int
    ) -> Any:
        """Compile, then run one probe inference: some exports only fail at run time."""
        compiled = core.compile_model(
            _with_preprocessing(model), device, {"PERFORMANCE_HINT": hint}
        )
        height, width = self.input_hw
        try:
            compiled.create_infer_request().infer(
                {0: np.zeros((probe_batch, height, width, 3), np.uint8)}
            )
        except RuntimeError:
            return None
        return compiled

    def infer(self, batch_bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        if self._outputs is None or len(batch_bgr) == 1:
            self._request.infer({0: batch_bgr}, share_inputs=True)
            out: npt.NDArray[np.float32] = self._request.get_output_tensor(0).data
            return out
        outputs, requests = self._outputs, self._parallel
        busy: list[int | None] = [None] * len(requests)  # image each request holds

        def collect(slot: int) -> None:
            index = busy[slot]
            if index is not None:
                requests[slot].wait()
                outputs[index] = requests[slot].get_output_tensor(0).data[0]
                busy[slot] = None

        for index in range(len(batch_bgr)):
            slot = index % len(requests)
            collect(slot)
            requests[slot].start_async({0: batch_bgr[index : index + 1]}, share_inputs=True)
            busy[slot] = index
        for slot in range(len(requests)):
            collect(slot)
        return outputs[: len(batch_bgr)]

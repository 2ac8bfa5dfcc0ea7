"""ONNX Runtime backend: CPU through the plain wheel, CUDA through the GPU extra.

Unlike the OpenVINO backend, colour order, layout and scaling are done here in
numpy, into one float32 buffer allocated at start-up; outputs are bound to one
preallocated buffer too (IOBinding), so a call allocates no image-sized array.

Ultralytics' ONNX exports are usually static (batch 1).  A dynamic-batch model
whose images stay independent in a batch (checked at start-up) runs the whole
batch in one call with every core in its intra-op pool.  Any other model on CPU
runs one image per core in parallel, each call on one thread: on 2 cores that
measured 53-58 ms/image for yolov8n int8 at 640 against 64-80 ms/image one
after another on 2 intra-op threads (12-14 against 20-23 ms for yolo11n at
320); the dynamically quantised convolutions scale poorly across threads.
"""

from __future__ import annotations

import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from vision.detector.backend import DetectorError

log = logging.getLogger(__name__)

_CPU = "CPUExecutionProvider"
_CUDA = "CUDAExecutionProvider"
_CUDA_DEVICE = re.compile(r"cuda(?::(\d+))?")
_GPU_EXTRA = "pip install 'commune-vision[gpu]'"


def _model_file(model_path: Path) -> Path:
    if model_path.is_dir():
        found = sorted(model_path.glob("*.onnx"))
        if len(found) != 1:
            raise DetectorError(
                f"detector.model: {model_path} must hold exactly one .onnx file, found {len(found)}"
            )
        return found[0]
    if model_path.suffix != ".onnx":
        raise DetectorError(f"detector.model: {model_path} is not an ONNX (.onnx) file")
    return model_path


def _providers(device: str) -> list[Any]:
    has_cuda = _CUDA in ort.get_available_providers()
    if device == "cpu" or (device == "auto" and not has_cuda):
        return [_CPU]
    match = _CUDA_DEVICE.fullmatch(device)
    if device == "auto" or match:
        if not has_cuda:
            raise DetectorError(
                f"detector.device: {device!r} needs onnxruntime with CUDA, but this one offers "
                f"{', '.join(ort.get_available_providers())}; install the GPU extra "
                f"({_GPU_EXTRA}) or use device cpu"
            )
        device_id = int(match.group(1) or 0) if match else 0
        # CPU stays listed: ORT places the nodes CUDA lacks (ConvInteger) there.
        return [(_CUDA, {"device_id": device_id}), _CPU]
    raise DetectorError(
        f"detector.device: {device!r} is not an ONNX Runtime device; use cpu, cuda, cuda:N or auto"
    )


def _session(model_file: Path, providers: list[Any], threads: int) -> Any:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle pool threads would otherwise spin on the cores the decoders need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(model_file), options, providers=providers)
    except Exception as exc:  # ORT's own exceptions derive straight from Exception
        raise DetectorError(f"detector.model: cannot load {model_file}: {exc}") from exc


def _try_run(session: Any, inputs: npt.NDArray[np.float32]) -> npt.NDArray[np.float32] | None:
    """The first output, or None when the model rejects ``inputs``."""
    quiet = ort.RunOptions()
    quiet.log_severity_level = 4  # a failed probe is an answer, not an error to log
    try:
        out: npt.NDArray[np.float32] = session.run(
            None, {session.get_inputs()[0].name: inputs}, quiet
        )[0]
    except Exception:  # ORT's own exceptions derive straight from Exception
        return None
    return out


def _batches_independently(session: Any, height: int, width: int) -> bool:
    """Whether each image of a batch of two gets the output it gets alone.

    Not so when the batch is baked into a Reshape, nor with dynamic quantisation
    (DynamicQuantizeLinear): it picks one scale for the whole batch, so an image's
    detections would depend on the frames batched with it.
    """
    pair = np.stack(
        [
            np.full((3, height, width), 0.5, np.float32),
            np.random.default_rng(0).random((3, height, width), np.float32),
        ]
    )
    together = _try_run(session, pair)
    alone = _try_run(session, pair[:1])
    return (
        together is not None
        and alone is not None
        and np.allclose(together[0], alone[0], rtol=1e-3, atol=1e-3)
    )


def _to_nchw_rgb(batch_bgr: npt.NDArray[np.uint8], out: npt.NDArray[np.float32]) -> None:
    """(B, H, W, 3) uint8 BGR -> (B, 3, H, W) float32 RGB in 0..1, written into ``out``.

    One ufunc over a strided view: the channel flip and transpose cost no copy.
    """
    np.divide(batch_bgr[..., ::-1].transpose(0, 3, 1, 2), np.float32(255.0), out=out)


class OnnxRuntimeBackend:
    def __init__(
        self, model_path: Path, device: str, input_hw: tuple[int, int], max_batch: int
    ) -> None:
        providers = _providers(device)
        model_file = _model_file(model_path)
        self.input_hw = input_hw
        self.max_batch = max_batch
        height, width = input_hw
        cores = len(os.sched_getaffinity(0))
        session = _session(model_file, providers, cores)
        declared = session.get_inputs()[0].shape
        if any(
            isinstance(dim, int) and dim != want
            for dim, want in zip(declared[2:], input_hw, strict=False)
        ):
            raise DetectorError(
                f"detector.input_hw: the model {model_file.name} does not accept "
                f"{height}x{width} (its input is {declared}); set detector.input_hw to the "
                "model's size or re-export it with dynamic=True"
            )
        if isinstance(declared[0], int) and declared[0] != 1:
            raise DetectorError(
                f"detector.model: {model_file.name} has a fixed batch of {declared[0]}; "
                "re-export it with batch 1 or dynamic=True"
            )
        self.dynamic_batch = (
            not isinstance(declared[0], int)
            and max_batch > 1
            and _batches_independently(session, height, width)
        )
        workers = 1
        if not self.dynamic_batch and max_batch > 1 and providers == [_CPU]:
            workers = min(max_batch, cores)
            session = _session(model_file, providers, max(1, cores // workers))
        probe = _try_run(session, np.zeros((1, 3, height, width), np.float32))
        if probe is None:
            raise DetectorError(
                f"detector.input_hw: the model {model_file.name} fails at {height}x{width} "
                f"(its input is {declared}); set detector.input_hw to the model's size"
            )
        if providers[0] != _CPU and _CUDA not in session.get_providers():
            raise DetectorError(
                f"detector.device: onnxruntime could not start CUDA for {device!r} (see its log "
                f"above); check the CUDA/cuDNN libraries of the GPU extra ({_GPU_EXTRA})"
            )
        self._session = session
        self._input = np.empty((max_batch, 3, height, width), np.float32)
        self._output = np.empty((max_batch, *probe.shape[1:]), np.float32)
        if self.dynamic_batch:
            self._bindings = [self._bind(0, count) for count in range(1, max_batch + 1)]
        else:
            self._bindings = [self._bind(index, index + 1) for index in range(max_batch)]
        self._pool = ThreadPoolExecutor(workers, "ort-infer") if workers > 1 else None
        log.info(
            "ONNX Runtime model %s on %s, input %sx%s, batch ≤ %s (%s)",
            model_file,
            session.get_providers()[0],
            height,
            width,
            max_batch,
            "dynamic batch" if self.dynamic_batch else f"{workers} image(s) at a time",
        )

    def _bind(self, start: int, stop: int) -> Any:
        """An IOBinding of slots [start, stop) of the input and output buffers."""
        binding = self._session.io_binding()
        inputs, outputs = self._input[start:stop], self._output[start:stop]
        binding.bind_input(
            self._session.get_inputs()[0].name,
            "cpu",
            0,
            np.float32,
            list(inputs.shape),
            inputs.ctypes.data,
        )
        binding.bind_output(
            self._session.get_outputs()[0].name,
            "cpu",
            0,
            np.float32,
            list(outputs.shape),
            outputs.ctypes.data,
        )
        return binding

    def infer(self, batch_bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        count = len(batch_bgr)
        _to_nchw_rgb(batch_bgr, self._input[:count])
        run = self._session.run_with_iobinding
        if self.dynamic_batch:
            run(self._bindings[count - 1])
        elif self._pool is None or count == 1:
            for binding in self._bindings[:count]:
                run(binding)
        else:
            # ORT releases the GIL inside a run, so these overlap on separate cores.
            list(self._pool.map(run, self._bindings[:count]))
        return self._output[:count]

"""Detector throughput: the bare model against the detector service fed by 29
cameras, in one run; and how many frames the motion gate saves on each clip.

    python -m benchmarks.detector [--window-s 15] [--cameras 29] [--no-ledger]

- bare: ``backend.infer`` on a ready letterboxed batch, nothing else, per
  backend / input size / batch;
- service: ``DetectorService`` in its own process, as in production, fed by 29
  camera threads writing real frames into shared-memory rings
  (1.3x the bare model's rate, spread over the cameras), so it runs saturated; its
  sustained detections/s divided by the bare figure for the same backend and
  batch is the service efficiency (target ≥ 0.90);
- motion: the motion gate over every shared clip at 5 fps: share of frames it
  keeps from the detector.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import queue
import threading
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

from benchmarks.common import append_ledger_row, assets_dir, machine, write_result
from core.config import CameraConfig
from core.frames import FrameReader, FrameRing
from models.registry import resolve_model
from vision.detector.backend import DetectorError, create_backend
from vision.detector.detector import Detector

BARE_CASES = [  # (label, backend, model, input_hw, max_batch)
    ("openvino yolo11n-int8 640 b1", "openvino", "yolo11n-int8", (640, 640), 1),
    ("openvino yolo11n-int8 640 b4", "openvino", "yolo11n-int8", (640, 640), 4),
    ("openvino yolov8n-int8 640 b1", "openvino", "yolov8n-int8", (640, 640), 1),
    ("onnxruntime yolov8n-int8 640 b1", "onnxruntime", "yolov8n-int8-onnx", (640, 640), 1),
    ("onnxruntime yolo11n-int8 320 b1", "onnxruntime", "yolo11n-int8-onnx-320", (320, 320), 1),
]
SERVICE_CASES = [1, 4]  # max_batch for the service run (OpenVINO yolo11n-int8)
FEED_CLIPS = [
    "pets2009_vtest_480x360.mp4",
    "street_parking_ipcam_day.mp4",
    "motorbikes_etle_cctv.mp4",
    "intersection_cctv_day.mp4",
]


def sample_frames(path: Path, count: int, step: int = 15) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % step == 0:
                out.append(frame.to_ndarray(format="bgr24"))
            if len(out) == count:
                break
    return out


def bare_throughput(
    backend: str,
    model: str,
    hw: tuple[int, int],
    batch: int,
    frames: list[np.ndarray],
    seconds: float,
    device: str = "cpu",
) -> float:
    detector = Detector(
        create_backend(backend, resolve_model(model), device, hw, batch), 0.25, 0.45
    )
    for i in range(batch):
        detector.prepare(i, frames[i % len(frames)])
    detector.infer_prepared(batch)  # warm-up; from here on, the model only
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        detector.infer_prepared(batch)
        n += batch
    return n / (time.perf_counter() - t0)


def _service_child(max_batch: int, refs: Any, detected: Any, stop: Any, ready: Any) -> None:
    from vision.detector.service import DetectorService

    detector = Detector(
        create_backend("openvino", resolve_model("yolo11n-int8"), "cpu", (640, 640), max_batch),
        0.25,
        0.45,
    )

    def sink(_ref: object, _dets: object) -> None:
        with detected.get_lock():
            detected.value += 1

    service = DetectorService(detector, FrameReader(), sink, max_wait_ms=5.0)
    ready.set()

    class Flag:
        def is_set(self) -> bool:
            return bool(stop.value)

    service.run(refs, Flag())


def service_throughput(
    max_batch: int, videos: Path, cameras: int, fps: float, window_s: float
) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    refs = ctx.Queue(maxsize=1024)
    detected = ctx.Value("q", 0)
    stop = ctx.RawValue("b", 0)
    ready = ctx.Event()
    child = ctx.Process(
        target=_service_child, args=(max_batch, refs, detected, stop, ready), name="bench-detector"
    )
    child.start()
    ready.wait(60)
    clips = [sample_frames(videos / FEED_CLIPS[i % len(FEED_CLIPS)], 8) for i in range(cameras)]
    rings = [
        FrameRing(f"cam{i:02d}", c[0].shape[0], c[0].shape[1], slots=16)
        for i, c in enumerate(clips)
    ]
    halt = threading.Event()
    offered = [0]

    def feed(i: int) -> None:
        k = 0
        while not halt.wait(1.0 / fps):
            ref = rings[i].write(clips[i][k % len(clips[i])], time.time())
            k += 1
            offered[0] += 1
            with contextlib.suppress(queue.Full):  # full: dropped, as the ingest does
                refs.put_nowait(ref)

    threads = [threading.Thread(target=feed, args=(i,), daemon=True) for i in range(cameras)]
    for t in threads:
        t.start()
    time.sleep(5.0)  # warm up, fill the queues
    d0, o0, t0 = detected.value, offered[0], time.monotonic()
    time.sleep(window_s)
    d1, o1, t1 = detected.value, offered[0], time.monotonic()
    halt.set()
    stop.value = 1
    child.join(timeout=15)
    for ring in rings:
        ring.close()
    return {"detected_per_s": (d1 - d0) / (t1 - t0), "offered_per_s": (o1 - o0) / (t1 - t0)}


def motion_savings(videos: Path, fps: float = 5.0) -> dict[str, float]:
    from commune_vision.gating import MotionRefreshGate
    from streams.pacing import RateSelector
    from streams.reader import luma

    out: dict[str, float] = {}
    for clip in sorted(videos.glob("*.mp4")):
        gate = MotionRefreshGate(CameraConfig.model_validate({"id": "c", "url": str(clip)}))
        selector = RateSelector(fps)
        with av.open(str(clip)) as container:
            stream = container.streams.video[0]
            time_base = stream.time_base
            assert time_base is not None
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * time_base)
                if selector.take(t):
                    gate.admit(luma(frame), t)
        out[clip.name] = round(gate.skipped / max(1, gate.skipped + gate.admitted), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--window-s", type=float, default=15.0)
    parser.add_argument("--cameras", type=int, default=29)
    parser.add_argument("--no-ledger", action="store_true")
    args = parser.parse_args()
    videos = assets_dir() / "videos"
    frames = sample_frames(videos / "intersection_cctv_day.mp4", 8)

    bare: dict[str, float | str] = {}
    for label, backend, model, hw, batch in BARE_CASES:
        try:
            bare[label] = round(
                bare_throughput(backend, model, hw, batch, frames, args.window_s / 2), 1
            )
        except DetectorError as exc:
            bare[label] = f"unavailable: {exc}"
        print(label, bare[label], flush=True)

    service: dict[str, Any] = {}
    for batch in SERVICE_CASES:
        # This shared VM's speed drifts by tens of percent between minutes, so the
        # bare reference is taken right before and right after the service run,
        # and the faster of the two is used (the ratio can only err low).
        before = bare_throughput("openvino", "yolo11n-int8", (640, 640), batch, frames, 8.0)
        # Offer 1.3x what the bare model can do, spread over the cameras: saturated,
        # without spending the cores on writing frames that can only be dropped.
        fps = 1.3 * before / args.cameras
        run = service_throughput(batch, videos, args.cameras, fps, args.window_s)
        after = bare_throughput("openvino", "yolo11n-int8", (640, 640), batch, frames, 8.0)
        reference = max(before, after)
        run["bare_per_s"] = round(reference, 1)
        run["bare_before_s"] = round(before, 1)
        run["bare_after_s"] = round(after, 1)
        run["efficiency"] = round(run["detected_per_s"] / reference, 3)
        service[f"b{batch}"] = run
        print("service", batch, json.dumps(run), flush=True)

    savings = motion_savings(videos)
    print("motion gate skipped", json.dumps(savings), flush=True)
    result = {
        "benchmark": "detector",
        **machine(),
        "bare_images_per_s": bare,
        "service_29_cameras": service,
        "motion_skipped_share": savings,
    }
    print(f"wrote {write_result('detector', result)}")
    if not args.no_ledger:
        for label, value in bare.items():
            if isinstance(value, float):
                append_ledger_row(
                    "detector bare", label, f"{value:.1f} img/s", "model only, 2 cores"
                )
        for label, run in service.items():
            append_ledger_row(
                "detector service",
                f"{args.cameras} cams × 10 fps offered ({run['offered_per_s']:.0f}/s), {label}",
                f"{run['detected_per_s']:.1f} det/s",
                f"bare {run['bare_per_s']:.1f} img/s → efficiency {run['efficiency']:.2f} "
                "(target ≥ 0.90)",
            )
        append_ledger_row(
            "motion gate",
            "each shared clip at 5 fps",
            "share of frames skipped",
            ", ".join(f"{k.removesuffix('.mp4')} {v:.0%}" for k, v in savings.items()),
        )


if __name__ == "__main__":
    main()

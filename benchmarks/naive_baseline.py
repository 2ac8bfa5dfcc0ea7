"""The naive baseline: what a user writes with Ultralytics alone.

    .venv-bench/bin/python -m benchmarks.naive_baseline --urls URL [URL ...] \
        [--fps 10] [--window-s 20] [--device cpu] [--model DIR]

Runs in ``.venv-bench`` (Ultralytics + torch; never the service's ``.venv``, which
must stay free of torch); ``benchmarks.streams`` starts it as a subprocess and
reads the JSON it prints last.

It follows Ultralytics' own multi-stream tracking recipe: a thread per camera,
each with its own ``YOLO`` model, reading frames with ``cv2.VideoCapture`` from
the RTSP URL and calling ``model.track(frame, persist=True)``.  To be fair, it
does what a careful user would after reading the docs: it tracks only the frames
at the target detect fps (by stream time), raises torch to the machine's cores
after the first predict (Ultralytics sets 1 thread on import), asks for RTSP over
TCP, and loads the same int8 OpenVINO export our service runs.

A camera is served in real time when it tracked ≥ 95 % of the target fps over
the window and did not fall behind the stream (the lag between stream time and
wall time grew by less than 1 s).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# RTSP over TCP, like the service; set before cv2 opens any capture.
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
os.environ.setdefault("YOLO_OFFLINE", "1")  # nothing to download here; skip the checks
os.environ.setdefault("YOLO_VERBOSE", "False")

import cv2
import psutil

DEFAULT_MODEL = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "assets"
    / "models"
    / "yolo11n_int8_openvino_model"
)
REAL_TIME_SHARE = 0.95
MAX_LAG_GROWTH_S = 1.0


@dataclass
class CameraStats:
    """Counters one camera thread updates; the main thread only reads them."""

    url: str
    frames_read: int = 0
    frames_tracked: int = 0
    detections: int = 0
    lag_s: float = 0.0  # wall time minus stream time since the first frame
    ready: bool = False  # the first track() is done (model compiled, tracker made)
    error: str | None = None
    track_ms: list[float] = field(default_factory=list)


def camera_thread(
    stats: CameraStats,
    model_path: str,
    fps: float,
    device: str,
    imgsz: int,
    threads: int,
    stop: threading.Event,
) -> None:
    """One camera, as in Ultralytics' multithreaded tracking example."""
    try:
        # Imported by name: they exist only in .venv-bench, and mypy (run in .venv)
        # then types them as Any, whichever venv it runs in.
        torch = importlib.import_module("torch")
        yolo_class = importlib.import_module("ultralytics").YOLO
    except ImportError as exc:  # pragma: no cover - only in a broken .venv-bench
        stats.error = f"import failed: {exc}; rebuild it with: make bench-venv"
        return
    model = yolo_class(model_path, task="detect")
    cap = cv2.VideoCapture(stats.url, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        stats.error = f"cannot open {stats.url}"
        return
    period_s = 1.0 / fps
    next_stream_s: float | None = None
    origin: tuple[float, float] | None = None  # (wall, stream) at the first frame
    try:
        while not stop.is_set():
            ok, frame = cap.read()
            if not ok:
                stats.error = "stream ended or read failed"
                return
            stats.frames_read += 1
            stream_s = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            now = time.time()
            if origin is None:
                origin = (now, stream_s)
            stats.lag_s = (now - origin[0]) - (stream_s - origin[1])
            if next_stream_s is not None and stream_s < next_stream_s - 1e-3:
                continue  # between detect-rate frames: read (decode) only
            next_stream_s = stream_s + period_s
            t0 = time.perf_counter()
            results = model.track(frame, persist=True, verbose=False, device=device, imgsz=imgsz)
            stats.track_ms.append((time.perf_counter() - t0) * 1000.0)
            stats.frames_tracked += 1
            stats.detections += len(results[0].boxes)
            if not stats.ready:
                # Ultralytics sets torch to 1 thread on import; the docs' advice is
                # to raise it after the first predict (GUIDE §3: halves latency).
                torch.set_num_threads(threads)
                stats.ready = True
    finally:
        cap.release()


def tree_cpu_s() -> float:
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def run(args: argparse.Namespace) -> dict[str, Any]:
    stop = threading.Event()
    cameras = [CameraStats(url) for url in args.urls]
    workers = [
        threading.Thread(
            target=camera_thread,
            args=(s, args.model, args.fps, args.device, args.imgsz, args.threads, stop),
            name=f"naive-cam{i:02d}",
            daemon=True,
        )
        for i, s in enumerate(cameras)
    ]
    for w in workers:
        w.start()
    deadline = time.monotonic() + args.start_timeout_s
    while not all(c.ready or c.error for c in cameras) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(args.warmup_s)
    read0 = [c.frames_read for c in cameras]
    tracked0 = [c.frames_tracked for c in cameras]
    lag0 = [c.lag_s for c in cameras]
    ms0 = [len(c.track_ms) for c in cameras]
    cpu0, t0 = tree_cpu_s(), time.monotonic()
    time.sleep(args.window_s)
    cpu1, wall_s = tree_cpu_s(), time.monotonic() - t0
    rss_mb = psutil.Process().memory_info().rss / 1e6
    stop.set()
    per_camera = []
    for i, c in enumerate(cameras):
        tracked_fps = (c.frames_tracked - tracked0[i]) / wall_s
        lag_growth_s = c.lag_s - lag0[i]
        track_ms = sorted(c.track_ms[ms0[i] :])
        per_camera.append(
            {
                "url": c.url,
                "read_fps": round((c.frames_read - read0[i]) / wall_s, 2),
                "tracked_fps": round(tracked_fps, 2),
                "lag_growth_s": round(lag_growth_s, 2),
                "track_ms_p50": round(track_ms[len(track_ms) // 2], 1) if track_ms else None,
                "detections": c.detections,
                "real_time": c.error is None
                and tracked_fps >= REAL_TIME_SHARE * args.fps
                and lag_growth_s < MAX_LAG_GROWTH_S,
                "error": c.error,
            }
        )
    for w in workers:
        w.join(timeout=10)
    torch = importlib.import_module("torch")
    ultralytics = importlib.import_module("ultralytics")
    return {
        "cameras": len(cameras),
        "target_fps": args.fps,
        "window_s": round(wall_s, 1),
        "cores": round((cpu1 - cpu0) / wall_s, 3),
        "rss_mb": round(rss_mb, 1),
        "per_camera": per_camera,
        "all_real_time": all(bool(c["real_time"]) for c in per_camera),
        "versions": {"ultralytics": ultralytics.__version__, "torch": torch.__version__},
        "device": args.device,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--urls", nargs="+", required=True)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--window-s", type=float, default=20.0)
    parser.add_argument("--warmup-s", type=float, default=5.0)
    parser.add_argument("--start-timeout-s", type=float, default=120.0)
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result), flush=True)
    sys.stdout.flush()
    os._exit(0)  # capture threads may sit in a blocking read; do not wait for them


if __name__ == "__main__":
    main()

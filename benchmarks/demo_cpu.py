"""CPU cores used by the running service, beside the bare model, in one run.

    python -m benchmarks.demo_cpu [--config FILE] [--warmup-s 20] [--measure-s 60]

Starts ``commune-vision run`` (the demo config by default), lets it warm up,
then samples the CPU time of the whole process tree (supervisor, stages,
Valkey) over the measurement window.  Afterwards, with the service stopped, it
measures the bare model's single-image throughput on the same machine, so the
detector load can be read as a fraction of the model's capacity.

Writes ``benchmarks/results/demo_cpu-<time>.json`` and appends a row to the
ledger in ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.common import ROOT, append_ledger_row, machine, write_result


def _tree_cpu_s(root: psutil.Process) -> dict[int, tuple[str, float]]:
    out: dict[int, tuple[str, float]] = {}
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            name = proc.name()
            if name.startswith("python"):
                cmd = " ".join(proc.cmdline())
                name = (
                    "supervisor" if "commune_vision.cli" in cmd or "commune-vision" in cmd else name
                )
            out[proc.pid] = (name, times.user + times.system)
        except psutil.NoSuchProcess:
            continue
    return out


def _health(base: str) -> dict[str, dict[str, Any]]:
    cameras = httpx.get(f"{base}/api/cameras").json()
    return {c["id"]: c["health"] for c in cameras if c.get("health")}


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"service exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("service did not become healthy")


def measure_service(config: Path | None, warmup_s: float, measure_s: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "commune_vision.cli", "run"]
    if config is not None:
        cmd += ["--config", str(config)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = "http://127.0.0.1:8000"
    try:
        _wait_healthy(base, proc)
        time.sleep(warmup_s)
        root = psutil.Process(proc.pid)
        health_before = _health(base)
        before = _tree_cpu_s(root)
        incidents_before = len(
            httpx.get(f"{base}/api/incidents", params={"limit": 500}).json()["items"]
        )
        t0 = time.monotonic()
        time.sleep(measure_s)
        after = _tree_cpu_s(root)
        wall_s = time.monotonic() - t0
        health_after = _health(base)
        incidents_after = len(
            httpx.get(f"{base}/api/incidents", params={"limit": 500}).json()["items"]
        )
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    per_process: dict[str, float] = {}
    for pid, (name, cpu_after) in after.items():
        cpu_before = before.get(pid, (name, 0.0))[1]
        per_process[f"{name}:{pid}"] = round((cpu_after - cpu_before) / wall_s, 3)

    def rate(key: str) -> dict[str, float]:
        return {
            cam: round((h[key] - health_before.get(cam, {}).get(key, 0)) / wall_s, 2)
            for cam, h in health_after.items()
        }

    return {
        "cameras": len(health_after),
        "decoded_fps_per_camera": rate("frames_decoded"),
        "detect_rate_fps_per_camera": rate("frames_delivered"),
        "motion_skipped_fps_per_camera": rate("frames_skipped"),
        "frames_dropped": {cam: h["frames_dropped"] for cam, h in health_after.items()},
        "wall_s": round(wall_s, 1),
        "cores_total": round(sum(per_process.values()), 3),
        "cores_per_process": per_process,
        "incidents_in_window": max(0, incidents_after - incidents_before),
    }


def measure_bare_model(seconds: float = 10.0) -> dict[str, float]:
    import cv2
    import numpy as np

    from models.registry import resolve_model
    from vision.detector.backend import create_backend
    from vision.detector.detector import Detector

    detector = Detector(
        create_backend("openvino", resolve_model("yolo11n-int8"), "cpu", (640, 640), 1), 0.25, 0.45
    )
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)
    image = np.asarray(cv2.GaussianBlur(noise, (9, 9), 3), np.uint8)
    detector.detect([image])
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        detector.detect([image])
        n += 1
    elapsed = time.perf_counter() - t0
    return {"images_per_s": round(n / elapsed, 1), "ms_per_image": round(1000 * elapsed / n, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--warmup-s", type=float, default=20.0)
    parser.add_argument("--measure-s", type=float, default=60.0)
    parser.add_argument("--no-ledger", action="store_true")
    args = parser.parse_args()

    service = measure_service(args.config, args.warmup_s, args.measure_s)
    bare = measure_bare_model()
    detect_rate = sum(service["detect_rate_fps_per_camera"].values())
    result = {
        "benchmark": "demo_cpu",
        **machine(),
        "backend": "openvino yolo11n-int8 640x640 cpu",
        "service": service,
        "bare_model": bare,
        "detector_load_vs_bare_capacity": round(detect_rate / bare["images_per_s"], 3),
    }
    out = write_result("demo_cpu", result)
    print(json.dumps(result, indent=2))
    print(f"wrote {out}")
    if not args.no_ledger:
        load = result["detector_load_vs_bare_capacity"]
        append_ledger_row(
            "demo_cpu",
            f"{service['cameras']} cams, {detect_rate:.1f} frames/s to the detector after the "
            "motion gate",
            f"{service['cores_total']:.2f} cores",
            f"bare model {bare['ms_per_image']} ms/img ({bare['images_per_s']} img/s); "
            f"detector load {load:.2f} of bare capacity",
        )


if __name__ == "__main__":
    main()

"""The running service as a benchmark sees it: start and stop ``commune-vision run``,
sample its per-camera counters (``/api/cameras``, ``/metrics``) and its process
tree, and listen to its WebSocket alerts like an operator's console."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from benchmarks.common import ROOT, percentile, process_tree

ADMIN_PASSWORD = "streams benchmark admin"


def admin_headers(base: str) -> dict[str, str]:
    """Sign in as the admin the service created from COMMUNE_VISION_ADMIN_PASSWORD."""
    body = {"username": "admin", "password": ADMIN_PASSWORD}
    login = httpx.post(f"{base}/api/auth/login", json=body, timeout=30)
    login.raise_for_status()
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def wait_ready(base: str, headers: dict[str, str], cameras: int, timeout_s: float) -> float:
    """Wait until every camera is online and the detector has run frames of each
    (on a busy machine the model can load half a minute after ``/healthz`` is up).
    Returns the seconds waited; on timeout the measurement goes on and shows it."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        s = sample(base, headers, os.getpid(), None)
        online = sum(h.get("state") == "online" for h in s.health.values())
        detected = s.detector.get("cv_detector_frames_detected_by_camera_total", {})
        if online >= cameras and sum(v > 0 for v in detected.values()) >= cameras:
            break
        time.sleep(1.0)
    return time.monotonic() - t0


class AlertListener(threading.Thread):
    """A WebSocket alert client: keeps (receive time, message) of every alert."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(name="alert-listener", daemon=True)
        self.url, self.headers = url, headers
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.halt = threading.Event()
        self.connected = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        try:
            with connect(self.url, open_timeout=30, additional_headers=self.headers) as ws:
                self.connected.set()
                while not self.halt.is_set():
                    try:
                        raw = ws.recv(timeout=0.5)
                    except TimeoutError:
                        continue
                    self.received.append((time.time(), json.loads(raw)))
        except (OSError, ConnectionClosed) as exc:  # reported, and no latency without alerts
            self.error = f"alert WebSocket: {exc!r}"
            self.connected.set()


@dataclass
class Sample:
    wall: float
    health: dict[str, dict[str, Any]]
    detector: dict[str, dict[str, float]]  # metric → {camera or "": value}
    tree: dict[int, tuple[str, float, int]]
    machine_busy_s: float  # CPU seconds every process on the machine used so far


def sample(base: str, headers: dict[str, str], pid: int, server_pid: int | None) -> Sample:
    cameras = httpx.get(f"{base}/api/cameras", headers=headers, timeout=30).json()
    health = {c["id"]: c["health"] for c in cameras if c.get("health")}
    detector: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(httpx.get(f"{base}/metrics", timeout=30).text):
        if family.name.startswith("cv_detector_"):
            for s in family.samples:
                detector.setdefault(s.name, {})[s.labels.get("camera", "")] = float(s.value)
    tree = process_tree(pid)
    if server_pid is not None:  # the RTSP server shares the cores: account for it apart
        tree |= {
            -p: ("rtsp-server", cpu, rss) for p, (_, cpu, rss) in process_tree(server_pid).items()
        }
    return Sample(time.monotonic(), health, detector, tree, _machine_busy_s())


def _machine_busy_s() -> float:

    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0))


def start_service(config: Path, port: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "COMMUNE_VISION_ADMIN_PASSWORD": ADMIN_PASSWORD}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "commune_vision.cli", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"service exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"service not healthy after 180 s:\n{log.read_text()[-3000:]}")


def stop_service(proc: subprocess.Popen[bytes]) -> None:
    tree = process_tree(proc.pid)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        proc.wait(timeout=10)


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares rate of a counter sampled at several times (per second).

    The stages publish their counters about once a second, so a value read at t
    is from somewhere in the second before: two end points alone would be off by
    up to a second's worth of frames (10 % of a 10 s window); a fit over a
    sample every ~2 s averages that out.
    """
    if len(points) < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var if var > 0 else 0.0


def per_camera_rates(samples: list[Sample]) -> dict[str, dict[str, float]]:
    """Per camera, rates over the samples: decoded, delivered to the detector,
    held back by the motion gate, detected, dropped (ingest + detector queues)."""
    detected_key = "cv_detector_frames_detected_by_camera_total"
    qdrop_key = "cv_detector_frames_dropped_by_camera_total"

    def rate(cam: str, value: Callable[[Sample], float]) -> float:
        return slope([(s.wall, value(s)) for s in samples if cam in s.health])

    def health(key: str, cam: str) -> Callable[[Sample], float]:
        return lambda s: float(s.health[cam].get(key, 0))

    def detector(key: str, cam: str) -> Callable[[Sample], float]:
        return lambda s: s.detector.get(key, {}).get(cam, 0.0)

    out: dict[str, dict[str, float]] = {}
    for cam in sorted(samples[-1].health):
        detected = rate(cam, detector(detected_key, cam))
        skipped = rate(cam, health("frames_skipped", cam))
        dropped = rate(cam, health("frames_dropped", cam)) + rate(cam, detector(qdrop_key, cam))
        out[cam] = {
            "decoded_fps": round(rate(cam, health("frames_decoded", cam)), 2),
            "delivered_fps": round(rate(cam, health("frames_delivered", cam)), 2),
            "motion_skipped_fps": round(skipped, 2),
            "detected_fps": round(detected, 2),
            "analysed_fps": round(detected + skipped, 2),
            "dropped_fps": round(dropped, 2),
            "reconnects": float(samples[-1].health[cam].get("reconnects", 0))
            - float(samples[0].health.get(cam, {}).get("reconnects", 0)),
        }
    return out


def summarise(values: list[float]) -> dict[str, float | None]:
    return {
        "min": round(min(values), 2) if values else None,
        "p50": round_or_none(percentile(values, 50)),
        "mean": round(sum(values) / len(values), 2) if values else None,
    }


def round_or_none(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def mono_ts(wall_ts: float) -> float:
    """A wall-clock time on the monotonic clock the samples use."""
    return wall_ts - time.time() + time.monotonic()


def tree_pss_mb(pid: int) -> float | None:
    """Proportional set size of the tree: shared memory (frame rings, libraries)
    counted once, unlike the sum of RSS."""

    total = 0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            total += proc.memory_full_info().pss
    except (psutil.NoSuchProcess, psutil.AccessDenied, AttributeError):
        return None
    return round(total / 1e6, 1)

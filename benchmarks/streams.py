"""Frames per second per stream through the whole service at N cameras, against the
ceilings and a naive Ultralytics baseline, in one run.

    python -m benchmarks.streams [--cameras 1 4 8 16 29 36 48] [--detect-fps 10]
        [--window-s 60] [--baseline-cameras 1 2 3 4 6 8] [--device cpu] [--no-ledger]

For each N, a loopback GStreamer RTSP server plays the shared 360p/480p clips
(looped, real time) as N cameras, and ``commune-vision run`` serves them with a
generated config: detect fps target, motion gate, batched detector, ByteTrack,
an intrusion zone and a counting line with incidents over each road, recording
on, SQLite, embedded Valkey.  After a warm-up, over the window:

- per stream, from the service's own API: decoded fps, detect-rate frames
  delivered, motion-skipped, detected (``/metrics``), dropped (ingest queue full +
  detector per-camera queue); *analysed fps* = detected + motion-skipped, the
  frames at the detect rate that the pipeline dealt with;
- CPU cores of the whole process tree (psutil, per stage) and its memory;
- frame→incident (``created_ts − start_ts``, the frame the rule fired on) and
  frame→WebSocket alert (client receive time − ``start_ts``) p50/p95, from the
  alerts a real WebSocket client receives.

A stream keeps up with a target F when its analysed fps ≥ 0.95·F.  Ceilings in
the same run and on the same streams: ``ffmpeg -f null`` decode
(``benchmarks.decode``), the bare model for the same backend, input and batch
(taken before and after the sweep, the faster counts, as ``benchmarks.detector``
does), and the packet-remux recording cost (``benchmarks.recording``).  The naive
baseline (``benchmarks/naive_baseline.py``, run by ``.venv-bench``) reads the same
RTSP streams.  Beyond 29 cameras the sweep stops after the first N whose slowest
stream falls under the 5 fps floor; the baseline stops at its first miss.

Writes ``benchmarks/results/streams-<time>.{json,csv,png}`` and appends ledger rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import (
    RESULTS,
    ROOT,
    assets_dir,
    machine,
    percentile,
    tree_cores,
)
from benchmarks.service_probe import (
    AlertListener,
    admin_headers,
    mono_ts,
    per_camera_rates,
    round_or_none,
    sample,
    start_service,
    stop_service,
    summarise,
    tree_pss_mb,
    wait_ready,
)
from benchmarks.streams_report import BENCH_PYTHON, finish
from tests.rtsp.harness import Mount, RtspServer, free_port

REAL_TIME_SHARE = 0.95  # analysed fps ≥ 95 % of the target counts as keeping up
FLOOR_FPS = 5.0
READY_TIMEOUT_S = 120.0  # every camera online and detected once, before the warm-up
SAMPLE_EVERY_S = 2.0  # counters are read this often over the window (rates are fitted)
ROAD = ["person", "bicycle", "motorbike", "car", "bus", "truck"]


@dataclass(frozen=True)
class Clip:
    """A shared clip as a camera, with a zone and a line over where traffic moves, so
    the rules fire often (normalised coordinates, checked on the footage)."""

    file: str
    zone: list[list[float]]
    line: list[list[float]]


CLIPS = (  # 360p/480p, 10–30 fps sources: detect-size substreams, as GUIDE §3 advises
    Clip(
        "pets2009_vtest_480x360.mp4",
        [[0.0, 0.36], [0.6, 0.34], [1.0, 0.40], [1.0, 0.85], [0.7, 0.68], [0.0, 0.50]],
        [[0.5, 0.2], [0.5, 0.95]],
    ),
    Clip(
        "street_parking_ipcam_day.mp4",
        [[0.0, 0.592], [1.0, 0.467], [1.0, 0.722], [0.734, 0.931], [0.0, 0.833]],
        [[0.5, 0.3], [0.5, 0.95]],
    ),
    Clip(
        "motorbikes_etle_cctv.mp4",
        [[0.0, 0.45], [1.0, 0.45], [1.0, 1.0], [0.0, 1.0]],
        [[0.0, 0.6], [1.0, 0.6]],
    ),
    Clip(
        "intersection_cctv_day.mp4",
        [[0.04, 0.32], [0.36, 0.28], [0.74, 0.66], [0.58, 0.86], [0.04, 0.46]],
        [[0.516, 0.15], [0.969, 0.302]],
    ),
)


def camera_yaml(i: int, url: str, clip: Clip, fps: float) -> str:
    return f"""
  - id: cam{i:02d}
    url: {url}
    detect: {{fps: {fps}}}
    zones: [{{name: road, points: {clip.zone}}}]
    lines: [{{name: count, points: {clip.line}}}]
    rules:
      - {{type: intrusion, name: road-intrusion, zone: road, classes: {ROAD}}}
      - {{type: line_crossing, name: count-line, line: count, incident: true}}
"""


def write_config(tmp: Path, urls: list[str], args: argparse.Namespace, port: int) -> Path:
    cameras = "".join(
        camera_yaml(i, url, CLIPS[i % len(CLIPS)], args.detect_fps) for i, url in enumerate(urls)
    )
    hw = f"[{args.input_hw[0]}, {args.input_hw[1]}]"
    # The detector settings under A/B; unset ones keep the config's defaults.
    extra = "" if args.max_wait_ms is None else f", max_wait_ms: {args.max_wait_ms}"
    if args.per_camera_queue is not None:
        extra += f", per_camera_queue: {args.per_camera_queue}"
    if args.max_frame_age_ms is not None:
        extra += f", max_frame_age_ms: {args.max_frame_age_ms}"
    extra += f", mosaic: {args.mosaic}, tile_grid: [{args.tile_grid[0]}, {args.tile_grid[1]}]"
    config = tmp / "streams.yaml"
    config.write_text(
        f"""
cameras:
{cameras}
detector: {{backend: {args.backend}, model: {args.model}, device: "{args.device}",
            input_hw: {hw}, max_batch: {args.max_batch}{extra}}}
storage: {{data_dir: {tmp / "data"}}}
server: {{port: {port}}}
"""
    )
    return config


def measure_service(
    urls: list[str], args: argparse.Namespace, server_pid: int | None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as tmp:
        port = free_port()
        config = write_config(Path(tmp), urls, args, port)
        log = Path(tmp) / "service.log"
        proc, base = start_service(config, port, log)
        try:
            headers = admin_headers(base)
            listener = AlertListener(f"ws://127.0.0.1:{port}/api/alerts/ws", headers)
            listener.start()
            listener.connected.wait(30)
            ready_s = wait_ready(base, headers, len(urls), READY_TIMEOUT_S)
            time.sleep(args.warmup_s)
            samples = [sample(base, headers, proc.pid, server_pid)]
            end = samples[0].wall + args.window_s
            while (left := end - time.monotonic()) > 0:
                time.sleep(min(SAMPLE_EVERY_S, left))
                samples.append(sample(base, headers, proc.pid, server_pid))
            s0, s1 = samples[0], samples[-1]
            pss_mb = tree_pss_mb(proc.pid)
            listener.halt.set()
        finally:
            stop_service(proc)
        if "Traceback" in log.read_text(errors="replace"):
            print(f"warning: tracebacks in the service log:\n{log.read_text()[-2000:]}")
    wall_s = s1.wall - s0.wall
    cameras = per_camera_rates(samples)
    alerts = [
        (recv, m["incident"])
        for recv, m in listener.received
        if m.get("kind") == "opened" and s0.wall <= mono_ts(recv) <= s1.wall
    ]
    to_incident = [i["created_ts"] - i["start_ts"] for _, i in alerts]
    to_alert = [recv - i["start_ts"] for recv, i in alerts]
    cores = tree_cores(s0.tree, s1.tree, wall_s)
    server_cores = cores.pop("rtsp-server", 0.0)
    service_tree = {p: v for p, v in s1.tree.items() if p >= 0}
    analysed = [c["analysed_fps"] for c in cameras.values()]

    def detector_delta(name: str) -> float:
        return s1.detector.get(name, {}).get("", 0.0) - s0.detector.get(name, {}).get("", 0.0)

    waited = detector_delta("cv_detector_queue_wait_seconds_count")
    queue_wait_ms = 1000 * detector_delta("cv_detector_queue_wait_seconds_sum") / max(1.0, waited)
    detected_total = sum(c["detected_fps"] for c in cameras.values())
    return {
        "cameras": len(urls),
        "online": len(cameras),
        "ready_after_s": round(ready_s, 1),
        "wall_s": round(wall_s, 1),
        "per_camera": cameras,
        "decoded_fps": summarise([c["decoded_fps"] for c in cameras.values()]),
        "detected_fps": summarise([c["detected_fps"] for c in cameras.values()]),
        "analysed_fps": summarise(analysed),
        "dropped_fps_total": round(sum(c["dropped_fps"] for c in cameras.values()), 2),
        "detected_per_s_total": round(detected_total, 1),
        # Capture to batch start, mean: how far behind real time the detector runs.
        "detector_queue_wait_ms_mean": round(queue_wait_ms, 1),
        "detector_stale_fps": round(detector_delta("cv_detector_frames_stale_total") / wall_s, 2),
        # Frames detected packed into mosaics (detector.mosaic), per second in all.
        "mosaic_fps": round(detector_delta("cv_detector_frames_mosaic_total") / wall_s, 2),
        "cores_total": round(sum(cores.values()), 3),
        "cores_per_process": cores,
        "rss_mb_total": round(sum(rss for _, _, rss in service_tree.values()) / 1e6, 1),
        "rtsp_server_cores": server_cores,
        # Cores the rest of the machine used meanwhile (other jobs, this harness):
        # well above zero means the figures were measured under contention.
        "other_cores": round(
            (s1.machine_busy_s - s0.machine_busy_s) / wall_s - sum(cores.values()) - server_cores,
            3,
        ),
        "pss_mb_total": pss_mb,
        "incidents": len(alerts),
        "alert_client_error": listener.error,
        "frame_to_incident_s": {
            "p50": round_or_none(percentile(to_incident, 50)),
            "p95": round_or_none(percentile(to_incident, 95)),
        },
        "frame_to_ws_alert_s": {
            "p50": round_or_none(percentile(to_alert, 50)),
            "p95": round_or_none(percentile(to_alert, 95)),
        },
        "keeps_target": bool(analysed)
        and len(cameras) == len(urls)
        and min(analysed) >= REAL_TIME_SHARE * args.detect_fps,
        "keeps_floor": bool(analysed)
        and len(cameras) == len(urls)
        and min(analysed) >= REAL_TIME_SHARE * min(FLOOR_FPS, args.detect_fps),
    }


def measure_baseline(urls: list[str], args: argparse.Namespace) -> dict[str, Any]:
    if not BENCH_PYTHON.exists():
        raise SystemExit(f"{BENCH_PYTHON} not found: build it with `make bench-venv`")
    model = args.baseline_model or str(assets_dir() / "models" / "yolo11n_int8_openvino_model")
    cmd = [str(BENCH_PYTHON), "-m", "benchmarks.naive_baseline", "--urls", *urls]
    cmd += ["--fps", str(args.detect_fps), "--window-s", str(args.window_s)]
    cmd += ["--device", args.device, "--model", model, "--imgsz", str(args.input_hw[1])]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    lines = run.stdout.strip().splitlines()
    if run.returncode != 0 or not lines:
        raise SystemExit(f"naive baseline failed ({run.returncode}):\n{run.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    tracked = [float(c["tracked_fps"]) for c in result["per_camera"]]
    result["tracked_fps"] = summarise(tracked)
    result["keeps_target"] = bool(result["all_real_time"])
    result["keeps_floor"] = all(
        c["error"] is None and c["lag_growth_s"] < 1.0 for c in result["per_camera"]
    ) and min(tracked) >= REAL_TIME_SHARE * min(FLOOR_FPS, args.detect_fps)
    return result


def bare_model(args: argparse.Namespace, seconds: float) -> float:
    """The model alone for the service's backend, input and batch (images/s)."""
    from benchmarks.detector import bare_throughput, sample_frames

    frames = sample_frames(assets_dir() / "videos" / "intersection_cctv_day.mp4", 8)
    hw = (args.input_hw[0], args.input_hw[1])
    return bare_throughput(
        args.backend, args.model, hw, args.max_batch, frames, seconds, args.device
    )


def run_levels(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The service and its decode ceiling at each N (and recording at one N)."""
    from benchmarks.decode import measure_ffmpeg
    from benchmarks.recording import measure as measure_recording

    videos = assets_dir() / "videos"
    below = [n for n in args.cameras if n <= 29]
    record_at = 29 if 29 in args.cameras else max(below or args.cameras)
    levels: list[dict[str, Any]] = []
    for n in sorted(args.cameras):
        if n > 29 and levels and not levels[-1]["service"]["keeps_floor"]:
            print(f"stopping the sweep at {levels[-1]['cameras']} cameras: under the floor")
            break
        mounts = [Mount(f"/cam{i:02d}", videos / CLIPS[i % len(CLIPS)].file) for i in range(n)]
        level: dict[str, Any] = {"cameras": n}
        with RtspServer().start(mounts) as server:
            urls = [server.url(m.path) for m in mounts]
            level["service"] = measure_service(urls, args, server.pid)
            if args.ceiling_window_s > 0:
                level["ffmpeg_decode"] = measure_ffmpeg(urls, args.ceiling_window_s)
            if args.recording_window_s > 0 and n == record_at:
                with tempfile.TemporaryDirectory(prefix="bench-rec-") as tmp:
                    demux = measure_recording(urls, args.recording_window_s, None)
                    record = measure_recording(urls, args.recording_window_s, tmp)
                level["recording"] = {
                    "demux_only_cores": round(demux["cores"], 3),
                    "demux_and_record_cores": round(record["cores"], 3),
                    "recording_cores": round(record["cores"] - demux["cores"], 3),
                }
        svc = level["service"]
        print(
            f"{n:3d} cams: analysed fps/stream min {svc['analysed_fps']['min']} "
            f"mean {svc['analysed_fps']['mean']}, detected {svc['detected_per_s_total']}/s "
            f"({svc['mosaic_fps']}/s in mosaics), "
            f"{svc['cores_total']} cores, WS alert p95 {svc['frame_to_ws_alert_s']['p95']} s",
            flush=True,
        )
        levels.append(level)
    return levels


def run_baseline(args: argparse.Namespace) -> list[dict[str, Any]]:
    videos = assets_dir() / "videos"
    rows: list[dict[str, Any]] = []
    for n in sorted(args.baseline_cameras):
        mounts = [Mount(f"/cam{i:02d}", videos / CLIPS[i % len(CLIPS)].file) for i in range(n)]
        with RtspServer().start(mounts) as server:
            result = measure_baseline([server.url(m.path) for m in mounts], args)
        print(
            f"naive baseline {n} cams: tracked fps/stream min {result['tracked_fps']['min']}, "
            f"{result['cores']} cores, real time: {result['keeps_target']}",
            flush=True,
        )
        rows.append(result)
        if not result["keeps_floor"]:
            break  # it cannot hold the floor here; more cameras only get worse
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 4, 8, 16, 29, 36, 48])
    parser.add_argument("--detect-fps", type=float, default=10.0)
    parser.add_argument("--window-s", type=float, default=60.0)
    parser.add_argument("--warmup-s", type=float, default=15.0)
    parser.add_argument("--ceiling-window-s", type=float, default=20.0, help="ffmpeg; 0: skip")
    parser.add_argument(
        "--recording-window-s",
        type=float,
        default=20.0,
        help="recording cost at 29 cameras (or the largest N ≤ 29); 0: skip and "
        "quote the newest benchmarks.recording result instead",
    )
    parser.add_argument("--bare-s", type=float, default=10.0)
    parser.add_argument("--baseline-cameras", type=int, nargs="*", default=[1, 2, 3, 4, 6, 8])
    parser.add_argument("--baseline-model", default=None, help="default: the int8 OpenVINO export")
    parser.add_argument("--backend", default="openvino", help="detector.backend of the config")
    parser.add_argument("--model", default="yolo11n-int8")
    parser.add_argument("--device", default="cpu", help="e.g. cuda:0; to the detector and baseline")
    parser.add_argument("--input-hw", type=int, nargs=2, default=[640, 640])
    parser.add_argument("--max-batch", type=int, default=4)
    parser.add_argument(
        "--max-wait-ms", type=float, default=None, help="detector.max_wait_ms; default: config's"
    )
    parser.add_argument(
        "--per-camera-queue", type=int, default=None, help="detector.per_camera_queue"
    )
    parser.add_argument(
        "--max-frame-age-ms", type=float, default=None, help="detector.max_frame_age_ms"
    )
    parser.add_argument(
        "--tile-grid",
        type=int,
        nargs=2,
        default=[3, 2],
        metavar=("ROWS", "COLS"),
        help="detector.tile_grid: camera frames per mosaic input",
    )
    parser.add_argument(
        "--mosaic", choices=["off", "auto", "always"], default="auto", help="detector.mosaic"
    )
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--no-ledger", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    assets_dir()
    started, load_start = time.monotonic(), os.getloadavg()
    bare_before = bare_model(args, args.bare_s)
    print(f"bare model: {bare_before:.1f} img/s", flush=True)
    levels = run_levels(args)
    bare_after = bare_model(args, args.bare_s)
    print(f"bare model after the sweep: {bare_after:.1f} img/s", flush=True)
    baseline = run_baseline(args) if args.baseline_cameras else []
    result: dict[str, Any] = {
        "benchmark": "streams",
        **machine(),
        "config": {
            k: getattr(args, k)
            for k in ("detect_fps", "window_s", "warmup_s", "backend", "model", "device")
        }
        | {
            "input_hw": args.input_hw,
            "max_batch": args.max_batch,
            "mosaic": args.mosaic,
            "tile_grid": args.tile_grid,
        },
        # This VM's speed drifts by tens of percent between minutes: the bare
        # reference is taken before and after the sweep, the faster one counts.
        "bare_model": {
            "before_img_s": round(bare_before, 1),
            "after_img_s": round(bare_after, 1),
            "img_s": round(max(bare_before, bare_after), 1),
            # A mosaic input carries rows × cols camera frames: the model's ceiling
            # in frames/s is img_s × this.
            "frames_per_input": 1
            if args.mosaic == "off"
            else args.tile_grid[0] * args.tile_grid[1],
        },
        "levels": levels,
        "baseline": baseline,
        # Other work on the machine takes cores from the service: a 1-minute load
        # average well above what the benchmark itself runs means contended figures.
        "load_average": {"start": load_start, "end": os.getloadavg()},
    }
    finish(result, args, RESULTS)
    print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()

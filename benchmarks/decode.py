"""Decode cost of N real-time RTSP cameras: our ingest against ``ffmpeg -f null``.

    python -m benchmarks.decode [--cameras 1 8 29] [--window-s 20] [--no-ledger]

For each N, a loopback GStreamer RTSP server plays the shared 360p clips in
real time; then, in turn, (a) our ingest (``streams.CameraManager``, a thread
per camera, decoding every frame and converting/resizing the ones at the
detect fps into shared memory) and (b) N ``ffmpeg -rtsp_transport tcp -i URL
-f null -`` processes read the same streams for the same window.  CPU time of
the reading processes only (not the server) is divided by the frames each
decoded.  Target: ours ≤ 1.2× ffmpeg's CPU per decoded frame.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

import psutil

from benchmarks.common import append_ledger_row, assets_dir, machine, write_result
from tests.rtsp.harness import Mount, RtspServer

CLIPS = [  # 10 fps and 30 fps sources, 640x360 and 480x360
    ("pets2009_vtest_480x360.mp4", 5.0),
    ("street_parking_ipcam_day.mp4", 5.0),
    ("motorbikes_etle_cctv.mp4", 10.0),
]
WARMUP_S = 4.0


def _cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def run_worker(urls: list[str], fps: list[float], window_s: float) -> None:
    """Child mode: our ingest for the window; prints frames decoded as JSON."""
    from core.config import CameraConfig
    from streams.manager import CameraManager

    manager = CameraManager(lambda _ref: True)
    manager.apply(
        CameraConfig.model_validate({"id": f"cam{i:02d}", "url": u, "detect": {"fps": f}})
        for i, (u, f) in enumerate(zip(urls, fps, strict=True))
    )
    time.sleep(WARMUP_S)
    before = sum(int(h["frames_decoded"]) for h in manager.health().values())  # type: ignore[call-overload]
    print("START", flush=True)
    time.sleep(window_s)
    after = sum(int(h["frames_decoded"]) for h in manager.health().values())  # type: ignore[call-overload]
    print(json.dumps({"frames": after - before}), flush=True)
    manager.stop_all()


def measure_ours(urls: list[str], fps: list[float], window_s: float) -> dict[str, float]:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.decode",
        "--worker",
        "--window-s",
        str(window_s),
        "--urls",
        *urls,
        "--fps",
        *map(str, fps),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    handle = psutil.Process(proc.pid)
    line = proc.stdout.readline()
    if line.strip() != "START":
        raise SystemExit(f"worker failed to start: {line!r}")
    cpu0, t0 = _cpu_s(handle), time.monotonic()
    result = json.loads(proc.stdout.readline())
    cpu1, t1 = _cpu_s(handle), time.monotonic()
    proc.wait(timeout=60)
    return {
        "cores": (cpu1 - cpu0) / (t1 - t0),
        "frames": float(result["frames"]),
        "wall_s": t1 - t0,
    }


def measure_ffmpeg(urls: list[str], window_s: float) -> dict[str, float]:
    procs = [
        subprocess.Popen(
            [
                "ffmpeg",
                "-nostdin",
                "-v",
                "error",
                "-rtsp_transport",
                "tcp",
                "-i",
                url,
                "-an",
                "-f",
                "null",
                "-",
                "-progress",
                "pipe:1",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for url in urls
    ]
    time.sleep(WARMUP_S)
    handles = [psutil.Process(p.pid) for p in procs]
    frames0 = [_last_frame(p) for p in procs]
    cpu0, t0 = sum(_cpu_s(h) for h in handles), time.monotonic()
    time.sleep(window_s)
    cpu1, t1 = sum(_cpu_s(h) for h in handles), time.monotonic()
    frames1 = [_last_frame(p) for p in procs]
    for p in procs:
        p.terminate()
        p.wait(timeout=10)
    frames = sum(b - a for a, b in zip(frames0, frames1, strict=True))
    return {"cores": (cpu1 - cpu0) / (t1 - t0), "frames": float(frames), "wall_s": t1 - t0}


def _last_frame(proc: subprocess.Popen[str]) -> int:
    """Read ffmpeg's -progress output up to its newest block; return the frame count."""
    import os
    import select

    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    frame = getattr(proc, "_bench_frame", 0)
    buf = getattr(proc, "_bench_buf", "")
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 65536).decode(errors="replace")
        if not chunk:
            break
        buf += chunk
    lines = buf.split("\n")
    for line in lines[:-1]:
        if line.startswith("frame="):
            frame = int(line.split("=", 1)[1])
    proc._bench_frame = frame  # type: ignore[attr-defined]
    proc._bench_buf = lines[-1]  # type: ignore[attr-defined]
    return int(frame)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 8, 29])
    parser.add_argument("--window-s", type=float, default=20.0)
    parser.add_argument("--no-ledger", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--urls", nargs="*", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--fps", type=float, nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.urls, args.fps, args.window_s)
        return

    videos = assets_dir() / "videos"
    rows: list[dict[str, Any]] = []
    for n in args.cameras:
        specs = [
            (f"/cam{i:02d}", videos / CLIPS[i % len(CLIPS)][0], CLIPS[i % len(CLIPS)][1])
            for i in range(n)
        ]
        with RtspServer().start([Mount(path, clip) for path, clip, _ in specs]) as server:
            urls = [server.url(path) for path, _, _ in specs]
            fps = [f for _, _, f in specs]
            ours = measure_ours(urls, fps, args.window_s)
            ffmpeg = measure_ffmpeg(urls, args.window_s)
        ratio = (ours["cores"] / ours["frames"]) / (ffmpeg["cores"] / ffmpeg["frames"])
        row = {"cameras": n, "ours": ours, "ffmpeg": ffmpeg, "cpu_per_frame_ratio": round(ratio, 3)}
        rows.append(row)
        print(json.dumps(row), flush=True)

    result = {"benchmark": "decode", **machine(), "window_s": args.window_s, "rows": rows}
    out = write_result("decode", result)
    print(f"wrote {out}")
    if not args.no_ledger:
        for row in rows:
            o, f = row["ours"], row["ffmpeg"]
            append_ledger_row(
                "decode",
                f"{row['cameras']} RTSP cams (360p, 10/30 fps) in real time",
                f"ours {o['cores']:.3f} cores, {o['frames'] / o['wall_s']:.0f} frames/s decoded",
                f"ffmpeg -f null {f['cores']:.3f} cores, {f['frames'] / f['wall_s']:.0f} frames/s; "
                f"CPU/frame ours÷ffmpeg = {row['cpu_per_frame_ratio']:.2f} (target ≤ 1.2)",
            )


if __name__ == "__main__":
    main()

"""CPU cost of recording N real-time RTSP cameras by packet remux.

    python -m benchmarks.recording [--cameras 29] [--window-s 30] [--no-ledger]

A loopback GStreamer RTSP server plays the shared clips (360p to 1080p, round
robin) in real time. In one run, two worker processes read the same N streams
for the same window with the packet-only reader (``streams.record_reader``):
(a) demux only, and (b) demux plus ``SegmentRecorder`` writing 10 s MP4
segments to a temp folder. Recording costs (b) − (a); target ≤ 0.1 core for 29.
CPU time is of the worker process only, not the server.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import append_ledger_row, assets_dir, machine, write_result
from tests.rtsp.harness import Mount, RtspServer

WARMUP_S = 4.0


def run_worker(urls: list[str], window_s: float, record_dir: str | None) -> None:
    """Child mode: read the streams for the window; print packets and segments as JSON."""
    from core.config import CameraConfig
    from streams.record_reader import RecordStreamReader
    from streams.recorder import SegmentRecorder

    stop = threading.Event()
    segments: list[Any] = []
    readers = []
    for i, url in enumerate(urls):
        camera = CameraConfig.model_validate({"id": f"cam{i:02d}", "url": url})
        sinks = (
            [SegmentRecorder(camera.id, Path(record_dir), 10.0, segments.append)]
            if record_dir
            else []
        )
        readers.append(RecordStreamReader(camera, url, sinks, stop))
    threads = [threading.Thread(target=r.run, daemon=True) for r in readers]
    for t in threads:
        t.start()
    time.sleep(WARMUP_S)
    packets0 = sum(r.packets for r in readers)
    print("START", flush=True)
    time.sleep(window_s)
    packets = sum(r.packets for r in readers) - packets0
    print(json.dumps({"packets": packets, "segments": len(segments)}), flush=True)
    stop.set()
    for t in threads:
        t.join(timeout=15)


def measure(urls: list[str], window_s: float, record_dir: str | None) -> dict[str, float]:
    cmd = [sys.executable, "-m", "benchmarks.recording", "--worker", "--window-s", str(window_s)]
    if record_dir:
        cmd += ["--record-dir", record_dir]
    proc = subprocess.Popen([*cmd, "--urls", *urls], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    handle = psutil.Process(proc.pid)
    if proc.stdout.readline().strip() != "START":
        raise SystemExit("worker failed to start")
    times = handle.cpu_times()
    cpu0, t0 = times.user + times.system, time.monotonic()
    result = json.loads(proc.stdout.readline())
    times = handle.cpu_times()
    cpu1, t1 = times.user + times.system, time.monotonic()
    proc.wait(timeout=60)
    return {
        "cores": (cpu1 - cpu0) / (t1 - t0),
        "packets_per_s": result["packets"] / (t1 - t0),
        "segments": result["segments"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cameras", type=int, default=29)
    parser.add_argument("--window-s", type=float, default=30.0)
    parser.add_argument("--no-ledger", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--record-dir", help=argparse.SUPPRESS)
    parser.add_argument("--urls", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.urls, args.window_s, args.record_dir)
        return

    clips = sorted((assets_dir() / "videos").glob("*.mp4"))
    mounts = [Mount(f"/cam{i:02d}", clips[i % len(clips)]) for i in range(args.cameras)]
    with RtspServer().start(mounts) as server, tempfile.TemporaryDirectory() as tmp:
        urls = [server.url(m.path) for m in mounts]
        demux = measure(urls, args.window_s, None)
        record = measure(urls, args.window_s, tmp)
        written = sum(p.stat().st_size for p in Path(tmp).rglob("*.mp4"))
    cost = record["cores"] - demux["cores"]
    result = {
        **machine(),
        "cameras": args.cameras,
        "window_s": args.window_s,
        "demux_only": demux,
        "demux_and_record": record,
        "recording_cores": cost,
        "written_mb_per_s": written / 1e6 / args.window_s,
    }
    print(json.dumps(result, indent=2))
    print(f"results: {write_result('recording', result)}")
    if not args.no_ledger:
        append_ledger_row(
            "recording",
            f"{args.cameras} RTSP cams (360p–1080p mix), remux to 10 s MP4 segments",
            f"{cost:.3f} cores for recording ({record['cores']:.3f} with demux)",
            f"demux only {demux['cores']:.3f} cores, {demux['packets_per_s']:.0f} packets/s; "
            f"{record['segments']} segments; target ≤ 0.1 core",
        )


if __name__ == "__main__":
    main()

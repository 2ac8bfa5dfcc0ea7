"""Accelerated soak: the whole service for a long while, its memory, fds and threads.

    python -m benchmarks.soak [--cameras 29] [--minutes 60] [--sample-s 10]
    make soak SOAK_CAMERAS=29 SOAK_MIN=60

A loopback GStreamer RTSP server (``tests/rtsp/harness.py``) plays the shared clips,
looped in real time, as N cameras; ``commune-vision run`` serves them with a
generated config: detect 5 fps, motion gate on, one intrusion rule per camera over
a busy zone, continuous recording with a ten-minute retention (disk stays bounded
and the deletion path runs all along), SQLite and the embedded Valkey in a temp dir.
Like an operator's console, the harness keeps a WebSocket alert client open and
polls ``/api/cameras`` at every sample.

Every ``--sample-s`` it records, per process of the service tree (by OS name:
supervisor, cv-ingest, cv-detector, …, valkey-server): RSS, USS (smaps_rollup,
cheap), RssAnon and RssShmem (``/proc/PID/status``), open fds and threads; and the
work done: incidents and segments in the database, recordings on disk, cameras
online, alerts received.  A stage whose pid changes was restarted: that is
recorded and is a finding by itself.  ``benchmarks.soak_report`` judges growth
after the warm-up against the targets (total RSS growth ≤ 5 %, fds and threads
flat, no restarts) and draws the plot; ``--redo FILE.json`` does it again.

Writes ``.cache/soak/soak-<time>.{json,csv,png}`` (+ ``-work.csv``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import psutil
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from benchmarks.common import ROOT, assets_dir, machine, tree_processes
from benchmarks.soak_report import KEYS, mean, report
from tests.rtsp.harness import Mount, RtspServer, free_port

OUT_DIR = ROOT / ".cache" / "soak"
ADMIN_PASSWORD = "soak benchmark admin"
ROAD = ["person", "bicycle", "motorbike", "car", "bus", "truck"]
# Clip and a zone over where things move (normalised, checked on the footage): the
# rule fires every few seconds per camera (walkers, traffic, cars parking), an
# accelerated load on incidents, snapshots, the writer and the alert stream.
CLIPS = (
    (
        "pets2009_vtest_480x360.mp4",
        [[0.0, 0.36], [0.6, 0.34], [1.0, 0.40], [1.0, 0.85], [0.7, 0.68], [0.0, 0.50]],
    ),
    ("street_parking_ipcam_day.mp4", [[0.0, 0.592], [1.0, 0.467], [1.0, 0.722], [0.0, 0.833]]),
    ("motorbikes_etle_cctv.mp4", [[0.0, 0.45], [1.0, 0.45], [1.0, 1.0], [0.0, 1.0]]),
    ("intersection_cctv_day.mp4", [[0.04, 0.32], [0.36, 0.28], [0.74, 0.66], [0.04, 0.46]]),
)


def write_config(tmp: Path, urls: list[str], port: int, retain_min: float) -> Path:
    cams = []
    for i, url in enumerate(urls):
        _clip, zone = CLIPS[i % len(CLIPS)]
        cams.append(
            f"""
  - id: cam{i:02d}
    url: {url}
    detect: {{fps: 5}}
    motion: {{enabled: true}}
    zones: [{{name: road, points: {zone}}}]
    rules:
      - {{type: intrusion, name: road-intrusion, zone: road, classes: {ROAD},
          min_inside_s: 2, cooldown_s: 30}}
    record: {{enabled: true, segment_s: 10, retain_days: {retain_min / 1440:.6f}}}
"""
        )
    config = tmp / "soak.yaml"
    config.write_text(
        f"""
cameras:
{"".join(cams)}
detector: {{backend: openvino, model: yolo11n-int8, max_batch: 4}}
storage: {{data_dir: {tmp / "data"}, retention: {{interval_s: 30}}}}
server: {{port: {port}}}
"""
    )
    return config


def label(proc: psutil.Process, root_pid: int) -> str:
    """The stage a process is: its OS name (stages set it), the supervisor by pid."""
    if proc.pid == root_pid:
        return "supervisor"
    name = str(proc.name())
    if name.startswith("python"):  # multiprocessing's resource tracker, or unknown
        cmd = " ".join(proc.cmdline())
        return "resource-tracker" if "resource_tracker" in cmd else name
    return name


def _rss_split(pid: int) -> tuple[int, int]:
    """RssAnon and RssShmem bytes (/proc/PID/status).  The frame rings are shared
    memory that a stage touches page by page (cv-analytics only when it takes a
    snapshot), so its RSS climbs to a plateau; a heap leak shows in RssAnon."""
    kb = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("RssAnon:", "RssShmem:")):
            kb[line.split(":")[0]] = int(line.split()[1])
    return 1024 * kb.get("RssAnon", 0), 1024 * kb.get("RssShmem", 0)


def sample_tree(root_pid: int) -> dict[str, dict[str, Any]]:
    """Per stage: pids, RSS/USS MB, fds, threads (summed if a name has several pids)."""
    out: dict[str, dict[str, Any]] = {}
    for proc in tree_processes(root_pid):
        try:
            with proc.oneshot():
                name = label(proc, root_pid)
                mem = proc.memory_full_info()  # USS from smaps_rollup: a few ms
                row = (mem.rss, mem.uss, *_rss_split(proc.pid), proc.num_fds(), proc.num_threads())
        except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
            continue
        agg = out.setdefault(name, {"pids": [], **{k: 0.0 if "_mb" in k else 0 for k in KEYS}})
        agg["pids"].append(proc.pid)
        for key, value in zip(KEYS, row, strict=True):
            agg[key] += value / 1e6 if "_mb" in key else value
    return out


def db_counts(db: Path) -> dict[str, float]:
    """Incidents and segments so far, read-only.  Retention deletes the oldest
    segments, never the newest, so the highest id counts every segment written."""
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        inc = con.execute("SELECT COUNT(*) FROM incidents").fetchone()[0]
        seg = con.execute(
            "SELECT COUNT(*), COALESCE(MAX(id), 0), COALESCE(SUM(bytes), 0) FROM segments"
        ).fetchone()
    except sqlite3.Error:  # locked for a moment, or not migrated yet
        return {}
    finally:
        con.close()
    return {
        "incidents": inc,
        "segments_written": seg[1],
        "segments_kept": seg[0],
        "recordings_mb": round(seg[2] / 1e6, 1),
    }


class Api:
    """An admin session; signs in again when the token expires."""

    def __init__(self, base: str) -> None:
        self.base, self.token, self.expires = base, "", 0.0

    def headers(self) -> dict[str, str]:
        if time.time() > self.expires - 60:
            body = {"username": "admin", "password": ADMIN_PASSWORD}
            resp = httpx.post(f"{self.base}/api/auth/login", json=body, timeout=30)
            resp.raise_for_status()
            self.token, self.expires = resp.json()["access_token"], resp.json()["expires_ts"]
        return {"Authorization": f"Bearer {self.token}"}

    def cameras(self) -> dict[str, Any]:
        resp = httpx.get(f"{self.base}/api/cameras", headers=self.headers(), timeout=30)
        health = [c["health"] for c in resp.json() if c.get("health")]
        return {
            "online": sum(h.get("state") == "online" for h in health),
            "reconnects": sum(h.get("reconnects", 0) for h in health),
            "dropped": sum(h.get("frames_dropped", 0) for h in health),
        }


class AlertClient(threading.Thread):
    """An operator's console: one WebSocket alert client for the whole run, which
    reconnects (new token) when the server closes it, as the console does."""

    def __init__(self, api: Api, port: int) -> None:
        super().__init__(name="soak-alerts", daemon=True)
        self.api, self.url = api, f"ws://127.0.0.1:{port}/api/alerts/ws"
        self.alerts = self.connects = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                with connect(
                    self.url, open_timeout=30, additional_headers=self.api.headers()
                ) as ws:
                    self.connects += 1
                    while not self.halt.is_set():
                        with contextlib.suppress(TimeoutError):
                            ws.recv(timeout=0.5)
                            self.alerts += 1
            except (OSError, ConnectionClosed, InvalidStatus, httpx.HTTPError):
                self.halt.wait(2.0)


def start_service(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "COMMUNE_VISION_ADMIN_PASSWORD": ADMIN_PASSWORD}
    with log.open("wb") as out:
        # Own session: a Ctrl-C reaches only the harness, which stops the service in order.
        return subprocess.Popen(
            [sys.executable, "-m", "commune_vision.cli", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def wait_healthy(proc: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"service not healthy after 180 s:\n{log.read_text()[-3000:]}")


def stop_service(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT (the supervisor stops its stages in order), then SIGKILL whatever of the
    tree is left: only pids of the process this harness started."""
    with contextlib.suppress(psutil.NoSuchProcess):
        tree = [proc.pid, *(p.pid for p in psutil.Process(proc.pid).children(recursive=True))]
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=60)
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=10)


def take_sample(
    root_pid: int,
    db: Path,
    api: Api,
    alerts: AlertClient,
    t: float,
    last_pids: dict[str, list[int]],
    restarts: list[dict[str, Any]],
) -> dict[str, Any]:
    """One sample; a stage whose pids changed (or vanished) since the last one goes
    to ``restarts``."""
    procs = sample_tree(root_pid)
    work: dict[str, Any] = dict(db_counts(db))
    try:
        work |= api.cameras()
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        work["api_error"] = repr(exc)[:200]
    work["alerts"], work["ws_connects"] = alerts.alerts, alerts.connects
    for name in set(last_pids) | set(procs):
        old, new = last_pids.get(name), procs[name]["pids"] if name in procs else []
        if old is not None and sorted(old) != sorted(new):
            restarts.append({"t_s": round(t, 1), "process": name, "old": old, "new": new})
        if new:
            last_pids[name] = new
        else:
            last_pids.pop(name, None)
    return {"t_s": round(t, 1), "load1": os.getloadavg()[0], "procs": procs, "work": work}


def soak(args: argparse.Namespace) -> dict[str, Any]:
    videos = assets_dir() / "videos"
    mounts = [Mount(f"/cam{i:02d}", videos / CLIPS[i % len(CLIPS)][0]) for i in range(args.cameras)]
    duration_s = 60 * args.minutes
    samples: list[dict[str, Any]] = []
    restarts: list[dict[str, Any]] = []
    interrupted = threading.Event()
    service_exit: int | None = None
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, RtspServer().start(mounts) as cams:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        config = write_config(Path(tmp), [cams.url(m.path) for m in mounts], port, args.retain_min)
        log = Path(tmp) / "service.log"
        proc = start_service(config, log)
        api = Api(base)
        alerts = AlertClient(api, port)
        try:
            wait_healthy(proc, base, log)
            alerts.start()
            db = Path(tmp) / "data" / "commune-vision.db"
            t0 = time.monotonic()
            last_pids: dict[str, list[int]] = {}
            while (t := time.monotonic() - t0) <= duration_s and not interrupted.is_set():
                if proc.poll() is not None:  # a finding: keep what was sampled
                    service_exit = proc.returncode
                    break
                samples.append(take_sample(proc.pid, db, api, alerts, t, last_pids, restarts))
                if args.verbose:
                    total = sum(p["rss_mb"] for p in samples[-1]["procs"].values())
                    print(f"{t / 60:6.1f} min  RSS {total:7.1f} MB  {samples[-1]['work']}")
                interrupted.wait(max(0.0, args.sample_s - (time.monotonic() - t0 - t)))
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop, and report what was sampled
            interrupted.set()
        finally:
            alerts.halt.set()
            stop_service(proc)
        text = log.read_text(errors="replace")
        tracebacks = text.count("Traceback")
        stage_exits = text.count("restarting (restart")
        log_tail = text[-4000:] if tracebacks else ""
        if args.keep_log:
            (OUT_DIR / "service.log").write_text(text)
    return {
        "benchmark": "soak",
        **machine(),
        "cameras": args.cameras,
        "minutes": args.minutes,
        "sample_s": args.sample_s,
        "load_avg_mean": round(mean([s["load1"] for s in samples]), 2),
        "load_avg_max": round(max((s["load1"] for s in samples), default=0.0), 2),
        "restarts": restarts,
        "interrupted": interrupted.is_set(),
        "service_exit_code": service_exit,
        "service_log_tracebacks": tracebacks,
        "service_log_stage_exits": stage_exits,
        "service_log_tail": log_tail,
        "samples": samples,
    }


def _raise_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the cleanup
    raise KeyboardInterrupt  # unwinds through the finally blocks: service and RTSP stop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--cameras", type=int, default=29)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--retain-min", type=float, default=10.0, help="recording retention")
    parser.add_argument("--keep-log", action="store_true", help="copy the service log out")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every sample")
    parser.add_argument(
        "--redo", type=Path, help="analyse a saved JSON result again (and redraw its PNG)"
    )
    args = parser.parse_args(argv)
    if args.redo is not None:
        report(json.loads(args.redo.read_text()), args.redo.with_suffix(""))
        return
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    report(soak(args), OUT_DIR / f"soak-{time.strftime('%Y%m%d-%H%M%S')}")


if __name__ == "__main__":
    main()

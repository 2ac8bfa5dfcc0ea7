"""The recordings disk fills up: recording stops cleanly, detection and incidents go
on, retention frees what it may (never evidence), recording comes back with space.

The recordings folder is a small tmpfs (the test needs root or CAP_SYS_ADMIN to
mount it); the database and snapshots stay on another filesystem, as the docs
advise. A filler file, topped up while the fault lasts, stands for another
program eating the disk.
"""

from __future__ import annotations

import contextlib
import errno
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import pytest

from core.types import SegmentClosed
from streams import recorder as recorder_module
from streams.recorder import PART_SUFFIX, SegmentRecorder, probe_duration_s
from tests.reliability.service import Service, anyone_camera_yaml, start_service, wait_for
from tests.rtsp.harness import Mount, RtspServer

DISK_MB = 8
MIN_FREE_PERCENT = 20  # the disk guard's threshold: 1.6 MB of the 8 MB
PART_LIFE_BOUND_S = 5.0  # a 2 s segment, a 1 s GOP, sampling and load
FAULT_S = 11.0  # longer than the recorder's retry pause (10 s): it fails again
RECOVERY_BOUND_S = 20.0  # retry pause (10 s) + key frame + one 2 s segment, and some


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(
            f"this test mounts a small tmpfs at {path} to fill it, which needs root or "
            f"CAP_SYS_ADMIN (run as root, or the container with --cap-add SYS_ADMIN): "
            f"{mounted.stderr.strip()}",
            pytrace=False,
        )
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=False)  # still busy: detach


def fill(path: Path) -> int:
    """Append to ``path`` until the disk is full; bytes written."""
    written = 0
    with open(path, "ab", buffering=0) as fh:  # unbuffered: close has nothing to flush
        for chunk in (1 << 20, 1 << 16, 1 << 12, 1):
            try:
                while True:
                    written += fh.write(b"\0" * chunk) or 0
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    return written


@pytest.fixture(scope="module")
def gop_1s_clip(tmp_path_factory: pytest.TempPathFactory, video) -> Path:  # type: ignore[no-untyped-def]
    """The pedestrians clip with a key frame every second (the original has one every
    8 s): 1 s segments, so the fault and the recovery show within seconds."""
    out = tmp_path_factory.mktemp("clips") / "pets_gop1.mp4"
    args = ["-y", "-i", str(video("pets2009_vtest_480x360.mp4")), "-t", "40", "-an"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "30", "-g", "10"]
    args += ["-keyint_min", "10", "-sc_threshold", "0", "-bf", "0", str(out)]
    subprocess.run(["ffmpeg", "-v", "error", *args], check=True)
    return out


# -- the recorder alone --------------------------------------------------------------


def test_recorder_on_a_full_disk_leaves_no_part_file_and_resumes(
    tmp_path: Path, gop_1s_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No pause before retrying: the retry is what is tested, not its timer.
    monkeypatch.setattr(recorder_module, "RETRY_AFTER_ERROR_S", 0.0)
    with tmpfs(tmp_path / "disk", "1m") as disk:
        filler = disk / "filler"
        filler.write_bytes(b"\0" * 700_000)
        closed: list[SegmentClosed] = []
        errors: list[str] = []
        resumed: list[str] = []
        rec = SegmentRecorder(
            "cam", disk, 1.0, closed.append, None, lambda _c, m: errors.append(m), resumed.append
        )
        closed_at_error = 0
        with av.open(str(gop_1s_clip)) as container:
            stream = container.streams.video[0]
            time_base = stream.time_base or Fraction(1, 90000)
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                packet.decode()
                rec.on_packet("cam", packet, 1.8e9 + float(packet.pts * time_base))
                if errors and filler.exists():
                    assert not list(disk.rglob(f"*{PART_SUFFIX}")), "the broken .part is gone"
                    assert rec.health.recording == "error"
                    closed_at_error = len(closed)
                    filler.unlink()  # space is back
                if closed_at_error and len(closed) >= closed_at_error + 5:
                    break  # before the segments fill the little disk themselves
        rec.end_session("cam")
        assert len(errors) == 1 and "No space left" in errors[0], errors
        assert closed_at_error >= 2 and len(closed) >= closed_at_error + 5, closed
        assert resumed == ["cam"] and rec.health.record_error is None
        assert not list(disk.rglob(f"*{PART_SUFFIX}"))
        # Every announced file plays; all but the one end_session cut short are whole.
        durations = [probe_duration_s(disk / segment.path) for segment in closed]
        assert all(d > 0 for d in durations) and min(durations[:-1]) >= 0.9, durations


# -- the running service -------------------------------------------------------------


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "recordings", f"{DISK_MB}m") as disk:
        yield disk


@pytest.fixture()
def service(tmp_path: Path, small_disk: Path, gop_1s_clip: Path) -> Iterator[Service]:
    camera = RtspServer().start([Mount("/campus", gop_1s_clip)])
    cameras = anyone_camera_yaml(camera.url("/campus"), "{segment_s: 2}")
    retention = f"{{interval_s: 1, min_free_gb: 0, min_free_percent: {MIN_FREE_PERCENT}}}"
    storage = f"recordings_dir: {small_disk}, retention: {retention}"
    try:
        svc = start_service(tmp_path, cameras, storage_yaml=storage)
        yield svc
        svc.kill()
    finally:
        camera.stop()


def _rows(svc: Service, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{svc.data_dir / 'commune-vision.db'}?mode=ro", uri=True) as db:
        return list(db.execute(sql))


def _events(svc: Service, kind: str) -> list[dict[str, Any]]:
    r = svc.get("/api/events", kind=kind, limit=100)
    assert r.status_code == 200, r.text
    return [e["data"] for e in r.json()]


def _lockable(svc: Service) -> str | None:
    """A closed incident with recorded footage before and after its clip window."""
    oldest, newest = _rows(svc, "SELECT min(start_ts), max(end_ts) FROM segments")[0]
    if oldest is None:
        return None
    found = _rows(
        svc,
        "SELECT id FROM incidents WHERE clip_end_ts IS NOT NULL "
        f"AND clip_start_ts > {oldest + 2} AND clip_end_ts < {newest - 2} LIMIT 1",
    )
    return str(found[0][0]) if found else None


def _segments_in(svc: Service, since_ts: float, until_ts: float) -> set[str]:
    return {
        str(p)
        for (p,) in _rows(
            svc, f"SELECT path FROM segments WHERE start_ts < {until_ts} AND end_ts > {since_ts}"
        )
    }


def _lock_evidence(svc: Service) -> tuple[set[str], set[str]]:
    """Evidence-lock a closed incident amid footage; its segments and the older ones."""
    wait_for(lambda: _lockable(svc), 90, "a closed incident amid recorded footage")
    locked_id = _lockable(svc)
    incident = svc.get(f"/api/incidents/{locked_id}").json()
    r = httpx.put(f"{svc.base}/api/incidents/{locked_id}/evidence-lock", headers=svc.headers)
    assert r.status_code == 200 and r.json()["evidence_locked"], r.text
    locked = _segments_in(svc, incident["clip_start_ts"], incident["clip_end_ts"])
    older = _segments_in(svc, 0, incident["clip_start_ts"]) - locked
    assert locked and older, (locked, older)
    return locked, older


def _keep_full(disk: Path, filler: Path, seconds: float) -> dict[str, float]:
    """Fill the disk and keep it full for ``seconds``, as another program eating all
    that retention frees would; returns how long each .part file was seen."""
    until = time.time() + seconds
    part_seen: dict[str, list[float]] = {}  # .part file -> [first, last] seen
    while time.time() < until:
        fill(filler)
        for part in disk.rglob(f"*{PART_SUFFIX}"):
            part_seen.setdefault(part.name, [time.time()] * 2)[1] = time.time()
        time.sleep(0.5)
    return {name: last - first for name, (first, last) in part_seen.items()}


@pytest.mark.e2e
def test_full_recordings_disk_keeps_detection_and_evidence_then_recovers(
    service: Service, small_disk: Path
) -> None:
    ingest_pid = service.stage_pids()["cv-ingest"]
    locked, older = _lock_evidence(service)

    # -- the disk fills, and stays full while the fault lasts -----------------------
    filler = small_disk / "other-program.bin"
    fill_ts = time.time()
    part_lived_s = _keep_full(small_disk, filler, FAULT_S)
    health = service.health("campus")
    assert health is not None, "camera health"
    assert health["recording"] == "error" and "No space left" in health["record_error"], health
    assert health["state"] == "online" and health["decoded_fps"] > 0, "detection goes on"
    # The muxer reports a failed write when the segment closes, and the broken .part
    # goes then: none lives longer than a segment and a key frame interval.
    assert all(s < PART_LIFE_BOUND_S for s in part_lived_s.values()), part_lived_s
    errors = _events(service, "recording_error")
    assert any("No space left" in e["error"] for e in errors), errors
    pressure = _events(service, "disk_pressure")
    assert pressure and pressure[0]["exhausted"], pressure  # only evidence was left
    # The oldest unlocked footage went; the evidence stayed, file and row.
    remaining = _segments_in(service, 0, time.time() + 60)
    assert not older & remaining, "older unlocked segments are deleted first"
    assert locked <= remaining and all((small_disk / p).is_file() for p in locked)
    deleted = service.metric(
        "cv_recording_deleted_segments_total", camera="campus", reason="disk_pressure"
    )
    assert deleted is not None and deleted >= len(older), deleted
    assert service.metric("cv_disk_pressure") == 1.0
    during = _rows(service, f"SELECT count(*) FROM incidents WHERE created_ts > {fill_ts}")[0][0]
    assert during >= 1, "incidents are stored while the recordings disk is full"

    # -- space comes back ----------------------------------------------------------
    recorded_before = health["segments_recorded"]
    freed_ts = time.time()
    filler.unlink()
    cleared_s = wait_for(lambda: _events(service, "disk_pressure_cleared"), 30, "pressure over")

    def recorded() -> int:
        return int(service.health("campus")["segments_recorded"])  # type: ignore[index]

    resumed_s = wait_for(lambda: recorded() > recorded_before, 60, "a new segment")
    wait_for(lambda: recorded() >= recorded_before + 2, 30, "a second new segment")
    assert service.health("campus")["recording"] == "recording"  # type: ignore[index]
    assert _events(service, "recording_resumed"), "recording_resumed event"
    new = _rows(service, f"SELECT count(*) FROM segments WHERE start_ts > {freed_ts}")[0][0]
    assert new >= 1, "new segments are indexed"

    assert service.stage_pids()["cv-ingest"] == ingest_pid, "ingest never crashed"
    assert service.stop(signal.SIGINT) == 0, service.log()
    log = service.log(tail=10**7)
    assert "restarting (restart" not in log and "Traceback" not in log, log[-4000:]
    assert not list(small_disk.rglob(f"*{PART_SUFFIX}")), "no unfinished file after a stop"
    on_disk = {p.relative_to(small_disk).as_posix() for p in small_disk.rglob("*.mp4")}
    indexed = {str(p) for (p,) in _rows(service, "SELECT path FROM segments")}
    assert on_disk == indexed, on_disk ^ indexed
    # Incidents went on through the fault and none lost its close.
    unclosed = _rows(service, "SELECT count(*) FROM incidents WHERE end_ts IS NULL")[0][0]
    assert unclosed == 0, unclosed
    print(
        f"\ndisk full: {len(older)} older segments deleted, {len(locked)} locked kept, "
        f"{during} incidents stored during the fault ({unclosed} left unclosed); pressure "
        f"cleared {cleared_s:.1f} s and the first new segment {resumed_s:.1f} s after space "
        "returned"
    )
    assert resumed_s < RECOVERY_BOUND_S, resumed_s

"""Pipeline processes killed with SIGKILL while the service runs on real RTSP cameras:
the supervisor restarts the stage, the cameras and incidents resume, and every
incident reported before the crash is still there, with the same id.

One service for the module; each test kills one stage and waits until an operator
would see the service working again (health online, frames detected, new incidents).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.service import Service, start_service, wait_for
from tests.rtsp.harness import Mount, RtspServer, cut_clip

pytestmark = pytest.mark.e2e

RESTART_BOUND_S = 60.0  # supervisor backoff plus a model load on a busy 2-core box
RESUME_BOUND_S = 120.0  # until a new incident: people must walk into the zone again


@dataclass
class Rig:
    svc: Service
    server: RtspServer


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, assets: Path) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("process_faults")
    videos = assets / "videos"
    # 30 s of a campus walkway: people enter the zone all the time, so every
    # fault is followed by new intrusion incidents soon.
    campus = cut_clip(videos / "pets2009_vtest_480x360.mp4", tmp / "campus.mp4", 30)
    street = cut_clip(videos / "street_parking_ipcam_day.mp4", tmp / "street.mp4", 8)
    server = RtspServer().start([Mount("/campus", campus), Mount("/street", street)])
    cameras = f"""
  - id: campus
    url: {server.url("/campus")}
    detect: {{fps: 5}}
    zones:
      - name: walkway
        points: [[0.0, 0.36], [0.6, 0.34], [1.0, 0.40], [1.0, 0.85], [0.7, 0.68], [0.0, 0.50]]
    rules:
      - {{type: intrusion, name: walkway-people, zone: walkway, classes: [person]}}
  - id: street
    url: {server.url("/street")}
    detect: {{fps: 2}}
"""
    svc = None
    try:
        svc = start_service(tmp, cameras)
        wait_for(lambda: svc.state("campus") == "online", 60, "campus online")
        wait_for(lambda: svc.incidents(camera_id="campus"), RESUME_BOUND_S, "a first incident")
        yield Rig(svc, server)
        assert svc.proc.poll() is None, f"the supervisor itself died:\n{svc.log()}"
    finally:
        if svc is not None:
            svc.kill()
        server.stop()


def _kill_stage(svc: Service, stage: str) -> tuple[int, float]:
    """SIGKILL the stage; its old pid and the wall time of the kill."""
    pid = svc.stage_pids()[stage]
    os.kill(pid, signal.SIGKILL)
    return pid, time.time()


def _restarted(svc: Service, stage: str, old_pid: int) -> float:
    return wait_for(
        lambda: svc.stage_pids().get(stage, old_pid) != old_pid,
        RESTART_BOUND_S,
        f"the supervisor to restart {stage}",
    )


def _new_incident(svc: Service, what: str) -> float:
    """Seconds until an incident appears that was not there when called (right after
    the restarted stage was seen): the writer stores within milliseconds, so it comes
    from frames processed after the fault."""
    known = {i["id"] for i in svc.incidents(camera_id="campus")}
    return wait_for(
        lambda: {i["id"] for i in svc.incidents(camera_id="campus")} - known,
        RESUME_BOUND_S,
        f"a new incident after {what}",
    )


def _frames_detected(svc: Service) -> float:
    return svc.metric("cv_detector_frames_detected_by_camera_total", camera="campus") or 0.0


def _assert_nothing_lost(svc: Service, before: dict[str, dict[str, Any]]) -> None:
    after = {i["id"]: i for i in svc.incidents()}
    missing = sorted(set(before) - set(after))
    assert not missing, f"incidents lost: {missing}"
    for incident_id, old in before.items():
        new = after[incident_id]
        assert (new["camera_id"], new["type"], new["start_ts"]) == (
            old["camera_id"],
            old["type"],
            old["start_ts"],
        )


def _snapshot(svc: Service) -> dict[str, dict[str, Any]]:
    return {i["id"]: i for i in svc.incidents()}


def test_killed_analytics_is_restarted_and_loses_no_incident(rig: Rig) -> None:
    svc = rig.svc
    before = _snapshot(svc)
    assert before
    old_pid, _killed_ts = _kill_stage(svc, "cv-analytics")
    restarted_s = _restarted(svc, "cv-analytics", old_pid)
    resumed_s = restarted_s + _new_incident(svc, "analytics was killed")
    _assert_nothing_lost(svc, before)
    # What the dead process had open cannot stay "ongoing" forever.
    left_open = [i for i in before.values() if i["end_ts"] is None]
    wait_for(
        lambda: all(svc.get(f"/api/incidents/{i['id']}").json()["end_ts"] for i in left_open),
        30,
        "incidents left open by the killed analytics to be closed",
    )
    print(
        f"\nFAULT kill -9 cv-analytics: restarted after {restarted_s:.1f} s, new incidents "
        f"{resumed_s:.1f} s after the kill, {len(before)} incidents kept"
    )


def test_killed_ingest_is_restarted_cameras_resume_no_incident_lost(rig: Rig) -> None:
    svc = rig.svc
    before = _snapshot(svc)
    old_pid, killed_ts = _kill_stage(svc, "cv-ingest")
    restarted_s = _restarted(svc, "cv-ingest", old_pid)

    def online_again() -> bool:
        health = svc.health("campus")
        return (
            health is not None
            and health["state"] == "online"
            and health["updated_ts"] > killed_ts
            and health["decoded_fps"] > 0
        )

    online_s = wait_for(online_again, RESTART_BOUND_S, "campus online from the new ingest")
    wait_for(lambda: svc.state("street") == "online", 30, "street online from the new ingest")
    resumed_s = restarted_s + online_s + _new_incident(svc, "ingest was killed")
    _assert_nothing_lost(svc, before)
    print(
        f"\nFAULT kill -9 cv-ingest: restarted after {restarted_s:.1f} s, cameras online "
        f"{restarted_s + online_s:.1f} s and new incidents {resumed_s:.1f} s after the kill"
    )


def test_killed_detector_is_restarted_and_no_stage_is_wedged(rig: Rig) -> None:
    svc = rig.svc
    before = _snapshot(svc)
    counted = _frames_detected(svc)
    assert counted > 0
    old_pid, _killed_ts = _kill_stage(svc, "cv-detector")
    restarted_s = _restarted(svc, "cv-detector", old_pid)
    # The new detector's counters start from zero: a count below the old one is the
    # new process's, and above zero means frames reach it through the same queue.
    detecting_s = wait_for(
        lambda: 0 < _frames_detected(svc) < counted,
        RESTART_BOUND_S,
        "the new detector to detect frames (a wedged frame queue would stop it)",
    )
    delivered = int((svc.health("campus") or {})["frames_delivered"])
    time.sleep(3)
    health = svc.health("campus")
    assert health is not None and health["state"] == "online"
    assert health["frames_delivered"] > delivered, "ingest no longer hands frames on"
    resumed_s = restarted_s + detecting_s + _new_incident(svc, "the detector was killed")
    _assert_nothing_lost(svc, before)
    print(
        f"\nFAULT kill -9 cv-detector: restarted after {restarted_s:.1f} s, detecting "
        f"{restarted_s + detecting_s:.1f} s and new incidents {resumed_s:.1f} s after the kill"
    )

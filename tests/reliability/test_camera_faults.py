"""Camera faults against the running service: real RTSP cameras (GStreamer) killed,
restarted, frozen and sending corrupt data, watched through the API the way an
operator sees them (camera health, camera_offline incidents, /metrics).

One service for the whole module; each camera that fails has an RTSP server of its
own, so the ``steady`` camera is the control that must never notice.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reliability.service import Service, start_service, wait_for
from tests.rtsp.harness import HangingServer, Mount, RtspServer, cut_clip, make_corrupted_clip

pytestmark = pytest.mark.e2e

STALL_S = 3.0  # the victim's stall_timeout_s: small, so a frozen camera shows quickly
OFFLINE_AFTER_S = 2.0  # its camera_offline rule
USER_BOUND_S = 30.0  # longer than this and an operator would notice a missing state


@dataclass
class Rig:
    svc: Service
    steady: RtspServer
    victim: RtspServer
    corrupt: RtspServer
    mute: HangingServer


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory, assets: Path) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("camera_faults")
    videos = assets / "videos"
    people = cut_clip(videos / "pets2009_vtest_480x360.mp4", tmp / "people.mp4", 12)
    street = cut_clip(videos / "street_parking_ipcam_day.mp4", tmp / "street.mp4", 8)
    # Garbage in 30-60 % of every 8 s loop: the camera keeps sending bad pictures.
    bad = make_corrupted_clip(street, tmp / "corrupt.mp4", start=0.3, end=0.6)
    steady = RtspServer().start([Mount("/steady", people)])
    victim = RtspServer().start([Mount("/victim", people)])
    corrupt = RtspServer().start([Mount("/corrupt", bad)])
    mute = HangingServer()
    cameras = f"""
  - id: steady
    url: {steady.url("/steady")}
    detect: {{fps: 5}}
  - id: victim
    url: {victim.url("/victim")}
    stall_timeout_s: {STALL_S}
    detect: {{fps: 3}}
    rules:
      - {{type: camera_offline, name: victim-down, after_s: {OFFLINE_AFTER_S}}}
  - id: corrupt
    url: {corrupt.url("/corrupt")}
    detect: {{fps: 3}}
  - id: mute
    url: {mute.url}
    stall_timeout_s: {STALL_S}
    detect: {{fps: 3}}
"""
    svc = None
    try:
        svc = start_service(tmp, cameras)
        rig = Rig(svc, steady, victim, corrupt, mute)
        for cam in ("steady", "victim", "corrupt"):
            wait_for(lambda cam=cam: svc.state(cam) == "online", 60, f"{cam} online")  # type: ignore[misc]
        yield rig
        # No stage died while cameras failed: camera faults stay inside ingest's threads.
        assert "restarting (restart" not in svc.log(tail=10**7), svc.log()
        assert "Traceback" not in svc.log(tail=10**7), svc.log()
    finally:
        if victim.pid is not None:  # never leave a frozen server behind
            _signal_group(victim, signal.SIGCONT)
        if svc is not None:
            svc.kill()
        for server in (steady, victim, corrupt):
            server.stop()
        mute.stop()


def _signal_group(server: RtspServer, sig: signal.Signals) -> None:
    assert server.pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, sig)


def _counter(svc: Service, camera_id: str, key: str) -> int:
    health = svc.health(camera_id)
    assert health is not None, f"{camera_id} has no health"
    return int(health[key])


def _detected(svc: Service, camera_id: str) -> float:
    return svc.metric("cv_detector_frames_detected_by_camera_total", camera=camera_id) or 0.0


def _assert_others_keep_working(svc: Service, during: str) -> None:
    """The control camera keeps decoding and its frames keep reaching the detector."""
    decoded = _counter(svc, "steady", "frames_decoded")
    detected = _detected(svc, "steady")
    wait_for(
        lambda: _counter(svc, "steady", "frames_decoded") >= decoded + 20,
        20,
        f"the steady camera to keep decoding while {during}",
    )
    wait_for(
        lambda: _detected(svc, "steady") > detected,
        20,
        f"the steady camera's frames to keep being detected while {during}",
    )
    assert svc.state("steady") == "online"


def _wait_recovered(svc: Service, camera_id: str, reconnects_before: int, what: str) -> float:
    """Online again, reconnect counted, frames flowing; seconds it took."""
    took = wait_for(
        lambda: (
            svc.state(camera_id) == "online"
            and _counter(svc, camera_id, "reconnects") > reconnects_before
        ),
        USER_BOUND_S,
        f"{camera_id} online again after {what}",
    )
    decoded = _counter(svc, camera_id, "frames_decoded")
    wait_for(
        lambda: _counter(svc, camera_id, "frames_decoded") > decoded + 10,
        15,
        f"frames from {camera_id} after {what}",
    )
    return took


def test_killed_camera_goes_offline_raises_an_incident_and_recovers(rig: Rig) -> None:
    svc = rig.svc
    reconnects = _counter(svc, "victim", "reconnects")
    rig.victim.kill()  # a power cut: the RTSP server vanishes
    down_after = wait_for(
        lambda: svc.state("victim") in ("offline", "stalled"), USER_BOUND_S, "victim offline"
    )
    alert_after = wait_for(
        lambda: svc.incidents(camera_id="victim", type="camera_offline"),
        USER_BOUND_S,
        "a camera_offline incident for the victim",
    )
    incident = svc.incidents(camera_id="victim", type="camera_offline")[0]
    assert incident["end_ts"] is None and incident["severity"] == "high"
    events = svc.get("/api/events", camera_id="victim").json()
    assert any(e["data"]["from"] == "online" and e["data"]["to"] != "online" for e in events)
    _assert_others_keep_working(svc, "the victim is dead")
    assert svc.state("victim") != "online"
    assert (svc.metric("cv_camera_up", camera="victim") or 0.0) == 0.0

    rig.victim.restart()
    back_after = _wait_recovered(svc, "victim", reconnects, "its server came back")
    assert (svc.metric("cv_camera_up", camera="victim") or 0.0) == 1.0
    reconnects_metric = svc.metric("cv_camera_reconnects_total", camera="victim") or 0.0
    assert reconnects_metric > reconnects
    # The incident closes once the camera is back; it is kept, not replaced.
    wait_for(
        lambda: svc.get(f"/api/incidents/{incident['id']}").json()["end_ts"] is not None,
        15,
        "the camera_offline incident to close",
    )
    assert [i["id"] for i in svc.incidents(camera_id="victim", type="camera_offline")] == [
        incident["id"]
    ]
    print(
        f"\nFAULT camera killed: not online after {down_after:.1f} s, "
        f"camera_offline incident after {alert_after:.1f} s, "
        f"online again {back_after:.1f} s after the server returned"
    )


def test_quickly_restarted_camera_recovers(rig: Rig) -> None:
    svc = rig.svc
    wait_for(lambda: svc.state("victim") == "online", USER_BOUND_S, "victim online")
    reconnects = _counter(svc, "victim", "reconnects")
    rig.victim.restart()  # killed and back on the same port at once (a reboot)
    back_after = _wait_recovered(svc, "victim", reconnects, "a quick restart")
    _assert_others_keep_working(svc, "the victim restarted")
    print(f"\nFAULT camera restarted: online with frames again after {back_after:.1f} s")


def test_frozen_camera_is_stalled_retried_and_recovers(rig: Rig) -> None:
    svc = rig.svc
    wait_for(lambda: svc.state("victim") == "online", USER_BOUND_S, "victim online")
    reconnects = _counter(svc, "victim", "reconnects")
    # SIGSTOP: the connection stays open but not one more byte comes, and new
    # connections are accepted by the kernel and never answered.
    _signal_group(rig.victim, signal.SIGSTOP)
    try:
        stalled_after = wait_for(
            lambda: svc.state("victim") == "stalled", STALL_S + 10, "the frozen camera stalled"
        )
        health = svc.health("victim")
        assert health is not None and "no" in (health["last_error"] or ""), health
        # The watchdog ends the blocked read and the reader keeps trying.
        wait_for(
            lambda: _counter(svc, "victim", "reconnects") >= reconnects + 2,
            USER_BOUND_S,
            "retries of the frozen camera",
        )
        _assert_others_keep_working(svc, "the victim is frozen")
    finally:
        _signal_group(rig.victim, signal.SIGCONT)
    reconnects = _counter(svc, "victim", "reconnects")
    back_after = _wait_recovered(svc, "victim", reconnects - 1, "it thawed")

    # A camera that accepts the connection and never answers the RTSP handshake.
    assert svc.state("mute") == "stalled"
    mute_reconnects = _counter(svc, "mute", "reconnects")
    wait_for(
        lambda: _counter(svc, "mute", "reconnects") > mute_reconnects,
        STALL_S * 2 + 10,
        "another attempt on the camera that never answers",
    )
    assert rig.mute.accepted >= 2
    print(
        f"\nFAULT camera frozen: stalled after {stalled_after:.1f} s, "
        f"online again {back_after:.1f} s after it thawed"
    )


def test_corrupt_stream_is_counted_and_keeps_decoding(rig: Rig) -> None:
    svc = rig.svc
    errors_after = wait_for(
        lambda: _counter(svc, "corrupt", "decode_errors") > 0,
        USER_BOUND_S,
        "decode errors counted on the corrupt camera",
    )
    errors = _counter(svc, "corrupt", "decode_errors")
    decoded = _counter(svc, "corrupt", "frames_decoded")
    time.sleep(9)  # past another loop of the clip, garbage included
    assert _counter(svc, "corrupt", "frames_decoded") >= decoded + 50
    assert _counter(svc, "corrupt", "decode_errors") > errors  # every loop is counted
    assert svc.state("corrupt") == "online"
    assert (svc.metric("cv_camera_decode_errors_total", camera="corrupt") or 0.0) > 0
    assert (svc.metric("cv_camera_decode_errors_total", camera="steady") or 0.0) == 0
    assert svc.proc.poll() is None
    _assert_others_keep_working(svc, "a camera sends garbage")
    print(f"\nFAULT corrupt stream: first decode errors counted after {errors_after:.1f} s")

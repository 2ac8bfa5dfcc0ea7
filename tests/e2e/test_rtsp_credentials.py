"""The running service with real RTSP cameras behind passwords: a wrong password
is reported as such, and no password appears in logs or any API output.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_service import Service, kill_service, start_service, wait_for
from tests.rtsp.harness import Mount, RtspServer

pytestmark = pytest.mark.e2e

RIGHT = "Right-Pass-4821"
WRONG = "Wrong-Pass-9317"


@pytest.fixture()
def camera_server(video) -> Iterator[RtspServer]:  # type: ignore[no-untyped-def]
    clip = video("pets2009_vtest_480x360.mp4")
    with RtspServer().start([Mount("/main", clip, user="admin", password=RIGHT)]) as server:
        yield server


@pytest.fixture()
def service(tmp_path: Path, camera_server: RtspServer) -> Iterator[Service]:
    cameras = f"""
  - id: gate
    url: {camera_server.url("/main", "admin", RIGHT)}
    detect: {{fps: 5}}
  - id: school
    url: {camera_server.url("/main", "admin", WRONG)}
    detect: {{fps: 5}}
"""
    svc = start_service(tmp_path, cameras)
    yield svc
    kill_service(svc)


def test_passwords_never_appear_in_logs_or_api_output(service: Service) -> None:
    base = service.base

    def state(camera_id: str) -> str | None:
        r = httpx.get(f"{base}/api/cameras/{camera_id}/health", headers=service.headers)
        return str(r.json()["state"]) if r.status_code == 200 else None

    wait_for(lambda: state("gate") == "online", 30, "the camera with the right password online")
    wait_for(lambda: state("school") == "auth_failed", 30, "the wrong password reported")
    school = httpx.get(f"{base}/api/cameras/school", headers=service.headers).json()
    assert "password" in school["health"]["last_error"]
    assert school["url"].startswith("rtsp://***@127.0.0.1:")

    outputs = {
        path: httpx.get(f"{base}{path}", headers=service.headers).text
        for path in (
            "/api/cameras",
            "/api/cameras/gate",
            "/api/cameras/school",
            "/api/cameras/school/health",
            "/api/events",
            "/api/config/versions",
            "/metrics",
            "/openapi.json",
        )
    }
    events = json.loads(outputs["/api/events"])
    assert any(e["data"]["to"] == "auth_failed" for e in events)
    service.stop(signal.SIGINT)
    outputs["service log"] = service.log_path.read_text(errors="replace")
    assert "auth_failed" in outputs["service log"]
    leaks = [where for where, text in outputs.items() if RIGHT in text or WRONG in text]
    assert not leaks, f"a camera password appears in: {leaks}"

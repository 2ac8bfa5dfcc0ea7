"""``POST /api/cameras/test`` against real RTSP cameras: the right password decodes a
frame, each kind of failure is named the way camera health names it, and no
password ever appears in an answer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import ApiSettings, create_app
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from tests.auth_helpers import sign_in
from tests.conftest import VideoFinder
from tests.rtsp.harness import HangingServer, Mount, RtspServer, free_port

RIGHT = "Right-Pass-6604"
WRONG = "Wrong-Pass-1187"


@pytest.fixture(scope="module")
def camera(video: VideoFinder) -> Iterator[RtspServer]:
    clip = video("pets2009_vtest_480x360.mp4")  # 480x360, 10 fps, H.264
    with RtspServer().start([Mount("/main", clip, user="admin", password=RIGHT)]) as server:
        yield server


@pytest.fixture()
def client(tmp_path: Path, valkey_url: str) -> Iterator[TestClient]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    settings = ApiSettings(database_url=str(engine.url), redis_url=valkey_url, media_root=tmp_path)
    with TestClient(create_app(settings)) as c:
        sign_in(engine, c)
        yield c
    engine.dispose()


def _test(client: TestClient, url: str, **extra: object) -> dict[str, object]:
    response = client.post("/api/cameras/test", json={"url": url, "timeout_s": 8, **extra})
    assert response.status_code == 200, response.text
    assert RIGHT not in response.text and WRONG not in response.text
    body: dict[str, object] = response.json()
    return body


def test_right_password_decodes_a_frame(client: TestClient, camera: RtspServer) -> None:
    body = _test(client, camera.url("/main", "admin", RIGHT))
    assert body["ok"] is True, body
    assert body["state"] == "online"
    assert (body["width"], body["height"], body["codec"]) == (480, 360, "h264")
    assert body["error"] is None
    assert isinstance(body["fps"], float) and 9 <= body["fps"] <= 11  # the clip's 10 fps


def test_wrong_password_is_auth_failed(client: TestClient, camera: RtspServer) -> None:
    body = _test(client, camera.url("/main", "admin", WRONG))
    assert (body["ok"], body["state"]) == (False, "auth_failed"), body
    assert "password" in str(body["error"])
    assert body["width"] is None and body["codec"] is None


def test_unknown_path_is_not_found(client: TestClient, camera: RtspServer) -> None:
    body = _test(client, camera.url("/nothing-here", "admin", RIGHT))
    assert (body["ok"], body["state"]) == (False, "not_found"), body
    assert "path" in str(body["error"])
    # The message quotes FFmpeg's error, which carries the URL: redacted.
    assert f"rtsp://***@127.0.0.1:{camera.port}/nothing-here" in str(body["error"])


def test_closed_port_is_offline(client: TestClient) -> None:
    started = time.monotonic()
    body = _test(client, f"rtsp://admin:{RIGHT}@127.0.0.1:{free_port()}/main")
    assert (body["ok"], body["state"]) == (False, "offline"), body
    assert time.monotonic() - started < 5  # refused at once, no waiting for the timeout


def test_hung_camera_is_stalled_within_the_timeout(client: TestClient) -> None:
    with HangingServer() as hung:
        started = time.monotonic()
        response = client.post("/api/cameras/test", json={"url": hung.url, "timeout_s": 2})
        elapsed = time.monotonic() - started
    body = response.json()
    assert (body["ok"], body["state"]) == (False, "stalled"), body
    assert elapsed < 2 + 1.5, f"the test took {elapsed:.1f} s with timeout_s=2"


def test_redacted_url_of_a_configured_camera_uses_its_stored_password(
    client: TestClient, camera: RtspServer
) -> None:
    url = camera.url("/main", "admin", RIGHT)
    created = client.post("/api/cameras", json={"id": "gate", "url": url})
    assert created.status_code == 201, created.text
    shown = client.get("/api/cameras/gate").json()["url"]
    assert shown.startswith("rtsp://***@127.0.0.1:")

    # The edit form only knows the redacted URL; with camera_id the stored one is used.
    body = _test(client, shown, camera_id="gate")
    assert (body["ok"], body["width"]) == (True, 480), body
    # Without camera_id "***" is taken literally, and the camera refuses it.
    assert _test(client, shown)["state"] == "auth_failed"
    unknown = client.post("/api/cameras/test", json={"url": shown, "camera_id": "nope"})
    assert unknown.status_code == 422 and "camera_id" in unknown.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "concat:/etc/passwd|/etc/hosts"}, "url"),
        ({"url": "pipe:0"}, "url"),
        ({"url": "rtsp://127.0.0.1/x", "timeout_s": 60}, "timeout_s"),
        ({"url": "rtsp://127.0.0.1/x", "transport": "quic"}, "transport"),
        ({"url": "rtsp://127.0.0.1/x", "user": "admin"}, "user"),
    ],
)
def test_bad_requests_name_the_field(
    client: TestClient, body: dict[str, object], field: str
) -> None:
    response = client.post("/api/cameras/test", json=body)
    assert response.status_code == 422, response.text
    assert [e["loc"][-1] for e in response.json()["detail"]] == [field]


def test_a_local_clip_can_be_tested(client: TestClient, video: VideoFinder) -> None:
    body = _test(client, str(video("pets2009_vtest_480x360.mp4")))
    assert (body["ok"], body["width"], body["height"]) == (True, 480, 360), body
    missing = _test(client, "/nonexistent/clip.mp4")
    assert (missing["ok"], missing["state"]) == (False, "not_found"), missing

"""Live preview against real parts: a real ``FrameRing`` in shared memory, the real
bus publishing to a real Valkey what ingest publishes, the real app. The camera
reader is left out: the ring and the hash are its whole interface to the API."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import ApiSettings, create_app
from api.live_preview import MAX_CACHED_JPEGS, LivePreview
from core.bus import EventBus
from core.config import CameraConfig
from core.frames import FrameRing
from core.storage.config_store import ConfigStore
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from core.types import CameraHealth, CameraState, FrameRef
from tests.auth_helpers import TEST_PASSWORD, auth_headers, create_user, sign_in
from tests.live_api import serving
from tests.mjpeg import MjpegParts, boundary_of, decode

H, W = 48, 64


@pytest.fixture()
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture()
def cam() -> str:
    return f"live-{uuid.uuid4().hex[:8]}"  # the session's Valkey is shared: own ids


@pytest.fixture()
def app(engine: Engine, tmp_path: Path, valkey_url: str, cam: str) -> FastAPI:
    ConfigStore(engine).save(
        [
            CameraConfig(id=cam, url="rtsp://10.0.0.7/live"),
            CameraConfig(id=f"{cam}-off", url="rtsp://10.0.0.8/live", enabled=False),
        ],
        "test",
        "seed",
    )
    return create_app(
        ApiSettings(database_url=str(engine.url), redis_url=valkey_url, media_root=tmp_path)
    )


@pytest.fixture()
def bus(valkey_url: str) -> Iterator[EventBus]:
    bus = EventBus(valkey_url)
    yield bus
    bus.publish_latest_frames({})
    bus.close()


@pytest.fixture()
def ring(cam: str) -> Iterator[FrameRing]:
    ring = FrameRing(cam, H, W, slots=4)
    yield ring
    ring.close()


def frame(value: int) -> np.ndarray:
    return np.full((H, W, 3), value, np.uint8)


def online(bus: EventBus, cam: str, **changes: object) -> None:
    health = CameraHealth(camera_id=cam, state=CameraState.ONLINE).to_json_dict()
    bus.publish_health({cam: {**health, **changes}})


def publish(bus: EventBus, ref: FrameRef) -> None:
    """What the ingest loop does every second."""
    bus.publish_latest_frames({ref.camera_id: ref})


def preview_of(client: TestClient) -> LivePreview:
    preview: LivePreview = client.app_state["live_preview"]
    return preview


def grey(jpeg: bytes) -> float:
    return float(decode(jpeg).mean())


def test_unknown_camera_is_404_and_no_frame_yet_is_503(
    app: FastAPI, engine: Engine, cam: str
) -> None:
    with TestClient(app) as client:
        sign_in(engine, client)
        for path in ("snapshot.jpg", "live.mjpeg"):
            unknown = client.get(f"/api/cameras/nope-{cam}/{path}")
            assert unknown.status_code == 404
            assert "not configured" in unknown.json()["detail"]
            # Configured and enabled, but ingest never published a frame for it.
            waiting = client.get(f"/api/cameras/{cam}/{path}")
            assert waiting.status_code == 503
            assert "no frame yet" in waiting.json()["detail"]
            assert waiting.headers["retry-after"] == "1"
            disabled = client.get(f"/api/cameras/{cam}-off/{path}")
            assert disabled.status_code == 503 and "disabled" in disabled.json()["detail"]


def test_snapshot_is_the_newest_frame_although_the_published_slot_was_overwritten(
    app: FastAPI, engine: Engine, bus: EventBus, ring: FrameRing, cam: str
) -> None:
    published = ring.write(frame(10), capture_ts=1000.0)
    publish(bus, published)
    online(bus, cam)
    for i in range(1, 7):  # the ring (4 slots) wraps: the published slot is rewritten
        ring.write(frame(10 + 30 * i), capture_ts=1000.0 + i)
    with TestClient(app) as client:
        sign_in(engine, client)
        response = client.get(f"/api/cameras/{cam}/snapshot.jpg")
        small = client.get(f"/api/cameras/{cam}/snapshot.jpg", params={"width": 32})
        too_wide = client.get(f"/api/cameras/{cam}/snapshot.jpg", params={"width": 4000})
        for width in range(16, 16 + MAX_CACHED_JPEGS + 10):
            assert client.get(f"/api/cameras/{cam}/snapshot.jpg?width={width}").status_code == 200
        assert preview_of(client).cached_jpegs == MAX_CACHED_JPEGS  # bounded, however asked
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-seq"] == "6"
    assert float(response.headers["x-capture-ts"]) == 1006.0
    image = decode(response.content)
    assert image.shape == (H, W, 3)
    assert abs(float(image.mean()) - 190) < 3  # frame 6's grey, not the published frame 0's
    assert decode(small.content).shape == (24, 32, 3)  # downscaled, aspect kept
    assert too_wide.status_code == 422


def test_a_restarted_camera_is_503_until_published_then_its_old_ring_is_unmapped(
    app: FastAPI, engine: Engine, bus: EventBus, cam: str
) -> None:
    old = FrameRing(cam, H, W, slots=4)
    new = FrameRing(cam, H, W, slots=4)
    try:
        publish(bus, old.write(frame(40), 1.0))
        online(bus, cam)
        with TestClient(app) as client:
            sign_in(engine, client)
            first = client.get(f"/api/cameras/{cam}/snapshot.jpg")
            assert first.status_code == 200 and abs(grey(first.content) - 40) < 3
            assert preview_of(client).mapped_rings == {cam: old.name}

            # The reader restarted: the old ring is unlinked, the new one has a frame,
            # and ingest has not published it yet. The hash is asked again, once.
            old_name = old.name
            old.close()
            new_ref = new.write(frame(200), 2.0)
            gone = client.get(f"/api/cameras/{cam}/snapshot.jpg")
            assert gone.status_code == 503
            assert "restarting" in gone.json()["detail"]
            assert old_name not in preview_of(client).mapped_rings.values()

            publish(bus, new_ref)
            back = client.get(f"/api/cameras/{cam}/snapshot.jpg")
            assert back.status_code == 200 and abs(grey(back.content) - 200) < 3
            assert preview_of(client).mapped_rings == {cam: new.name}
    finally:
        new.close()


def test_offline_camera_or_silent_ingest_is_503_with_the_reason(
    app: FastAPI, engine: Engine, bus: EventBus, ring: FrameRing, cam: str
) -> None:
    publish(bus, ring.write(frame(90), 1.0))
    with TestClient(app) as client:
        sign_in(engine, client)
        online(bus, cam, state="offline", last_error="connection refused")
        offline = client.get(f"/api/cameras/{cam}/snapshot.jpg")
        online(bus, cam, updated_ts=time.time() - 60)
        silent = client.get(f"/api/cameras/{cam}/snapshot.jpg")
        online(bus, cam)
        fine = client.get(f"/api/cameras/{cam}/snapshot.jpg")
    assert offline.status_code == 503
    assert offline.json()["detail"] == (
        f"camera {cam!r} is offline (connection refused): no live image"
    )
    assert silent.status_code == 503 and "ingest process is not running" in silent.json()["detail"]
    assert fine.status_code == 200


def _live_streams(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    match = re.search(r"^cv_api_live_streams (\S+)$", text, re.M)
    assert match, "cv_api_live_streams is missing from /metrics"
    return float(match.group(1))


def test_mjpeg_sends_each_new_frame_once_and_ends_when_the_client_goes(
    app: FastAPI, engine: Engine, bus: EventBus, ring: FrameRing, cam: str
) -> None:
    publish(bus, ring.write(frame(20), 1.0))
    online(bus, cam)
    create_user(engine, "watcher", TEST_PASSWORD, "viewer")
    with serving(app) as base:
        headers = auth_headers(base, "watcher", TEST_PASSWORD)
        url = f"{base}/api/cameras/{cam}/live.mjpeg"
        with httpx.stream("GET", url, params={"fps": 5}, headers=headers, timeout=10) as live:
            assert live.status_code == 200
            assert live.headers["cache-control"] == "no-store"
            parts = MjpegParts(live.iter_raw(), boundary_of(live.headers["content-type"]))
            greys = [grey(parts.next())]
            assert _live_streams(base) == 1
            for value in (120, 230):
                time.sleep(0.5)  # a few ticks at 5 fps with no new frame: nothing is sent
                ring.write(frame(value), time.time())
                greys.append(grey(parts.next()))
        assert [round(g / 10) for g in greys] == [2, 12, 23]  # each frame once, in order
        deadline = time.monotonic() + 10
        while _live_streams(base) != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _live_streams(base) == 0  # the server noticed the client left

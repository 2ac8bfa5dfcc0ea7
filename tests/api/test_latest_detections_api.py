"""The threshold preview's data path on real parts: a camera's frame in a real
``FrameRing``, the real ``CameraAnalytics`` given detections for it, the real bus
publishing what analytics publishes each second to a real Valkey, the real app
answering ``GET /api/cameras/{id}/detections/latest``."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import ApiSettings, create_app
from api.auth import Role
from commune_vision.analytics import CameraAnalytics
from core.bus import EventBus
from core.config import CameraConfig
from core.frames import FrameReader, FrameRing
from core.storage.config_store import ConfigStore
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from tests.auth_helpers import sign_in
from tests.mjpeg import decode
from vision.detections import Detections

H, W = 60, 80


@pytest.fixture()
def cam() -> str:
    return f"det-{uuid.uuid4().hex[:8]}"  # the session's Valkey is shared: own ids


@pytest.fixture()
def engine(tmp_path: Path, cam: str) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    # A filter on person: the API still answers every box (the console applies filters).
    camera = CameraConfig.model_validate(
        {"id": cam, "url": "rtsp://10.0.0.7/live", "filters": {"person": {"min_confidence": 0.9}}}
    )
    ConfigStore(engine).save([camera], "test", "seed")
    yield engine
    engine.dispose()


@pytest.fixture()
def app(engine: Engine, tmp_path: Path, valkey_url: str) -> FastAPI:
    return create_app(
        ApiSettings(database_url=str(engine.url), redis_url=valkey_url, media_root=tmp_path)
    )


@pytest.fixture()
def bus(valkey_url: str) -> Iterator[EventBus]:
    bus = EventBus(valkey_url)
    yield bus
    bus.publish_latest_detections({})
    bus.close()


def test_latest_detections_come_with_their_frame_before_any_filter(
    app: FastAPI, engine: Engine, bus: EventBus, cam: str
) -> None:
    ring = FrameRing(cam, H, W, slots=4)
    frames = FrameReader()
    camera = ConfigStore(engine).latest()
    assert camera is not None
    analytics = CameraAnalytics(camera.cameras[0], frames, lambda _event: None)
    try:
        with TestClient(app) as client:
            sign_in(engine, client, Role.VIEWER)  # boxes over the live view: everyone
            unknown = client.get(f"/api/cameras/nope-{cam}/detections/latest")
            assert unknown.status_code == 404 and "not configured" in unknown.json()["detail"]
            waiting = client.get(f"/api/cameras/{cam}/detections/latest")
            assert waiting.status_code == 503 and "no detections yet" in waiting.json()["detail"]

            ref = ring.write(np.full((H, W, 3), 200, np.uint8), 1_790_000_000.5)
            detections = Detections.untracked(
                np.array([[8, 6, 24, 54], [40, 30, 80, 60], [0, 0, 10, 10]], np.float32),
                np.array([0.42, 0.91, 0.99], np.float32),
                np.array([0, 3, 56], np.int32),  # person, motorcycle, chair (not ours)
            )
            analytics.on_detections(ref, detections)
            latest = analytics.latest_detections()
            assert latest is not None
            bus.publish_latest_detections({cam: latest})  # what cv-analytics does each second

            got = client.get(f"/api/cameras/{cam}/detections/latest")
            assert got.status_code == 200, got.text
            data = got.json()
            assert (data["width"], data["height"], data["frame_seq"]) == (W, H, ref.seq)
            assert data["capture_ts"] == ref.capture_ts
            # Below the person filter (0.9) and still there; the chair is not a domain class.
            assert data["detections"] == [
                {"label": "person", "confidence": 0.42, "box": [0.1, 0.1, 0.3, 0.9]},
                {"label": "motorbike", "confidence": 0.91, "box": [0.5, 0.5, 1.0, 1.0]},
            ]
            assert data["image"].startswith("data:image/jpeg;base64,")
            jpeg = base64.b64decode(data["image"].split(",", 1)[1])
            assert abs(float(decode(jpeg).mean()) - 200) < 3  # exactly that frame

            # The ring moved on past that frame: the boxes stay, without a picture.
            for value in range(4):
                ring.write(np.full((H, W, 3), value, np.uint8), 1_790_000_001.0 + value)
            stale = client.get(f"/api/cameras/{cam}/detections/latest").json()
            assert stale["image"] is None and len(stale["detections"]) == 2
    finally:
        frames.close()
        ring.close()

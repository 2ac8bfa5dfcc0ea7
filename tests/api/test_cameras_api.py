"""Camera configuration through the API: versioned, announced, credentials hidden."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from api.app import ApiSettings, create_app
from core.bus import CONFIG_CHANNEL, HEALTH_HASH
from core.config import CameraConfig
from core.storage.config_store import ConfigStore
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from tests.auth_helpers import sign_in

SECRET = "s3cr3t-pa55"
CAM = {
    "id": "gate-1",
    "name": "Cổng 1",
    "url": f"rtsp://admin:{SECRET}@10.0.0.7:554/Streaming/Channels/102",
    "zones": [{"name": "yard", "points": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]}],
    "rules": [{"type": "intrusion", "name": "yard-people", "zone": "yard"}],
}


@pytest.fixture()
def store(db_url: str) -> ConfigStore:
    engine = make_engine(db_url)  # every test here runs on SQLite and on PostgreSQL
    upgrade(engine)
    return ConfigStore(engine)


@pytest.fixture()
def client(store: ConfigStore, tmp_path: Path, valkey_url: str) -> Iterator[TestClient]:
    url = str(store._engine.url)
    settings = ApiSettings(database_url=url, redis_url=valkey_url, media_root=tmp_path)
    with TestClient(create_app(settings)) as c:
        sign_in(store._engine, c)
        yield c


@pytest.fixture()
def announcements(valkey_url: str) -> Iterator[redis.client.PubSub]:
    pubsub = redis.Redis.from_url(valkey_url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CONFIG_CHANNEL)
    yield pubsub
    pubsub.close()


def _next_announcement(pubsub: redis.client.PubSub) -> int:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        # The subscribe confirmation is read (and ignored) as None first.
        message = pubsub.get_message(timeout=1)
        if message is not None:
            return int(message["data"])
    raise AssertionError("no config announcement on Redis")


def test_add_update_remove_are_versioned_and_announced(
    client: TestClient, store: ConfigStore, announcements: redis.client.PubSub
) -> None:
    created = client.post("/api/cameras", json=CAM)
    assert created.status_code == 201, created.text
    v1 = _next_announcement(announcements)
    assert store.latest() is not None and store.latest().id == v1  # type: ignore[union-attr]

    assert client.post("/api/cameras", json=CAM).status_code == 409

    changed = {**CAM, "detect": {"fps": 10}}
    assert client.put("/api/cameras/gate-1", json=changed).status_code == 200
    v2 = _next_announcement(announcements)
    assert v2 > v1
    latest = store.latest()
    assert latest is not None and latest.cameras[0].detect.fps == 10

    assert client.delete("/api/cameras/gate-1").status_code == 204
    _next_announcement(announcements)
    assert client.get("/api/cameras").json() == []
    history = client.get("/api/config/versions").json()
    assert [h["comment"] for h in history] == [
        "remove camera gate-1",
        "update camera gate-1",
        "add camera gate-1",
    ]
    # The version's author is the signed-in user (sign_in's default admin), not "api".
    assert all(h["author"] == "user:signed-in-admin" for h in history)


def test_credentials_never_leave_the_api_and_survive_an_edit(
    client: TestClient, store: ConfigStore
) -> None:
    assert client.post("/api/cameras", json=CAM).status_code == 201
    listed = client.get("/api/cameras")
    one = client.get("/api/cameras/gate-1")
    for body in (listed.text, one.text):
        assert SECRET not in body and "admin" not in body
    shown = one.json()
    assert shown["url"] == "rtsp://***@10.0.0.7:554/Streaming/Channels/102"
    # An admin edits the name and sends back the redacted URL: the password is kept.
    shown.pop("health")
    shown["name"] = "Cổng chính"
    assert client.put("/api/cameras/gate-1", json=shown).status_code == 200
    latest = store.latest()
    assert latest is not None and latest.cameras[0].url == CAM["url"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (
            {**CAM, "zones": [{"name": "yard", "points": [[0, 0], [1, 1]]}]},
            ["body", "zones", 0, "points"],
        ),
        ({**CAM, "fsp": 3}, ["body", "fsp"]),
        ({**CAM, "rules": [{"type": "intrusion", "name": "r", "zone": "nowhere"}]}, ["body"]),
    ],
    ids=["short polygon", "unknown key", "unknown zone"],
)
def test_invalid_camera_is_rejected_with_its_field(
    client: TestClient, body: dict[str, object], where: list[object]
) -> None:
    response = client.post("/api/cameras", json=body)
    assert response.status_code == 422
    locs = [e["loc"] for e in response.json()["detail"]]
    assert any(loc[: len(where)] == where for loc in locs), locs
    assert client.get("/api/cameras").json() == []  # nothing half-saved


def test_health_is_merged_and_exported_as_metrics(client: TestClient, valkey_url: str) -> None:
    assert client.post("/api/cameras", json=CAM).status_code == 201
    health = {
        "camera_id": "gate-1",
        "state": "offline",
        "last_frame_ts": None,
        "input_fps": 0.0,
        "decoded_fps": 0.0,
        "frames_dropped": 3,
        "reconnects": 7,
        "last_error": "connection refused",
        "updated_ts": 1.0,
    }
    r = redis.Redis.from_url(valkey_url)
    r.hset(HEALTH_HASH, "gate-1", json.dumps(health))
    try:
        assert client.get("/api/cameras/gate-1").json()["health"]["state"] == "offline"
        text = client.get("/metrics").text
        assert 'cv_camera_up{camera="gate-1"} 0.0' in text
        assert 'cv_camera_state{camera="gate-1",state="offline"} 1.0' in text
        assert 'cv_camera_reconnects_total{camera="gate-1"} 7.0' in text
    finally:
        r.hdel(HEALTH_HASH, "gate-1")


def test_file_import_does_not_undo_api_edits(store: ConfigStore) -> None:
    file_cams = [CameraConfig.model_validate(CAM)]
    v1 = store.sync_from_file(file_cams, "text-1", "cfg.yaml")
    assert v1 is not None
    edited = [file_cams[0].model_copy(update={"name": "edited in the console"})]
    store.save(edited, "api", "rename")
    assert store.sync_from_file(file_cams, "text-1", "cfg.yaml") is None  # unchanged file
    latest = store.latest()
    assert latest is not None and latest.cameras[0].name == "edited in the console"
    assert store.sync_from_file(file_cams, "text-2", "cfg.yaml") is not None  # file edited: it wins

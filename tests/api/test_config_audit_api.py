"""Camera config changes through the API carry the real author and an audit entry;
an old version can be shown (credentials hidden) and rolled back to as a new version."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from api.auth import Role
from core.bus import CONFIG_CHANNEL
from tests.api.review_helpers import CAMERA, ReviewEnv, review_env
from tests.pg import DB_KINDS, db_url_for

ADMIN, POLICE, VIEWER = Role.ADMIN, Role.POLICE, Role.VIEWER
MARKET = {"id": "market", "url": "rtsp://cam:m4rket-pw@10.0.0.9/1"}


@pytest.fixture(params=DB_KINDS)
def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, valkey_url: str
) -> Iterator[ReviewEnv]:
    folder = tmp_path_factory.mktemp("config-audit")
    # Every test here runs on SQLite and on a real PostgreSQL.
    with review_env(folder, valkey_url, db_url_for(request, folder)) as env:
        yield env


@pytest.fixture()
def announcements(valkey_url: str) -> Iterator[redis.client.PubSub]:
    pubsub = redis.Redis.from_url(valkey_url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CONFIG_CHANNEL)
    yield pubsub
    pubsub.close()


def announced(pubsub: redis.client.PubSub) -> int:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=1)
        if message is not None:
            return int(message["data"])
    raise AssertionError("no config announcement on Redis")


def test_camera_edits_are_authored_and_audited(env: ReviewEnv) -> None:
    admin = env.headers[ADMIN]
    assert env.client.post("/api/cameras", json=CAMERA, headers=admin).status_code == 201
    renamed = {**CAMERA, "name": "Cổng 1", "url": "rtsp://***@10.0.0.7:554/Streaming/Channels/102"}
    assert env.client.put("/api/cameras/gate-1", json=renamed, headers=admin).status_code == 200
    assert env.client.delete("/api/cameras/gate-1", headers=admin).status_code == 204

    versions = env.client.get("/api/config/versions", headers=admin).json()
    assert [v["author"] for v in versions] == ["user:test-admin"] * 3
    entries = env.client.get(
        "/api/audit", params={"entity_type": "camera", "entity_id": "gate-1"}, headers=admin
    ).json()["items"][::-1]
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("camera.create", "user:test-admin"),
        ("camera.update", "user:test-admin"),
        ("camera.delete", "user:test-admin"),
    ]
    created, updated, deleted = entries
    assert created["before"] is None and created["after"]["zones"][0]["name"] == "yard"
    # Only the changed field; the kept credentials did not change the URL.
    assert updated["before"] == {"name": ""}
    assert updated["after"] == {"name": "Cổng 1", "config_version": versions[1]["id"]}
    assert deleted["before"]["id"] == "gate-1"
    assert deleted["after"] == {"config_version": versions[0]["id"]}
    assert "s3cr3t" not in str(entries)


def test_rollback_restores_an_old_camera_list_as_a_new_version(
    env: ReviewEnv, announcements: redis.client.PubSub
) -> None:
    admin = env.headers[ADMIN]
    assert env.client.post("/api/cameras", json=CAMERA, headers=admin).status_code == 201
    v1 = announced(announcements)
    assert env.client.post("/api/cameras", json=MARKET, headers=admin).status_code == 201
    announced(announcements)
    assert env.client.delete("/api/cameras/gate-1", headers=admin).status_code == 204
    v3 = announced(announcements)
    assert [c["id"] for c in env.client.get("/api/cameras", headers=admin).json()] == ["market"]

    assert (
        env.client.post(
            f"/api/config/versions/{v1}/rollback", headers=env.headers[POLICE]
        ).status_code
        == 403
    )
    rolled = env.client.post(f"/api/config/versions/{v1}/rollback", headers=admin)
    assert rolled.status_code == 201, rolled.text
    v4 = rolled.json()["version"]
    assert rolled.json() == {"version": v4, "restored_from": v1, "camera_ids": ["gate-1"]}
    assert v4 > v3 and announced(announcements) == v4
    assert [c["id"] for c in env.client.get("/api/cameras", headers=admin).json()] == ["gate-1"]

    old = env.client.get(f"/api/config/versions/{v1}", headers=env.headers[VIEWER]).json()
    new = env.client.get(f"/api/config/versions/{v4}", headers=env.headers[VIEWER]).json()
    assert new["cameras"] == old["cameras"]  # the same cameras, zones and rules
    assert new["author"] == "user:test-admin" and new["comment"] == f"rollback to version {v1}"
    assert old["cameras"][0]["url"] == "rtsp://***@10.0.0.7:554/Streaming/Channels/102"
    assert "s3cr3t" not in str(old)

    [entry] = env.client.get(
        "/api/audit", params={"entity_type": "camera_config"}, headers=admin
    ).json()["items"]
    assert (entry["action"], entry["actor"], entry["entity_id"]) == (
        "config.rollback",
        "user:test-admin",
        str(v4),
    )
    assert entry["before"] == {"version": v3, "camera_ids": ["market"]}
    assert entry["after"] == {
        "restored_from": v1,
        "camera_ids": ["gate-1"],
        "added": ["gate-1"],
        "removed": ["market"],
        "changed": [],
    }

    live = env.client.post(f"/api/config/versions/{v4}/rollback", headers=admin)
    assert live.status_code == 409 and "already the live one" in live.json()["detail"]
    missing = env.client.post("/api/config/versions/999/rollback", headers=admin)
    assert missing.status_code == 404 and "999" in missing.json()["detail"]
    assert env.client.get("/api/config/versions/999", headers=admin).status_code == 404

"""Webhook admin routes and delivery state through the API, with the real
``cv-webhooks`` loop (``run_webhooks``) sending to a real receiver on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import ApiSettings, create_app
from api.auth import Role
from api.routers.webhooks import router as webhooks_router
from commune_vision.webhooks import run_webhooks
from core.bus import EventBus
from core.storage.audit import AuditLog
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from core.storage.webhooks import WebhookStore
from core.storage.writer import IncidentWriter
from core.types import Incident, IncidentOpened, new_incident_id
from core.webhooks import CURSOR_KEY, SIGNATURE_HEADER
from tests.auth_helpers import role_headers
from tests.webhook_receiver import Receiver, receiving

Headers = dict[Role, dict[str, str]]


@pytest.fixture()
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)  # every test here runs on SQLite and on PostgreSQL
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture()
def client(engine: Engine, tmp_path: Path, valkey_url: str) -> Iterator[TestClient]:
    settings = ApiSettings(
        database_url=str(engine.url), redis_url=valkey_url, media_root=tmp_path / "media"
    )
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture()
def headers(engine: Engine, client: TestClient) -> Headers:
    return role_headers(engine, client)


@pytest.fixture()
def admin(headers: Headers) -> dict[str, str]:
    return headers[Role.ADMIN]


def test_admin_manages_webhooks_and_the_secret_is_shown_once(
    client: TestClient, admin: dict[str, str], engine: Engine
) -> None:
    created = client.post(
        "/api/webhooks",
        json={
            "name": "police",
            "url": "https://police.example/alerts",
            "camera_ids": ["school"],
            "types": ["intrusion"],
            "min_severity": "medium",
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    secret = hook["secret"]
    assert len(secret) >= 32  # generated: 256 random bits
    assert hook["camera_ids"] == ["school"] and hook["active"] is True

    listed = client.get("/api/webhooks", headers=admin)
    assert [h["id"] for h in listed.json()] == [hook["id"]]
    one = client.get(f"/api/webhooks/{hook['id']}", headers=admin)
    for response in (listed, one):
        assert "secret" not in response.text and secret not in response.text

    chosen = client.post(
        "/api/webhooks",
        json={"name": "vms", "url": "http://10.0.0.5:8080/in", "secret": "s" * 20},
        headers=admin,
    )
    assert chosen.status_code == 201 and chosen.json()["secret"] == "s" * 20

    patched = client.patch(
        f"/api/webhooks/{hook['id']}",
        json={"active": False, "types": [], "min_severity": "high"},
        headers=admin,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["active"] is False and patched.json()["types"] == []
    assert patched.json()["url"] == "https://police.example/alerts"  # not sent: kept
    stored = WebhookStore(engine).get(hook["id"])
    assert stored is not None and stored.secret == secret
    null = client.patch(f"/api/webhooks/{hook['id']}", json={"url": None}, headers=admin)
    assert null.status_code == 422 and "url" in null.text

    assert client.delete(f"/api/webhooks/{hook['id']}", headers=admin).status_code == 204
    assert client.get(f"/api/webhooks/{hook['id']}", headers=admin).status_code == 404
    assert client.delete(f"/api/webhooks/{hook['id']}", headers=admin).status_code == 404

    history = AuditLog(engine).history("webhook", str(hook["id"]))
    assert [e.action for e in history] == ["webhook.create", "webhook.update", "webhook.delete"]
    assert all(e.actor == "user:test-admin" for e in history)
    assert secret not in json.dumps([(e.before, e.after) for e in history])


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"name": "x", "url": "ftp://example.org/in"}, "http"),
        ({"name": "x", "url": "javascript:alert(1)"}, "http"),
        ({"name": "x", "url": "http://"}, "host"),
        ({"name": "x", "url": "http://h/in", "secret": "short"}, "secret"),
        ({"name": "x", "url": "http://h/in", "min_severity": "urgent"}, "min_severity"),
        ({"name": "x", "url": "http://h/in", "camera_id": ["school"]}, "camera_id"),
        ({"name": "", "url": "http://h/in"}, "name"),
    ],
)
def test_bad_webhooks_are_refused_with_the_reason(
    client: TestClient, admin: dict[str, str], body: dict[str, Any], complaint: str
) -> None:
    response = client.post("/api/webhooks", json=body, headers=admin)
    assert response.status_code == 422 and complaint in response.text
    assert client.get("/api/webhooks", headers=admin).json() == []


def test_only_admins_may_touch_webhooks(client: TestClient, headers: Headers) -> None:
    routes = [r for r in webhooks_router.routes if isinstance(r, APIRoute)]
    assert len(routes) == 7
    for route in routes:  # every route declares the admin-only check
        declared = [getattr(d.call, "roles", None) for d in route.dependant.dependencies]
        assert frozenset({Role.ADMIN}) in declared, route.path
    for role in (Role.OPERATOR, Role.POLICE, Role.VIEWER):
        assert client.get("/api/webhooks", headers=headers[role]).status_code == 403
        body = {"name": "x", "url": "http://h/in"}
        assert client.post("/api/webhooks", json=body, headers=headers[role]).status_code == 403
    assert client.get("/api/webhooks").status_code == 401


def incident(camera_id: str) -> Incident:
    start = time.time()
    return Incident(
        id=new_incident_id(start),
        camera_id=camera_id,
        rule="yard-people",
        type="intrusion",
        severity="high",
        labels=["person"],
        track_ids=[2],
        zone="yard",
        start_ts=start,
        end_ts=None,
        peak_score=0.9,
        clip_start_ts=start - 5,
        clip_end_ts=None,
    )


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture()
def dispatcher(engine: Engine, valkey_url: str) -> Iterator[None]:
    """The cv-webhooks process body, on a thread, until the test ends."""
    valkey = redis.Redis.from_url(valkey_url)
    valkey.delete(CURSOR_KEY)  # start at the stream's end, as on a first start
    stop = threading.Event()
    thread = threading.Thread(
        target=run_webhooks, args=(str(engine.url), valkey_url, stop), name="cv-webhooks"
    )
    thread.start()
    wait_until(lambda: valkey.exists(CURSOR_KEY) == 1, "the dispatcher to take its position")
    yield
    stop.set()
    thread.join(timeout=15)
    assert not thread.is_alive()
    valkey.close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


def test_delivery_state_is_visible_through_the_api(
    client: TestClient,
    admin: dict[str, str],
    engine: Engine,
    tmp_path: Path,
    valkey_url: str,
    receiver: Receiver,
    dispatcher: None,
) -> None:
    hook = client.post(
        "/api/webhooks",
        json={"name": "police", "url": receiver.url("/in"), "camera_ids": ["school"]},
        headers=admin,
    ).json()
    deliveries = f"/api/webhooks/{hook['id']}/deliveries"

    def listed(**params: str) -> list[dict[str, Any]]:
        response = client.get(deliveries, params=params, headers=admin)
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()
        return rows

    queued = client.post(f"/api/webhooks/{hook['id']}/test", headers=admin)
    assert queued.status_code == 202
    assert queued.json()["event"] == "test" and queued.json()["status"] == "pending"
    wait_until(lambda: listed()[0]["status"] == "delivered", "the test delivery")
    [test] = receiver.requests
    expected = hmac.new(hook["secret"].encode(), test.body, hashlib.sha256).hexdigest()
    assert test.headers[SIGNATURE_HEADER] == f"sha256={expected}"
    assert json.loads(test.body) == {"event": "test", "incident": None, "stream_id": None}

    bus = EventBus(valkey_url)
    writer = IncidentWriter(engine, tmp_path / "media", bus)
    at_school, at_gate = incident("school"), incident("gate-1")
    for inc in (at_gate, at_school):
        writer.handle(IncidentOpened(inc, b""))
    wait_until(lambda: len(listed(status="delivered")) == 2, "the incident delivery")
    newest = listed()[0]
    assert newest["incident_id"] == at_school.id and newest["event"] == "opened"
    assert newest["attempts"] == 1 and newest["last_status_code"] == 200
    assert newest["payload"]["incident"]["camera_id"] == "school"
    assert at_gate.id not in json.dumps(listed())  # another camera: never queued

    receiver.plan(500)  # the receiver fails: the API shows the retry to come
    failing = incident("school")
    writer.handle(IncidentOpened(failing, b""))
    wait_until(
        lambda: [d["attempts"] for d in listed(status="pending")] == [1], "the failed attempt"
    )
    [pending] = listed(status="pending")
    assert pending["incident_id"] == failing.id
    assert pending["attempts"] == 1 and pending["last_status_code"] == 500
    assert pending["next_attempt_ts"] == pytest.approx(time.time() + 5, abs=3)
    assert client.get("/api/webhooks/999/deliveries", headers=admin).status_code == 404
    bus.close()

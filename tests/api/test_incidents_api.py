"""The single writer and the API together, on real SQLite and PostgreSQL and a real Valkey."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import ApiSettings, create_app
from core.bus import EventBus
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from core.storage.writer import IncidentWriter
from core.types import Incident, IncidentOpened, IncidentUpdated, new_incident_id
from tests.auth_helpers import sign_in


def _jpeg() -> bytes:
    image = np.zeros((90, 160, 3), np.uint8)
    cv2.rectangle(image, (10, 10), (60, 80), (0, 0, 255), 2)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return bytes(buf.tobytes())


def _incident(camera_id: str = "gate-1", start_ts: float | None = None) -> Incident:
    start = time.time() if start_ts is None else start_ts
    return Incident(
        id=new_incident_id(start),
        camera_id=camera_id,
        rule="yard-people",
        type="intrusion",
        severity="high",
        labels=["person"],
        track_ids=[3],
        zone="yard",
        start_ts=start,
        end_ts=None,
        peak_score=0.8,
        clip_start_ts=start - 5,
        clip_end_ts=None,
    )


@pytest.fixture()
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)  # every test here runs on SQLite and on PostgreSQL
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture()
def writer(engine: Engine, tmp_path: Path, valkey_url: str) -> Iterator[IncidentWriter]:
    bus = EventBus(valkey_url)
    yield IncidentWriter(engine, tmp_path / "media", bus)
    bus.close()


@pytest.fixture()
def client(engine: Engine, tmp_path: Path, valkey_url: str) -> Iterator[TestClient]:
    settings = ApiSettings(
        database_url=str(engine.url), redis_url=valkey_url, media_root=tmp_path / "media"
    )
    with TestClient(create_app(settings)) as c:
        sign_in(engine, c)
        yield c


def test_migrations_are_idempotent(engine: Engine) -> None:
    upgrade(engine)  # second run is a no-op, not an error


def test_written_incident_is_searchable_with_snapshot(
    writer: IncidentWriter, client: TestClient
) -> None:
    older = _incident("gate-1", time.time() - 3600)
    newer = _incident("market", time.time())
    for inc in (older, newer):
        writer.handle(IncidentOpened(inc, _jpeg()))

    page = client.get("/api/incidents").json()
    assert [i["id"] for i in page["items"]] == [newer.id, older.id]  # newest first

    only_gate = client.get("/api/incidents", params={"camera_id": "gate-1"}).json()["items"]
    assert [i["id"] for i in only_gate] == [older.id]
    recent = client.get("/api/incidents", params={"since_ts": time.time() - 60}).json()["items"]
    assert [i["id"] for i in recent] == [newer.id]

    first = client.get("/api/incidents", params={"limit": 1}).json()
    assert first["next_cursor"] and newer.id not in first["next_cursor"]  # opaque
    second = client.get(
        "/api/incidents", params={"limit": 1, "cursor": first["next_cursor"]}
    ).json()
    assert [i["id"] for i in second["items"]] == [older.id]

    snap = client.get(page["items"][0]["snapshot_url"])
    assert snap.status_code == 200 and snap.headers["content-type"] == "image/jpeg"
    decoded = cv2.imdecode(np.frombuffer(snap.content, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape == (90, 160, 3)


def test_close_updates_the_row(writer: IncidentWriter, client: TestClient) -> None:
    inc = _incident()
    writer.handle(IncidentOpened(inc, _jpeg()))
    writer.handle(IncidentUpdated(inc.id, inc.start_ts + 12, 0.93, [3, 4], True, inc.start_ts + 17))
    got = client.get(f"/api/incidents/{inc.id}").json()
    assert got["end_ts"] == pytest.approx(inc.start_ts + 12)
    assert got["peak_score"] == pytest.approx(0.93)
    assert got["track_ids"] == [3, 4]


def test_unknown_incident_and_bad_parameters(client: TestClient) -> None:
    missing = client.get("/api/incidents/ffff")
    assert missing.status_code == 404 and "ffff" in missing.json()["detail"]
    assert client.get("/api/incidents", params={"limit": 0}).status_code == 422
    bad_range = client.get("/api/incidents", params={"since_ts": 10, "until_ts": 5})
    assert bad_range.status_code == 422 and "until_ts" in bad_range.json()["detail"]
    assert client.get("/api/incidents", params={"cursor": "../../etc"}).status_code == 422


def test_snapshot_outside_media_root_is_not_served(
    writer: IncidentWriter, engine: Engine, client: TestClient
) -> None:
    from sqlalchemy.orm import Session

    from core.storage.models import IncidentRow

    inc = _incident()
    writer.handle(IncidentOpened(inc, _jpeg()))
    with Session(engine) as s, s.begin():
        row = s.get(IncidentRow, inc.id)
        assert row is not None
        row.snapshot_path = "../../../../etc/passwd"
    assert client.get(f"/api/incidents/{inc.id}/snapshot").status_code == 404


def test_websocket_pushes_new_incidents_and_replays_missed(
    writer: IncidentWriter, client: TestClient
) -> None:
    with client.websocket_connect("/api/alerts/ws") as ws:
        inc = _incident("school")
        writer.handle(IncidentOpened(inc, _jpeg()))
        msg = ws.receive_json()
        assert msg["kind"] == "opened" and msg["incident"]["id"] == inc.id
        last_seen = msg["id"]
    # While no client is connected, two more happen; a reconnect with last_id gets both.
    missed = [_incident("school"), _incident("gate-1")]
    for inc in missed:
        writer.handle(IncidentOpened(inc, _jpeg()))
    with client.websocket_connect(f"/api/alerts/ws?last_id={last_seen}") as ws:
        got = [ws.receive_json()["incident"]["id"] for _ in missed]
    assert got == [i.id for i in missed]


def test_healthz_reports_the_bus(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body == {"status": "ok", "checks": {"api": "ok", "bus": "ok"}}

"""``cv_incidents_total``: the real writer stores incidents and publishes their alerts
through the real bus to a real Valkey; ``/metrics`` counts the opened ones per rule."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import ApiSettings, create_app
from core.bus import EventBus
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from core.storage.writer import IncidentWriter
from core.types import Incident, IncidentOpened, IncidentUpdated, new_incident_id


@pytest.fixture()
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def incident(camera_id: str, type_: str, rule: str) -> Incident:
    start = time.time()
    return Incident(
        id=new_incident_id(start),
        camera_id=camera_id,
        rule=rule,
        type=type_,
        severity="high",
        labels=["person"],
        track_ids=[1],
        zone=None,
        start_ts=start,
        end_ts=None,
        peak_score=0.9,
        clip_start_ts=start - 5,
        clip_end_ts=None,
    )


def total(metrics: str, camera: str, type_: str, rule: str) -> float | None:
    labels = f'camera="{camera}",rule="{rule}",type="{type_}"'  # rendered sorted by name
    match = re.search(rf"^cv_incidents_total\{{{re.escape(labels)}\}} (\S+)$", metrics, re.M)
    return float(match.group(1)) if match else None


def test_opened_incidents_are_counted_per_camera_type_and_rule(
    engine: Engine, tmp_path: Path, valkey_url: str
) -> None:
    cam = f"metrics-{uuid.uuid4().hex[:8]}"  # the session's Valkey is shared
    bus = EventBus(valkey_url)
    writer = IncidentWriter(engine, tmp_path, bus)
    try:
        walkway = [incident(cam, "intrusion", "walkway-people") for _ in range(3)]
        for item in [*walkway, incident(cam, "loitering", "gate-loiter")]:
            writer.handle(IncidentOpened(item, b""))
        # Updates and closes are alerts too, but not new incidents.
        first = walkway[0]
        writer.handle(IncidentUpdated(first.id, time.time(), 0.95, [1], True, time.time() + 5))
    finally:
        bus.close()
    settings = ApiSettings(database_url=str(engine.url), redis_url=valkey_url, media_root=tmp_path)
    with TestClient(create_app(settings)) as client:
        metrics = client.get("/metrics").text
    assert "# TYPE cv_incidents_total counter" in metrics
    assert total(metrics, cam, "intrusion", "walkway-people") == 3
    assert total(metrics, cam, "loitering", "gate-loiter") == 1
    assert total(metrics, cam, "intrusion", "gate-loiter") is None

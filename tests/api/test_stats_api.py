"""Traffic counts: stored per minute by the single writer, re-bucketed by the API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import ApiSettings, create_app
from core.bus import EventBus
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from core.storage.writer import IncidentWriter
from core.types import TrafficCount, TrafficCounts
from tests.auth_helpers import sign_in

T0 = 1_795_400_000.0 - 1_795_400_000.0 % 3600  # an hour boundary


@pytest.fixture()
def setup(tmp_path: Path, valkey_url: str) -> Iterator[tuple[IncidentWriter, TestClient]]:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    bus = EventBus(valkey_url)
    writer = IncidentWriter(engine, tmp_path, bus)
    settings = ApiSettings(database_url=url, redis_url=valkey_url, media_root=tmp_path)
    with TestClient(create_app(settings)) as client:
        sign_in(engine, client)
        yield writer, client
    bus.close()
    engine.dispose()


def _count(minute: int, n: int, direction: str = "in", label: str = "car") -> TrafficCount:
    return TrafficCount("gate", "main-road", label, direction, T0 + 60 * minute, 60.0, n)


def test_counts_add_up_per_bucket_and_direction(setup: tuple[IncidentWriter, TestClient]) -> None:
    writer, client = setup
    writer.handle(TrafficCounts([_count(0, 3), _count(1, 2), _count(1, 1, "out")]))
    writer.handle(TrafficCounts([_count(1, 4), _count(20, 5), _count(2, 7, label="motorbike")]))
    params: dict[str, str | float] = {
        "camera_id": "gate",
        "since_ts": T0,
        "until_ts": T0 + 3600,
        "bucket": "15m",
    }
    rows = client.get("/api/stats/traffic", params=params).json()
    got = {(r["bucket_start_ts"] - T0, r["label"], r["direction"]): r["count"] for r in rows}
    assert got == {
        (0.0, "car", "in"): 9,  # minutes 0 and 1, the second flush added to minute 1
        (0.0, "car", "out"): 1,
        (0.0, "motorbike", "in"): 7,
        (900.0, "car", "in"): 5,  # minute 20
    }
    per_minute = client.get("/api/stats/traffic", params={**params, "bucket": "1m"}).json()
    assert sum(r["count"] for r in per_minute) == 22
    other_line = client.get("/api/stats/traffic", params={**params, "line": "side"}).json()
    assert other_line == []


def test_bad_parameters_are_named(setup: tuple[IncidentWriter, TestClient]) -> None:
    _writer, client = setup
    assert client.get("/api/stats/traffic").status_code == 422  # camera_id is required
    r = client.get("/api/stats/traffic", params={"camera_id": "gate", "bucket": "7m"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "bucket"]
    r = client.get(
        "/api/stats/traffic", params={"camera_id": "gate", "since_ts": 10, "until_ts": 5}
    )
    assert r.status_code == 422 and "until_ts" in r.json()["detail"]

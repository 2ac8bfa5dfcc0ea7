"""Readiness against real dependencies going down (a real PostgreSQL server that is
stopped, a Valkey port nobody listens on) and the API's own request metrics."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import ApiSettings, create_app
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from tests.auth_helpers import sign_in
from tests.pg import PostgresServer


@pytest.fixture()
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def app_settings(database_url: str, redis_url: str, tmp_path: Path) -> ApiSettings:
    return ApiSettings(database_url=database_url, redis_url=redis_url, media_root=tmp_path)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ready_when_database_and_bus_answer(
    engine: Engine, tmp_path: Path, valkey_url: str
) -> None:
    with TestClient(create_app(app_settings(str(engine.url), valkey_url, tmp_path))) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "bus": "ok"}}


def test_not_ready_names_the_bus_when_it_is_down(engine: Engine, tmp_path: Path) -> None:
    down = f"redis://127.0.0.1:{closed_port()}/0"
    with TestClient(create_app(app_settings(str(engine.url), down, tmp_path))) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not_ready" and body["checks"]["database"] == "ok"
    assert body["checks"]["bus"].startswith("error: ConnectionError")


def test_not_ready_names_the_database_when_it_stops(tmp_path: Path, valkey_url: str) -> None:
    server = PostgresServer()
    try:
        server.start()
        url = server.new_database()
        pg = make_engine(url)
        upgrade(pg)
        pg.dispose()
        with TestClient(create_app(app_settings(url, valkey_url, tmp_path))) as client:
            assert client.get("/readyz").status_code == 200
            server.stop_server()  # the database goes away under a running API
            ready = client.get("/readyz")
            live = client.get("/healthz")
    finally:
        server.stop()
    assert ready.status_code == 503
    body = ready.json()
    assert body["checks"]["bus"] == "ok"
    assert body["checks"]["database"].startswith("error: OperationalError")
    assert live.status_code == 200  # liveness: the process itself is fine, do not restart it


def _count(metrics: str, route: str, status: str) -> float:
    pattern = (
        r"^cv_api_http_request_duration_seconds_count\{"
        rf'method="GET",route="{re.escape(route)}",status="{status}"\}} (\S+)$'
    )
    match = re.search(pattern, metrics, re.M)
    return float(match.group(1)) if match else 0.0


def test_request_latency_is_labelled_by_route_template(
    engine: Engine, tmp_path: Path, valkey_url: str
) -> None:
    with TestClient(create_app(app_settings(str(engine.url), valkey_url, tmp_path))) as client:
        sign_in(engine, client)
        for incident_id in ("aaaa", "bbbb", "cccc"):
            assert client.get(f"/api/incidents/{incident_id}").status_code == 404
        assert client.get("/healthz").status_code == 200
        assert client.get("/no/such/page").status_code == 404
        metrics = client.get("/metrics").text
    # Three ids, one series: the template is the label, not the path.
    assert _count(metrics, "/api/incidents/{incident_id}", "404") == 3
    assert "/api/incidents/aaaa" not in metrics
    assert _count(metrics, "/healthz", "200") == 1
    assert _count(metrics, "<unmatched>", "404") == 1
    assert "cv_api_http_request_duration_seconds_bucket{" in metrics
    assert "# TYPE cv_api_alert_fanout_seconds histogram" in metrics

"""Live alerts over SSE and the WebSocket, with filters and replay: the real writer
publishing to a real Valkey, the API under a real uvicorn server read by a real
HTTP client (SSE), and the TestClient for the WebSocket."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import ApiSettings, create_app
from api.auth import Role
from core.bus import EventBus
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from core.storage.writer import IncidentWriter
from core.types import Incident, IncidentOpened, new_incident_id
from tests.auth_helpers import role_headers
from tests.live_api import serving, sse


def incident(camera_id: str, type_: str = "intrusion") -> Incident:
    start = time.time()
    return Incident(
        id=new_incident_id(start),
        camera_id=camera_id,
        rule=f"{camera_id}-{type_}",
        type=type_,
        severity="high",
        labels=["person"],
        track_ids=[1],
        zone=None,
        start_ts=start,
        end_ts=None,
        peak_score=0.7,
        clip_start_ts=start - 5,
        clip_end_ts=None,
    )


@pytest.fixture()
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture()
def writer(engine: Engine, tmp_path: Path, valkey_url: str) -> Iterator[IncidentWriter]:
    bus = EventBus(valkey_url)
    yield IncidentWriter(engine, tmp_path / "media", bus)
    bus.close()


def settings(engine: Engine, tmp_path: Path, valkey_url: str, **extra: float) -> ApiSettings:
    return ApiSettings(
        database_url=str(engine.url),
        redis_url=valkey_url,
        media_root=tmp_path / "media",
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture()
def live(engine: Engine, tmp_path: Path, valkey_url: str) -> Iterator[str]:
    with serving(create_app(settings(engine, tmp_path, valkey_url))) as base_url:
        yield base_url


@pytest.fixture()
def viewer(engine: Engine, live: str) -> dict[str, str]:
    return role_headers(engine, live)[Role.VIEWER]


def publish(writer: IncidentWriter, *incidents: Incident) -> None:
    for inc in incidents:
        writer.handle(IncidentOpened(inc, b""))


def fanout_count(base_url: str, headers: dict[str, str], transport: str) -> float:
    text = httpx.get(f"{base_url}/metrics", headers=headers, timeout=10).text
    match = re.search(
        rf'^cv_api_alert_fanout_seconds_count\{{transport="{transport}"\}} (\S+)$', text, re.M
    )
    return float(match.group(1)) if match else 0.0


def test_sse_sends_a_published_incident_with_its_stream_id(
    live: str, viewer: dict[str, str], writer: IncidentWriter
) -> None:
    with sse(live, viewer) as events:
        inc = incident("school")
        publish(writer, inc)
        event = events.next_event()
    assert events.retry_ms == 3000  # EventSource reconnects quickly, with Last-Event-ID
    assert event.id == event.data["id"] and re.fullmatch(r"\d+-\d+", event.id or "")
    assert event.data["kind"] == "opened"
    assert event.data["incident"]["id"] == inc.id
    assert event.data["incident"]["camera_id"] == "school"
    # Live 'opened' alerts feed the fan-out latency histogram.
    assert fanout_count(live, viewer, "sse") == 1


def test_sse_needs_a_login(live: str) -> None:
    assert httpx.get(f"{live}/api/alerts/stream", timeout=10).status_code == 401


def test_sse_filters_by_camera_and_type(
    live: str, viewer: dict[str, str], writer: IncidentWriter
) -> None:
    params: dict[str, str | list[str]] = {"camera_id": ["school", "hall"], "type": "intrusion"}
    wanted = [incident("school"), incident("hall")]
    with sse(live, viewer, params) as events:
        # Other cameras and other types come first: the first event must skip them.
        publish(writer, incident("gate-1"), incident("school", "speeding"), *wanted)
        got = [events.next_event().data["incident"]["id"] for _ in wanted]
    assert got == [i.id for i in wanted]


def test_sse_reconnect_replays_what_was_missed(
    live: str, viewer: dict[str, str], writer: IncidentWriter
) -> None:
    only_school: dict[str, str | list[str]] = {"camera_id": "school"}
    with sse(live, viewer, only_school) as events:
        publish(writer, incident("school"))
        last_seen = events.next_event().id
    assert last_seen is not None
    # Published while the client was away; the gate-1 one is filtered out on replay too.
    missed = [incident("school"), incident("gate-1"), incident("school")]
    publish(writer, *missed)
    expected = [missed[0].id, missed[2].id]

    with sse(live, {**viewer, "Last-Event-ID": last_seen}, only_school) as events:
        replayed = [events.next_event() for _ in expected]
    assert [e.data["incident"]["id"] for e in replayed] == expected
    with sse(live, viewer, {**only_school, "last_id": last_seen}) as events:
        assert [events.next_event().data["incident"]["id"] for _ in expected] == expected
    # The header is what EventSource sends on its own reconnects: it wins over the URL's.
    assert replayed[0].id is not None
    resume = {**viewer, "Last-Event-ID": replayed[0].id}
    with sse(live, resume, {**only_school, "last_id": last_seen}) as events:
        assert events.next_event().data["incident"]["id"] == expected[1]
    # Replays waited for their client: only the one live alert counts as fan-out.
    assert fanout_count(live, viewer, "sse") == 1


def test_sse_rejects_a_malformed_position(live: str, viewer: dict[str, str]) -> None:
    bad = httpx.get(
        f"{live}/api/alerts/stream", params={"last_id": "../x"}, headers=viewer, timeout=10
    )
    assert bad.status_code == 422


def test_sse_heartbeat_keeps_an_idle_connection_alive(
    engine: Engine, tmp_path: Path, valkey_url: str
) -> None:
    app = create_app(settings(engine, tmp_path, valkey_url, alert_heartbeat_s=0.3))
    with serving(app) as base_url:
        viewer = role_headers(engine, base_url)[Role.VIEWER]
        with sse(base_url, viewer, read_timeout_s=3) as events:
            lines = [events.next_line() for _ in range(4)]
    assert lines[0] == "retry: 3000"
    assert ": keepalive" in lines


def test_websocket_filters_by_camera_and_type(
    engine: Engine, tmp_path: Path, valkey_url: str, writer: IncidentWriter
) -> None:
    with TestClient(create_app(settings(engine, tmp_path, valkey_url))) as client:
        headers = role_headers(engine, client)[Role.VIEWER]
        wanted = incident("school")
        url = "/api/alerts/ws?camera_id=school&camera_id=hall&type=intrusion"
        with client.websocket_connect(url, headers=headers) as ws:
            publish(writer, incident("gate-1"), incident("school", "speeding"), wanted)
            message = ws.receive_json()
        assert message["incident"]["id"] == wanted.id and message["kind"] == "opened"
        metrics = client.get("/metrics", headers=headers).text
    assert 'cv_api_alert_fanout_seconds_count{transport="ws"} 1.0' in metrics

"""Redis/Valkey restarted under the running service: no alert is lost or doubled.

The service runs against a Valkey server this test starts itself (``REDIS_URL``),
with a real RTSP camera of pedestrians that keeps opening incidents. The server is
killed twice while incidents keep happening:

1. **restarted with its data** (append-only file, ``appendfsync always``): every
   incident opened during the outage is in the DB and, once the server is back,
   has exactly one ``opened`` alert in the stream, also when a client replays it
   over SSE from the last alert it saw before the outage;
2. **came back empty** (a new server on the same port): the alerts buffered during
   the outage are published once, nothing from before is published again, and a
   ``bus_data_lost`` event says that older alerts can no longer be replayed.

While the server is down ``/healthz`` answers 503 naming the bus, ``/metrics``
still answers with ``cv_bus_up 0``, and signed-in requests get 503 + Retry-After.
The measured recovery times and the lost/duplicated counts are printed (``-s``)
and asserted.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis

from core.bus import (
    EVENT_STREAM,
    INCIDENT_STREAM,
    INCIDENT_TOTALS_HASH,
    EventBus,
    SequencedMessage,
)
from core.outbox import BusOutbox
from tests.reliability.bus_helpers import ValkeyProcess, stats_entry, stream_entries
from tests.reliability.service import (
    Service,
    anyone_camera_yaml,
    free_port,
    start_service,
    wait_for,
)
from tests.rtsp.harness import Mount, RtspServer

OUTAGE_MIN_S = 5.0  # the bus stays down at least this long, and until an incident opened
RECOVERY_BOUND_S = 10.0  # buffered alerts are all in the stream this soon after a restart


@pytest.fixture()
def valkey(tmp_path: Path) -> Iterator[ValkeyProcess]:
    server = ValkeyProcess(free_port())
    server.start(tmp_path / "valkey-1")
    yield server
    server.kill()


@pytest.fixture()
def camera(video) -> Iterator[RtspServer]:  # type: ignore[no-untyped-def]
    with RtspServer().start([Mount("/campus", video("pets2009_vtest_480x360.mp4"))]) as server:
        yield server


@pytest.fixture()
def service(tmp_path: Path, camera: RtspServer, valkey: ValkeyProcess) -> Iterator[Service]:
    # Anyone anywhere in the picture is an incident: pedestrians open them steadily.
    cameras = anyone_camera_yaml(camera.url("/campus"), "{enabled: false}")
    svc = start_service(tmp_path, cameras, env={"REDIS_URL": valkey.url})
    yield svc
    svc.kill()


def _db_incidents(svc: Service) -> list[tuple[str, float]]:
    """(id, created_ts) of every incident, read from SQLite itself: the API's own
    requests check tokens against the bus, so they are no witness while it is down."""
    with sqlite3.connect(f"file:{svc.data_dir / 'commune-vision.db'}?mode=ro", uri=True) as db:
        return [(str(i), float(t)) for i, t in db.execute("SELECT id, created_ts FROM incidents")]


def _alerts(client: redis.Redis) -> list[tuple[str, str, str]]:
    """(entry id, kind, incident id) of the whole incident stream."""
    out = []
    for entry_id, fields in stream_entries(client, INCIDENT_STREAM):
        incident = json.loads(fields[b"data"])
        out.append((entry_id.decode(), fields[b"kind"].decode(), str(incident["id"])))
    return out


def _event_kinds(client: redis.Redis) -> list[str]:
    return [f[b"kind"].decode() for _, f in stream_entries(client, EVENT_STREAM)]


def _opened_counts(client: redis.Redis) -> Counter[str]:
    return Counter(i for _, kind, i in _alerts(client) if kind == "opened")


def _bus_stats(client: redis.Redis) -> dict[str, Any]:
    return stats_entry(client, "bus")


def _outage(svc: Service, valkey: ValkeyProcess) -> tuple[float, list[str]]:
    """Kill the server; keep it down until an incident opened meanwhile. Returns the
    kill time and the ids of the incidents opened while it was down."""
    before = {i for i, _ in _db_incidents(svc)}
    killed_ts = time.time()
    valkey.kill()
    # The outage is visible while it lasts.
    r = httpx.get(f"{svc.base}/healthz", timeout=10)
    assert r.status_code == 503 and r.json()["checks"]["bus"].startswith("error"), r.text
    assert svc.metric("cv_bus_up") == 0.0, "/metrics answers, and says the bus is down"
    # Signed-in requests cannot check their token: a clear "try again", never a 500.
    r = svc.get("/api/incidents")
    assert r.status_code == 503 and r.headers.get("Retry-After"), (r.status_code, r.text)
    time.sleep(OUTAGE_MIN_S)
    wait_for(lambda: {i for i, _ in _db_incidents(svc)} - before, 60, "an incident in the outage")
    assert httpx.get(f"{svc.base}/healthz", timeout=10).status_code == 503
    during = sorted({i for i, _ in _db_incidents(svc)} - before)
    return killed_ts, during


def _wait_published(svc: Service, client: redis.Redis, ids: set[str]) -> float:
    """Seconds until every incident in ``ids`` has its opened alert in the stream."""
    return wait_for(lambda: ids <= set(_opened_counts(client)), 60, f"opened alerts of {ids}")


def _sse_replay(svc: Service, last_id: str, until_id: str) -> list[dict[str, Any]]:
    """What an SSE client that last saw ``last_id`` receives, up to ``until_id``."""
    got: list[dict[str, Any]] = []
    timeout = httpx.Timeout(10.0, read=15.0)
    with httpx.stream(
        "GET",
        f"{svc.base}/api/alerts/stream",
        params={"last_id": last_id},
        headers=svc.headers,
        timeout=timeout,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                got.append(json.loads(line.removeprefix("data: ")))
                if got[-1]["id"] == until_id:
                    break
    return got


def _check_nothing_lost_or_doubled(
    svc: Service, client: redis.Redis, during: list[str], last_seen_id: str
) -> tuple[set[str], dict[str, int]]:
    """After a restart with the data: every stored incident has one opened alert, and
    an SSE client that last saw ``last_seen_id`` is replayed each missed one once."""
    stored = {i for i, _ in _db_incidents(svc)}
    wait_for(lambda: stored <= set(_opened_counts(client)), 30, "every opened alert")
    opened = _opened_counts(client)
    lost = stored - set(opened)
    doubled = {i: n for i, n in opened.items() if n > 1}
    assert not lost and not doubled, (lost, doubled)
    # The incident totals behind /metrics count each opened incident once.
    raw_totals = cast(dict[bytes, bytes], client.hgetall(INCIDENT_TOTALS_HASH))
    totals = sum(int(v) for v in raw_totals.values())
    assert totals == sum(opened.values()), (totals, opened)
    replay = _sse_replay(svc, last_seen_id, _alerts(client)[-1][0])
    replayed = Counter(m["incident"]["id"] for m in replay if m["kind"] == "opened")
    assert set(during) <= set(replayed) and max(replayed.values()) == 1, replayed
    return lost, doubled


@pytest.mark.e2e
def test_redis_restarted_with_data_then_empty_loses_and_doubles_no_alert(
    service: Service, valkey: ValkeyProcess, tmp_path: Path
) -> None:
    client = valkey.client()
    wait_for(lambda: len(_opened_counts(client)) >= 2, 90, "two opened alerts")
    last_seen_id = _alerts(client)[-1][0]  # an SSE client saw up to here

    # -- 1. killed, restarted with its data ---------------------------------------
    killed_ts, during = _outage(service, valkey)
    valkey.start(tmp_path / "valkey-1")
    recovery_1_s = _wait_published(service, client, set(during))
    wait_for(lambda: httpx.get(f"{service.base}/healthz").status_code == 200, 10, "healthz 200")
    lost_1, doubled_1 = _check_nothing_lost_or_doubled(service, client, during, last_seen_id)
    events = _event_kinds(client)
    assert "bus_unavailable" in events and "bus_recovered" in events, events
    wait_for(lambda: service.metric("cv_bus_outages_total") == 1.0, 10, "outage in /metrics")
    assert service.metric("cv_bus_up") == 1.0
    stats = _bus_stats(client)
    assert stats["connected"] and stats["dropped"] == 0 and stats["data_lost"] == 0, stats

    # -- 2. killed, a new empty server on the same port ---------------------------
    before_2 = {i for i, _ in _db_incidents(service)}
    published_before_2 = set(_opened_counts(client))
    killed_2_ts, during_2 = _outage(service, valkey)
    valkey.start(tmp_path / "valkey-2")
    recovery_2_s = _wait_published(service, client, set(during_2))
    wait_for(lambda: "bus_data_lost" in _event_kinds(client), 10, "the bus_data_lost event")
    time.sleep(3.0)  # more incidents after the restart, and the ones open close later

    assert service.stop(signal.SIGINT) == 0, service.log()
    # Every incident opened since the first alert after the restart: exactly once.
    # Those opened before it were published to the server that lost them, and are
    # not published again (an operator saw them live already).
    new_2 = {i for i, _ in _db_incidents(service)} - before_2
    opened_2 = _opened_counts(client)
    doubled_2 = {i: n for i, n in opened_2.items() if n > 1}
    republished = set(opened_2) & published_before_2
    lost_2 = new_2 - set(opened_2)
    assert not doubled_2 and not republished and not lost_2, (doubled_2, republished, lost_2)
    closed = Counter(i for _, kind, i in _alerts(client) if kind == "closed")
    assert new_2 <= set(closed) and max(closed.values()) == 1, ("one close each", closed)
    stats = _bus_stats(client)
    assert stats["dropped"] == 0 and stats["data_lost"] >= 1, stats
    assert "restarting (restart" not in service.log(tail=10**7), "no stage died"

    print(
        f"\nredis fault: outage 1 (with data) {len(during)} incidents buffered, all "
        f"published {recovery_1_s:.2f} s after the restart, lost {len(lost_1)}, duplicated "
        f"{len(doubled_1)}; outage 2 (empty) {len(during_2)} buffered, published in "
        f"{recovery_2_s:.2f} s, lost {len(lost_2)}, duplicated {len(doubled_2)}, "
        f"republished {len(republished)}; outages {killed_2_ts - killed_ts:.0f} s apart"
    )
    assert recovery_1_s < RECOVERY_BOUND_S and recovery_2_s < RECOVERY_BOUND_S


# -- the outbox alone, against a real server ----------------------------------------


def _incident(incident_id: str) -> dict[str, Any]:
    return {"id": incident_id, "camera_id": "gate", "type": "intrusion", "rule": "gate-night"}


def test_outbox_memory_is_bounded_and_updates_go_first(tmp_path: Path) -> None:
    server = ValkeyProcess(free_port())
    bus = EventBus(server.url)
    outbox = BusOutbox(bus, max_items=4)
    # The bus is not there yet: everything waits, and the fifth message on makes room.
    outbox.publish_incident("opened", _incident("a"))
    for n in range(5):
        outbox.publish_incident("updated", {**_incident("a"), "n": n})
    outbox.publish_incident("closed", _incident("a"))
    assert outbox.stats()["pending"] == 4 and outbox.stats()["dropped"] == 3
    server.start(tmp_path / "valkey")
    try:
        outbox.start()
        wait_for(lambda: outbox.stats()["pending"] == 0, 10, "the outbox drained")
        entries = stream_entries(server.client(), INCIDENT_STREAM)
        kinds = [(f[b"kind"].decode(), json.loads(f[b"data"]).get("n")) for _, f in entries]
        # The opening and the close are kept; the newest updates survive the oldest.
        assert kinds == [("opened", None), ("updated", 3), ("updated", 4), ("closed", None)]
        assert outbox.stop() == 0
    finally:
        server.kill()


def test_a_retried_publish_is_not_added_twice(tmp_path: Path) -> None:
    server = ValkeyProcess(free_port())
    server.start(tmp_path / "valkey")
    try:
        bus = EventBus(server.url)
        message = SequencedMessage(
            1, INCIDENT_STREAM, "opened", json.dumps(_incident("a")), "f", 10
        )
        first, lost = bus.publish_sequenced(message, "session", 0)
        # The reply was lost with the connection; the outbox sends the same message again.
        again, _ = bus.publish_sequenced(message, "session", 0)
        assert first and not lost and again is None
        assert len(stream_entries(server.client(), INCIDENT_STREAM)) == 1
        assert server.client().hget(INCIDENT_TOTALS_HASH, "f") == b"1"
        # A new session (the store restarted) starts its numbers again.
        assert bus.publish_sequenced(message, "restarted", 0)[0]
        # A server without the marker of what this session published lost its data.
        server.client().flushall()
        _, lost = bus.publish_sequenced(replace(message, seq=2), "restarted", 1)
        assert lost
    finally:
        server.kill()

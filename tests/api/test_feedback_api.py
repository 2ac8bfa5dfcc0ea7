"""The false-positive loop through the API: rates and suggestions on a seeded set of
incidents reviewed through the real routes (expectations computed by hand), and
"suppress similar" making a new, audited, announced config version."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from api.auth import Role
from core.bus import CONFIG_CHANNEL
from tests.api.review_helpers import CAMERA, ReviewEnv, review_env
from tests.pg import DB_KINDS, db_url_for

ADMIN, OPERATOR, POLICE, VIEWER = Role.ADMIN, Role.OPERATOR, Role.POLICE, Role.VIEWER
T0 = 1_700_000_000.0  # the seeded set lives in [T0, T0 + 1000): other tests do not touch it
WINDOW = {"since_ts": T0, "until_ts": T0 + 1000}
GATE_2 = {**CAMERA, "id": "gate-2", "url": "rtsp://admin:s3cr3t-pa55@10.0.0.8/102"}


@pytest.fixture(scope="module", params=DB_KINDS)
def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, valkey_url: str
) -> Iterator[ReviewEnv]:
    folder = tmp_path_factory.mktemp("feedback-api")
    # Every test here runs on SQLite and on a real PostgreSQL.
    with review_env(folder, valkey_url, db_url_for(request, folder)) as env:
        for camera in (CAMERA, GATE_2):
            added = env.client.post("/api/cameras", json=camera, headers=env.headers[ADMIN])
            assert added.status_code == 201, added.text
        yield env


def decide(env: ReviewEnv, incident_id: str, verdict: str, close: bool = False) -> None:
    """Review as an officer would: confirm, or false alarm with its category."""
    police = env.headers[POLICE]
    if verdict == "confirmed":
        got = env.client.post(f"/api/incidents/{incident_id}/confirm", headers=police)
    else:
        got = env.client.post(
            f"/api/incidents/{incident_id}/false-alarm", json={"category": verdict}, headers=police
        )
    assert got.status_code == 200, got.text
    if close:
        closed = env.client.post(f"/api/incidents/{incident_id}/close", headers=police)
        assert closed.status_code == 200, closed.text


@pytest.fixture(scope="module")
def seeded(env: ReviewEnv) -> None:
    t = iter(range(1, 1000))

    def at() -> float:
        return T0 + next(t)

    # gate-1 / yard-people: 6 confirmed, 6 false alarms (peak scores chosen by hand), 2 open.
    for i, peak in enumerate([0.62, 0.7, 0.75, 0.8, 0.85, 0.9]):
        decide(env, env.incident(peak=peak, start_ts=at()).id, "confirmed", close=i < 2)
    false_alarms = [(0.4, "shadow"), (0.45, "shadow"), (0.5, "shadow")]
    false_alarms += [(0.55, "animal"), (0.61, "animal"), (0.66, "weather")]
    for i, (peak, category) in enumerate(false_alarms):
        decide(env, env.incident(peak=peak, start_ts=at()).id, category, close=i == 0)
    env.incident(peak=0.3, start_ts=at())  # new: not reviewed
    open_one = env.incident(peak=0.95, start_ts=at())
    acked = env.client.post(
        f"/api/incidents/{open_one.id}/acknowledge", headers=env.headers[OPERATOR]
    )
    assert acked.status_code == 200
    # gate-1 / road-people: 1 confirmed, 2 false alarms.
    decide(
        env, env.incident(rule="road-people", zone="road", peak=0.9, start_ts=at()).id, "confirmed"
    )
    for peak in (0.55, 0.6):
        road = env.incident(rule="road-people", zone="road", peak=peak, start_ts=at())
        decide(env, road.id, "reflection")
    # A camera that is no longer configured, a rule without a zone.
    decide(env, env.incident("market-1", "crowd", None, 0.7, at(), "crowding").id, "other")
    # Before the window: must not count.
    decide(env, env.incident(peak=0.2, start_ts=T0 - 3600).id, "shadow")


def test_false_alarm_rates_per_camera_rule_zone(env: ReviewEnv, seeded: None) -> None:
    got = env.client.get(
        "/api/feedback/false-alarm-rates", params=WINDOW, headers=env.headers[VIEWER]
    )
    assert got.status_code == 200, got.text
    rows = {(r["camera_id"], r["rule"], r["zone"]): r for r in got.json()}
    assert list(rows) == [
        ("gate-1", "road-people", "road"),
        ("gate-1", "yard-people", "yard"),
        ("market-1", "crowd", None),
    ]
    yard = rows["gate-1", "yard-people", "yard"]
    assert (yard["incidents"], yard["reviewed"], yard["confirmed"], yard["false_alarms"]) == (
        14,
        12,
        6,
        6,
    )
    assert yard["rate"] == pytest.approx(0.5)
    assert yard["categories"] == {"shadow": 3, "animal": 2, "weather": 1}
    road = rows["gate-1", "road-people", "road"]
    assert (road["reviewed"], road["false_alarms"], road["rate"]) == (3, 2, pytest.approx(2 / 3))
    assert rows["market-1", "crowd", None]["rate"] == pytest.approx(1.0)

    later = env.client.get(
        "/api/feedback/false-alarm-rates",
        params={"since_ts": T0 + 999, "until_ts": T0 + 2000},
        headers=env.headers[VIEWER],
    )
    assert later.json() == []
    bad = env.client.get(
        "/api/feedback/false-alarm-rates",
        params={"since_ts": 10, "until_ts": 5},
        headers=env.headers[VIEWER],
    )
    assert bad.status_code == 422 and "until_ts" in bad.json()["detail"]


def test_suggestions_from_the_reviewed_history(env: ReviewEnv, seeded: None) -> None:
    got = env.client.get("/api/feedback/suggestions", params=WINDOW, headers=env.headers[POLICE])
    assert got.status_code == 200, got.text
    # yard-people: 0.62 is the highest threshold keeping ≥ 95 % of confirmed (all 6:
    # the lowest confirmed peak is 0.62) and it removes the 5 false alarms below 0.62;
    # road-people has 3 verdicts (< 10); market-1 is not configured.
    assert got.json() == [
        {
            "camera_id": "gate-1",
            "rule": "yard-people",
            "rule_type": "intrusion",
            "reviewed": 12,
            "confirmed": 6,
            "false_alarms": 6,
            "current_min_confidence": 0.35,
            "suggested_min_confidence": 0.62,
            "false_alarms_removed": 5,
            "confirmed_kept": 6,
            "false_alarm_reduction": pytest.approx(5 / 6),
            "confirmed_retention": 1.0,
        }
    ]
    fewer = env.client.get(
        "/api/feedback/suggestions",
        params={**WINDOW, "min_reviewed": 3},
        headers=env.headers[POLICE],
    ).json()
    road = next(s for s in fewer if s["rule"] == "road-people")
    # 0.56 removes 1 of 2 false alarms, 0.61 both; the confirmed 0.9 stays either way.
    assert (road["suggested_min_confidence"], road["false_alarms_removed"]) == (0.61, 2)
    assert road["current_min_confidence"] == 0.5
    assert (
        env.client.get("/api/feedback/suggestions", headers=env.headers[OPERATOR]).status_code
        == 403
    )


def announcement(pubsub: redis.client.PubSub) -> int:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=1)
        if message is not None:
            return int(message["data"])
    raise AssertionError("no config announcement on Redis")


def test_suppress_similar_makes_an_audited_announced_version(
    env: ReviewEnv, valkey_url: str
) -> None:
    inc = env.incident("gate-2", "road-people", "road", peak=0.71)
    police = env.headers[POLICE]
    url = f"/api/incidents/{inc.id}/suppress-similar"
    not_yet = env.client.post(url, headers=police)
    assert (
        not_yet.status_code == 409 and "mark it as a false alarm first" in not_yet.json()["detail"]
    )
    decide(env, inc.id, "reflection")
    assert env.client.post(url, headers=env.headers[OPERATOR]).status_code == 403

    pubsub = redis.Redis.from_url(valkey_url).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(CONFIG_CHANNEL)
    got = env.client.post(url, headers=police)
    assert got.status_code == 201, got.text
    body: dict[str, Any] = got.json()
    assert announcement(pubsub) == body["version"]
    pubsub.close()
    assert (body["camera_id"], body["rule"], body["zone"]) == ("gate-2", "road-people", "road")
    assert (body["before"], body["after"]) == ({"min_confidence": 0.5}, {"min_confidence": 0.72})
    assert inc.id in body["comment"]

    version = env.client.get(
        f"/api/config/versions/{body['version']}", headers=env.headers[VIEWER]
    ).json()
    assert version["author"] == "user:test-police" and inc.id in version["comment"]
    cameras = {c["id"]: c for c in version["cameras"]}
    rules = {r["name"]: r for r in cameras["gate-2"]["rules"]}
    assert rules["road-people"]["min_confidence"] == 0.72
    assert rules["yard-people"]["min_confidence"] == 0.35  # only the incident's rule
    assert {r["name"]: r["min_confidence"] for r in cameras["gate-1"]["rules"]}[
        "road-people"
    ] == 0.5
    assert "s3cr3t" not in str(version)

    audit = env.client.get(
        "/api/audit",
        params={"actor": "user:test-police", "entity_type": "camera"},
        headers=env.headers[ADMIN],
    ).json()["items"][0]
    assert (audit["action"], audit["entity_id"]) == ("camera.suppress_similar", "gate-2")
    assert audit["before"] == {"rules.road-people": {"min_confidence": 0.5}}
    assert audit["after"]["config_version"] == body["version"]
    history = env.client.get(f"/api/incidents/{inc.id}/history", headers=police).json()
    assert history[-1]["action"] == "incident.suppress_similar"

    again = env.client.post(url, headers=police)
    assert again.status_code == 409 and "nothing to raise" in again.json()["detail"]
    tamper = env.incident("gate-2", "lens", None, 1.0, type_="tamper")
    decide(env, tamper.id, "camera_moved")
    unsupported = env.client.post(f"/api/incidents/{tamper.id}/suppress-similar", headers=police)
    assert unsupported.status_code == 422 and "tamper" in unsupported.json()["detail"]
    assert (
        env.client.post("/api/incidents/ffff/suppress-similar", headers=police).status_code == 404
    )

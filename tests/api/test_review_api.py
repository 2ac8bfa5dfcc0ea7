"""Police review through the API with real logins: every transition, the errors, the
roles, assignment, notes, the incident's history, the audit log and the live alert."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from typing import Any, cast

import pytest
import redis
from sqlalchemy.orm import Session

from api.auth import Role
from core.bus import INCIDENT_STREAM
from core.storage.models import IncidentRow
from core.storage.review import TRANSITIONS
from tests.api.review_helpers import ReviewEnv, review_env
from tests.auth_helpers import create_user
from tests.pg import DB_KINDS, db_url_for

# redis-py's stream replies, with decode_responses off.
StreamReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]
ADMIN, OPERATOR, POLICE, VIEWER = Role.ADMIN, Role.OPERATOR, Role.POLICE, Role.VIEWER
ROUTE = {
    "acknowledge": "acknowledge",
    "confirm": "confirm",
    "false_alarm": "false-alarm",
    "close": "close",
    "reopen": "reopen",
}
# The least privileged role allowed to take each action.
ACTOR_ROLE = {
    "acknowledge": OPERATOR,
    "confirm": POLICE,
    "false_alarm": POLICE,
    "close": POLICE,
    "reopen": ADMIN,
}


@pytest.fixture(scope="module", params=DB_KINDS)
def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, valkey_url: str
) -> Iterator[ReviewEnv]:
    folder = tmp_path_factory.mktemp("review-api")
    # Every test here runs on SQLite and on a real PostgreSQL.
    with review_env(folder, valkey_url, db_url_for(request, folder)) as env:
        yield env


def review(
    env: ReviewEnv, incident_id: str, action: str, role: Role, **body: Any
) -> Any:  # the httpx response
    return env.client.post(
        f"/api/incidents/{incident_id}/{ROUTE[action]}", json=body, headers=env.headers[role]
    )


def set_status(env: ReviewEnv, incident_id: str, status: str, category: str | None) -> None:
    """Arrange a starting status directly (the transitions into it have their own cases)."""
    with Session(env.engine) as session, session.begin():
        row = session.get(IncidentRow, incident_id)
        assert row is not None
        row.status, row.false_alarm_category = status, category


LEGAL = [(s, a.value) for a, (sources, _) in TRANSITIONS.items() for s in sorted(sources)]


@pytest.mark.parametrize(("start", "action"), LEGAL)
def test_every_legal_transition_through_the_api(env: ReviewEnv, start: str, action: str) -> None:
    inc = env.incident()
    set_status(env, inc.id, start, "shadow" if start in ("false_alarm", "closed") else None)
    body = {"category": "animal"} if action == "false_alarm" else {}
    got = review(env, inc.id, action, ACTOR_ROLE[action], expected_status=start, **body)
    assert got.status_code == 200, got.text
    assert got.json()["status"] == TRANSITIONS[action][1]  # type: ignore[index]
    [entry] = env.client.get(
        f"/api/incidents/{inc.id}/history", headers=env.headers[OPERATOR]
    ).json()
    assert entry["actor"] == f"user:test-{ACTOR_ROLE[action].value}"
    assert entry["action"] == f"incident.{action}"
    assert (entry["before"]["status"], entry["after"]["status"]) == (start, got.json()["status"])


def test_a_review_from_alarm_to_closed_and_back(env: ReviewEnv) -> None:
    inc = env.incident()
    url = f"/api/incidents/{inc.id}"
    assert review(env, inc.id, "acknowledge", OPERATOR).json()["status"] == "acknowledged"
    confirmed = review(env, inc.id, "confirm", POLICE, note="two men at the gate")
    assert confirmed.json()["status"] == "confirmed" and confirmed.json()["updated_ts"]
    # The verdict can be corrected until it is closed.
    fa = review(env, inc.id, "false_alarm", POLICE, category="reflection")
    assert (fa.json()["status"], fa.json()["false_alarm_category"]) == ("false_alarm", "reflection")
    closed = review(env, inc.id, "close", ADMIN)
    assert (closed.json()["status"], closed.json()["false_alarm_category"]) == (
        "closed",
        "reflection",
    )
    assert review(env, inc.id, "reopen", POLICE).status_code == 403  # admins only
    reopened = review(env, inc.id, "reopen", ADMIN)
    assert (reopened.json()["status"], reopened.json()["false_alarm_category"]) == (
        "acknowledged",
        None,
    )
    shown = env.client.get(url, headers=env.headers[VIEWER]).json()
    assert shown["status"] == "acknowledged" and shown["updated_ts"] >= closed.json()["updated_ts"]

    history = env.client.get(f"{url}/history", headers=env.headers[POLICE]).json()
    assert [(e["action"], e["actor"]) for e in history] == [
        ("incident.acknowledge", "user:test-operator"),
        ("incident.confirm", "user:test-police"),
        ("incident.note", "user:test-police"),
        ("incident.false_alarm", "user:test-police"),
        ("incident.close", "user:test-admin"),
        ("incident.reopen", "user:test-admin"),
    ]
    assert history[3]["before"] == {"status": "confirmed", "false_alarm_category": None}
    assert history[3]["after"] == {"status": "false_alarm", "false_alarm_category": "reflection"}
    assert history[2]["after"]["text"] == "two men at the gate"


def test_illegal_and_stale_transitions_are_409_with_the_reason(env: ReviewEnv) -> None:
    inc = env.incident()
    illegal = review(env, inc.id, "close", POLICE)
    assert illegal.status_code == 409
    assert illegal.json()["detail"] == (
        "cannot go from 'new' to 'closed'; allowed: acknowledged, confirmed, false_alarm"
    )
    assert review(env, inc.id, "reopen", ADMIN).status_code == 409
    # Two officers saw it as new; the first decides, the second is told, not overwritten.
    first = review(env, inc.id, "confirm", POLICE, expected_status="new")
    second = review(env, inc.id, "false_alarm", ADMIN, category="shadow", expected_status="new")
    assert first.status_code == 200 and second.status_code == 409
    assert "not the expected 'new'" in second.json()["detail"]
    again = review(env, inc.id, "confirm", POLICE)
    assert again.status_code == 409 and "already 'confirmed'" in again.json()["detail"]
    assert review(env, "ffff", "acknowledge", OPERATOR).status_code == 404


def test_false_alarm_needs_a_known_category(env: ReviewEnv) -> None:
    inc = env.incident()
    missing = review(env, inc.id, "false_alarm", POLICE)
    assert missing.status_code == 422
    assert [e["loc"] for e in missing.json()["detail"]] == [["body", "category"]]
    unknown = review(env, inc.id, "false_alarm", POLICE, category="ghost")
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"][-1] == "category"
    assert "shadow" in unknown.json()["detail"][0]["msg"]
    blank_note = review(env, inc.id, "confirm", POLICE, note="  ")
    assert blank_note.status_code == 422 and blank_note.json()["detail"].startswith("note:")
    status = env.client.get(f"/api/incidents/{inc.id}", headers=env.headers[VIEWER])
    assert status.json()["status"] == "new"


def test_roles_of_the_review_routes(env: ReviewEnv) -> None:
    inc = env.incident()
    assert review(env, inc.id, "acknowledge", VIEWER).status_code == 403
    assert review(env, inc.id, "confirm", OPERATOR).status_code == 403
    assert review(env, inc.id, "false_alarm", OPERATOR, category="animal").status_code == 403
    assert env.client.post(f"/api/incidents/{inc.id}/acknowledge").status_code == 401
    put = env.client.put(
        f"/api/incidents/{inc.id}/assignee",
        json={"assignee": "test-police"},
        headers=env.headers[OPERATOR],
    )
    assert put.status_code == 403
    note = env.client.post(
        f"/api/incidents/{inc.id}/notes", json={"text": "x"}, headers=env.headers[VIEWER]
    )
    assert note.status_code == 403
    for path in ("notes", "history"):
        got = env.client.get(f"/api/incidents/{inc.id}/{path}", headers=env.headers[VIEWER])
        assert got.status_code == 403


def test_assignee_must_be_an_active_user(env: ReviewEnv) -> None:
    inc = env.incident()
    url = f"/api/incidents/{inc.id}/assignee"
    police = env.headers[POLICE]
    unknown = env.client.put(url, json={"assignee": "nobody"}, headers=police)
    assert unknown.status_code == 422
    assert unknown.json()["detail"].startswith("assignee: no active user 'nobody'")
    create_user(env.engine, "gone-officer", "correct horse battery staple", POLICE)
    deactivated = env.client.patch(
        "/api/users/gone-officer", json={"active": False}, headers=env.headers[ADMIN]
    )
    assert deactivated.status_code == 200, deactivated.text
    inactive = env.client.put(url, json={"assignee": "gone-officer"}, headers=police)
    assert inactive.status_code == 422
    assigned = env.client.put(url, json={"assignee": "test-police"}, headers=police)
    assert assigned.status_code == 200 and assigned.json()["assignee"] == "test-police"
    cleared = env.client.put(url, json={"assignee": None}, headers=env.headers[ADMIN])
    assert cleared.json()["assignee"] is None
    assert env.client.put(url, json={}, headers=police).status_code == 422  # say null to unassign
    history = env.client.get(f"/api/incidents/{inc.id}/history", headers=police).json()
    assert [(e["before"], e["after"]) for e in history] == [
        ({"assignee": None}, {"assignee": "test-police"}),
        ({"assignee": "test-police"}, {"assignee": None}),
    ]


def test_notes_are_added_and_listed_in_order(env: ReviewEnv) -> None:
    inc = env.incident()
    url = f"/api/incidents/{inc.id}/notes"
    first = env.client.post(
        url, json={"text": "Đã liên hệ công an xã"}, headers=env.headers[OPERATOR]
    )
    assert first.status_code == 201 and first.json()["author"] == "user:test-operator"
    longest = env.client.post(url, json={"text": "x" * 4000}, headers=env.headers[POLICE])
    assert longest.status_code == 201
    for bad in ("", "x" * 4001):
        got = env.client.post(url, json={"text": bad}, headers=env.headers[POLICE])
        assert got.status_code == 422 and got.json()["detail"][0]["loc"] == ["body", "text"]
    listed = env.client.get(url, headers=env.headers[POLICE]).json()
    assert [n["id"] for n in listed] == [first.json()["id"], longest.json()["id"]]
    assert listed[0]["text"] == "Đã liên hệ công an xã"
    missing = env.client.get("/api/incidents/ffff/notes", headers=env.headers[POLICE])
    assert missing.status_code == 404
    assert (
        env.client.get("/api/incidents/ffff/history", headers=env.headers[POLICE]).status_code
        == 404
    )


def test_review_changes_arrive_on_the_incident_stream(env: ReviewEnv, valkey_url: str) -> None:
    bus = redis.Redis.from_url(valkey_url)
    inc = env.incident()  # its "opened" alert is on the stream: read from there on
    newest = cast(list[tuple[bytes, Any]], bus.xrevrange(INCIDENT_STREAM, count=1))
    last = newest[0][0]
    review(env, inc.id, "acknowledge", OPERATOR)
    env.client.put(
        f"/api/incidents/{inc.id}/assignee",
        json={"assignee": "test-police"},
        headers=env.headers[POLICE],
    )
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        reply = cast(StreamReply, bus.xread({INCIDENT_STREAM: last}, block=500))
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                last = entry_id
                data = json.loads(fields[b"data"])
                if fields[b"kind"] == b"review" and data["id"] == inc.id:
                    seen.append(data)
    bus.close()
    assert [(d["status"], d["assignee"]) for d in seen] == [
        ("acknowledged", None),
        ("acknowledged", "test-police"),
    ]


def test_audit_log_shows_every_change_and_cannot_be_changed(env: ReviewEnv) -> None:
    inc = env.incident()
    since = time.time() - 1
    review(env, inc.id, "acknowledge", OPERATOR)
    review(env, inc.id, "confirm", POLICE)
    locked = env.client.put(f"/api/incidents/{inc.id}/evidence-lock", headers=env.headers[POLICE])
    assert locked.status_code == 200 and locked.json()["evidence_locked"] is True
    unlocked = env.client.delete(
        f"/api/incidents/{inc.id}/evidence-lock", headers=env.headers[ADMIN]
    )
    assert unlocked.status_code == 200

    admin = env.headers[ADMIN]
    params: dict[str, str | float] = {
        "entity_type": "incident",
        "entity_id": inc.id,
        "since_ts": since,
    }
    page = env.client.get("/api/audit", params=params, headers=admin).json()
    assert [(e["action"], e["actor"], e["before"], e["after"]) for e in page["items"]] == [
        (
            "incident.evidence_unlock",
            "user:test-admin",
            {"evidence_locked": True},
            {"evidence_locked": False},
        ),
        (
            "incident.evidence_lock",
            "user:test-police",
            {"evidence_locked": False},
            {"evidence_locked": True},
        ),
        (
            "incident.confirm",
            "user:test-police",
            {"status": "acknowledged"},
            {"status": "confirmed"},
        ),
        (
            "incident.acknowledge",
            "user:test-operator",
            {"status": "new"},
            {"status": "acknowledged"},
        ),
    ]
    assert page["next_cursor"] is None
    first = env.client.get("/api/audit", params={**params, "limit": 3}, headers=admin).json()
    rest = env.client.get(
        "/api/audit", params={**params, "limit": 3, "cursor": first["next_cursor"]}, headers=admin
    ).json()
    assert [e["id"] for e in first["items"] + rest["items"]] == [e["id"] for e in page["items"]]
    by_actor = env.client.get(
        "/api/audit", params={**params, "actor": "user:test-operator"}, headers=admin
    ).json()
    assert [e["action"] for e in by_actor["items"]] == ["incident.acknowledge"]

    assert env.client.get("/api/audit", headers=env.headers[POLICE]).status_code == 403
    bad_range = env.client.get("/api/audit", params={"since_ts": 5, "until_ts": 1}, headers=admin)
    assert bad_range.status_code == 422 and "until_ts" in bad_range.json()["detail"]
    entry_id = page["items"][0]["id"]
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in ("/api/audit", f"/api/audit/{entry_id}"):
            assert env.client.request(method, path, headers=admin).status_code in (404, 405)
    # The whole API, as it documents itself: the audit log has one route, and it reads.
    paths = env.client.app.openapi()["paths"]  # type: ignore[attr-defined]
    audit_paths = {p: sorted(ops) for p, ops in paths.items() if p.startswith("/api/audit")}
    assert audit_paths == {"/api/audit": ["get"]}


def test_evidence_package_carries_the_review_history(env: ReviewEnv) -> None:
    inc = env.incident()
    review(env, inc.id, "acknowledge", OPERATOR, note="guard sent")
    review(env, inc.id, "confirm", POLICE)
    got = env.client.get(f"/api/incidents/{inc.id}/evidence.zip", headers=env.headers[POLICE])
    assert got.status_code == 200, got.text
    with zipfile.ZipFile(io.BytesIO(got.content)) as zf:
        history = json.loads(zf.read("history.json"))
    assert [(h["action"], h.get("actor")) for h in history] == [
        ("created", None),
        ("incident.acknowledge", "user:test-operator"),
        ("incident.note", "user:test-operator"),
        ("incident.confirm", "user:test-police"),
        ("exported", None),
    ]
    assert history[2]["after"]["text"] == "guard sent"

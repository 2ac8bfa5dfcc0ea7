"""Every route of the real app, called with no credentials, as each role and with an
API key of each role, against the declared access table below.

A route missing from the table fails the suite: a new route cannot ship without
someone deciding who may call it. The table is the "Roles" section of docs/api.md.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from fastapi import FastAPI
from fastapi.routing import APIWebSocketRoute, RouteContext, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocketDisconnect

from api.app import ApiSettings, create_app
from api.auth import ADMIN_ONLY, EVERYONE, MEDIA, REVIEW, Role, declared_roles
from api.security import SESSION_COOKIE
from core.bus import EventBus
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from tests.auth_helpers import api_key_headers, role_headers

PUBLIC: Literal["public"] = "public"
Access = tuple[Role, ...] | Literal["public"]
Key = tuple[str, str]  # (method or "WS", path template)

EXPECTED: dict[Key, Access] = {
    # Public: probes, Prometheus on the LAN, logging in and out, the API docs.
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("POST", "/api/auth/login"): PUBLIC,
    ("POST", "/api/auth/logout"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    # The console's static shell (no data; every data route it calls checks roles).
    ("GET", "/"): PUBLIC,
    ("GET", "/console/{path:path}"): PUBLIC,
    # Own account.
    ("GET", "/api/auth/me"): EVERYONE,
    ("POST", "/api/auth/password"): EVERYONE,
    # Watching: cameras, incidents, events, stats, config history, live alerts.
    ("GET", "/api/cameras"): EVERYONE,
    ("GET", "/api/workers"): EVERYONE,
    ("GET", "/api/cameras/{camera_id}"): EVERYONE,
    ("GET", "/api/cameras/{camera_id}/health"): EVERYONE,
    ("GET", "/api/cameras/{camera_id}/timeline"): EVERYONE,
    ("GET", "/api/cameras/{camera_id}/snapshot.jpg"): EVERYONE,
    ("GET", "/api/cameras/{camera_id}/live.mjpeg"): EVERYONE,
    ("GET", "/api/cameras/{camera_id}/detections/latest"): EVERYONE,
    ("GET", "/api/incidents"): EVERYONE,
    ("GET", "/api/incidents/{incident_id}"): EVERYONE,
    ("GET", "/api/incidents/{incident_id}/snapshot"): EVERYONE,
    ("GET", "/api/events"): EVERYONE,
    ("GET", "/api/stats/traffic"): EVERYONE,
    ("GET", "/api/stats/incidents"): EVERYONE,
    ("GET", "/api/feedback/false-alarm-rates"): EVERYONE,
    ("GET", "/api/config/versions"): EVERYONE,
    ("GET", "/api/config/versions/{version_id}"): EVERYONE,
    ("WS", "/api/alerts/ws"): EVERYONE,
    ("GET", "/api/alerts/stream"): EVERYONE,
    # Footage.
    ("GET", "/api/cameras/{camera_id}/footage.mp4"): MEDIA,
    ("GET", "/api/cameras/{camera_id}/footage.m3u8"): MEDIA,
    ("GET", "/api/recordings/segments/{segment_id}.ts"): MEDIA,
    ("GET", "/api/recordings/segments/{segment_id}.mp4"): MEDIA,
    ("GET", "/api/incidents/{incident_id}/clip.mp4"): MEDIA,
    # Operator work on incidents (declared MEDIA by the review workflow).
    ("POST", "/api/incidents/{incident_id}/acknowledge"): MEDIA,
    ("GET", "/api/incidents/{incident_id}/notes"): MEDIA,
    ("POST", "/api/incidents/{incident_id}/notes"): MEDIA,
    ("GET", "/api/incidents/{incident_id}/history"): MEDIA,
    # Police review and evidence.
    ("PUT", "/api/incidents/{incident_id}/evidence-lock"): REVIEW,
    ("DELETE", "/api/incidents/{incident_id}/evidence-lock"): REVIEW,
    ("GET", "/api/incidents/{incident_id}/evidence.zip"): REVIEW,
    ("POST", "/api/incidents/{incident_id}/confirm"): REVIEW,
    ("POST", "/api/incidents/{incident_id}/false-alarm"): REVIEW,
    ("POST", "/api/incidents/{incident_id}/close"): REVIEW,
    ("PUT", "/api/incidents/{incident_id}/assignee"): REVIEW,
    ("POST", "/api/incidents/{incident_id}/suppress-similar"): REVIEW,
    ("GET", "/api/feedback/suggestions"): REVIEW,
    # Administration.
    ("POST", "/api/incidents/{incident_id}/reopen"): ADMIN_ONLY,
    ("POST", "/api/cameras"): ADMIN_ONLY,
    ("POST", "/api/cameras/test"): ADMIN_ONLY,
    ("PUT", "/api/cameras/{camera_id}"): ADMIN_ONLY,
    ("DELETE", "/api/cameras/{camera_id}"): ADMIN_ONLY,
    ("POST", "/api/config/versions/{version_id}/rollback"): ADMIN_ONLY,
    ("GET", "/api/audit"): ADMIN_ONLY,
    ("GET", "/api/users"): ADMIN_ONLY,
    ("POST", "/api/users"): ADMIN_ONLY,
    ("PATCH", "/api/users/{username}"): ADMIN_ONLY,
    ("GET", "/api/users/api-keys"): ADMIN_ONLY,
    ("POST", "/api/users/api-keys"): ADMIN_ONLY,
    ("DELETE", "/api/users/api-keys/{key_id}"): ADMIN_ONLY,
    ("GET", "/api/webhooks"): ADMIN_ONLY,
    ("POST", "/api/webhooks"): ADMIN_ONLY,
    ("GET", "/api/webhooks/{webhook_id}"): ADMIN_ONLY,
    ("PATCH", "/api/webhooks/{webhook_id}"): ADMIN_ONLY,
    ("DELETE", "/api/webhooks/{webhook_id}"): ADMIN_ONLY,
    ("POST", "/api/webhooks/{webhook_id}/test"): ADMIN_ONLY,
    ("GET", "/api/webhooks/{webhook_id}/deliveries"): ADMIN_ONLY,
    ("POST", "/api/replays"): ADMIN_ONLY,
    ("GET", "/api/replays"): ADMIN_ONLY,
    ("GET", "/api/replays/{replay_id}"): ADMIN_ONLY,
    ("DELETE", "/api/replays/{replay_id}"): ADMIN_ONLY,
}

# Logging out revokes the caller's token: call it last with each credential.
LAST = ("POST", "/api/auth/logout")


def _routes(app: FastAPI) -> dict[Key, RouteContext]:
    found: dict[Key, RouteContext] = {}
    for context in iter_route_contexts(app.routes):
        path = context.path or "?"
        if isinstance(context.original_route, APIWebSocketRoute | WebSocketRoute):
            found[("WS", path)] = context
            continue
        methods = set(context.methods or {"ANY"})  # a mount: someone must decide
        if "GET" in methods:
            methods.discard("HEAD")  # HEAD answers like GET
        for method in methods:
            found[(method, path)] = context
    return found


def _describe(key: Key, context: RouteContext) -> str:
    roles = declared_roles(getattr(context, "dependant", None))
    declared = "NO require()" if roles is None else f"require({', '.join(sorted(roles))})"
    return f"    {key!r}: ...,  # declares {declared}"


@pytest.fixture()
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture()
def app(engine: Engine, tmp_path: Path, valkey_url: str) -> FastAPI:
    return create_app(
        ApiSettings(database_url=str(engine.url), redis_url=valkey_url, media_root=tmp_path)
    )


def test_every_route_is_in_the_table(app: FastAPI) -> None:
    routes = _routes(app)
    missing = sorted(set(routes) - set(EXPECTED))
    stale = sorted(set(EXPECTED) - set(routes))
    assert not missing, (
        "routes with no entry in EXPECTED (tests/api/test_role_matrix.py) and docs/api.md "
        "'Roles': decide who may call them, then add:\n"
        + "\n".join(_describe(k, routes[k]) for k in missing)
    )
    assert not stale, f"EXPECTED lists routes the app no longer has: {stale}"


def test_declared_roles_match_the_table(app: FastAPI) -> None:
    wrong = []
    for key, context in sorted(_routes(app).items()):
        expected = EXPECTED.get(key)
        if expected is None:
            continue  # reported by test_every_route_is_in_the_table
        declared = declared_roles(getattr(context, "dependant", None))
        want = None if expected == PUBLIC else frozenset(expected)
        if declared != want:
            wrong.append(f"{key}: table {sorted(want or ['public'])}, route {declared}")
    assert not wrong, "route declarations differ from the table:\n" + "\n".join(wrong)


def _status(client: TestClient, key: Key, headers: dict[str, str], ws_query: str) -> int:
    method, template = key
    path = re.sub(r"\{[^}]+\}", "dummy", template)
    if method == "WS":
        # A refused socket is accepted, then closed with 4401/4403; an admitted one
        # replays the alert published for this test (ws_query), so either way the
        # first receive answers at once.
        try:
            with client.websocket_connect(f"{path}?{ws_query}", headers=headers) as ws:
                ws.receive_json()
        except WebSocketDisconnect as closed:
            return {4401: 401, 4403: 403}.get(closed.code, closed.code)
        return 101
    body: dict[str, object] | None = {} if method in ("POST", "PUT", "PATCH") else None
    # Streamed: only the status is read, so endless streams (SSE) end with the context.
    with client.stream(method, path, headers=headers, json=body) as response:
        client.cookies.delete(SESSION_COOKIE)  # no credentials but the ones we send
        return response.status_code


def _alert_to_replay(valkey_url: str) -> str:
    """Publish one alert; the WebSocket query that replays exactly it."""
    bus = EventBus(valkey_url)
    try:
        camera = f"matrix-{uuid.uuid4().hex[:8]}"
        entry = bus.publish_incident("opened", {"id": camera, "camera_id": camera})
    finally:
        bus.close()
    ms = int(entry.split("-")[0])
    return f"last_id={ms - 1}-0&camera_id={camera}"


def test_every_route_answers_every_credential_as_declared(
    app: FastAPI, engine: Engine, valkey_url: str
) -> None:
    ws_query = _alert_to_replay(valkey_url)
    with TestClient(app) as client:
        users = role_headers(engine, client)
        credentials: dict[str, tuple[Role | None, dict[str, str]]] = {"anonymous": (None, {})}
        for user_role, user_headers in users.items():
            credentials[f"user {user_role}"] = (user_role, user_headers)
        for key_role in Role:
            api_key = api_key_headers(client, users[Role.ADMIN], key_role, f"matrix-{key_role}")
            credentials[f"API key {key_role}"] = (key_role, api_key)

        routes = sorted(set(_routes(app)) & set(EXPECTED), key=lambda k: (k == LAST, k))
        wrong: list[str] = []
        calls = 0
        for who, (role, headers) in credentials.items():
            for route in routes:
                expected = EXPECTED[route]
                got = _status(client, route, headers, ws_query)
                calls += 1
                if expected == PUBLIC or (role is not None and role in expected):
                    ok, want = got not in (401, 403), "not 401/403"
                elif role is None:
                    ok, want = got == 401, "401"
                else:
                    ok, want = got == 403, "403"
                if not ok:
                    wrong.append(f"{who:18} {route[0]:6} {route[1]}: got {got}, want {want}")
    assert calls == len(credentials) * len(routes) >= 9 * 60
    assert not wrong, f"{len(wrong)} answers differ from the table:\n" + "\n".join(wrong)


def test_openapi_documents_credentials_and_roles(app: FastAPI) -> None:
    schema = app.openapi()
    assert set(schema["components"]["securitySchemes"]) == {"bearer", "apiKey", "session"}
    paths = schema["paths"]
    footage = paths["/api/cameras/{camera_id}/footage.mp4"]["get"]
    assert footage["x-roles"] == ["admin", "operator", "police"]
    assert {"401", "403"} <= set(footage["responses"])
    assert "security" not in paths["/api/auth/login"]["post"]
    assert "security" not in paths["/healthz"]["get"]

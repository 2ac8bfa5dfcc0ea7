"""HTTP-level security of the real app (real SQLite, real Valkey): security headers
on every kind of answer, the session cookie's flags, CORS off, the login rate
limit, and secrets kept out of every API answer and every log line."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import ApiSettings, create_app
from api.auth import Role
from api.security import SESSION_COOKIE
from core.bus import EventBus
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from core.storage.webhooks import WebhookStore
from tests.auth_helpers import TEST_PASSWORD, api_key_headers, auth_headers, create_user

CAMERA_PASSWORD = "cam-Secr3t-pass"
RECORD_PASSWORD = "rec-Secr3t-pass"
WEBHOOK_SECRET = "hook-secret-0123456789abcdef"
ENV_SECRET = "env-jwt-secret-" + "k" * 32


@pytest.fixture()
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def _app_client(engine: Engine, tmp_path: Path, valkey_url: str, **extra: object) -> TestClient:
    settings = ApiSettings(
        database_url=str(engine.url),
        redis_url=valkey_url,
        media_root=tmp_path / "media",
        **extra,  # type: ignore[arg-type]
    )
    # https: the session cookie is Secure, so a client only sends it back over TLS.
    return TestClient(create_app(settings), base_url="https://testserver")


@pytest.fixture()
def client(engine: Engine, tmp_path: Path, valkey_url: str) -> Iterator[TestClient]:
    with _app_client(engine, tmp_path, valkey_url, secret_key=ENV_SECRET) as c:
        yield c


@pytest.fixture()
def admin(engine: Engine, client: TestClient) -> dict[str, str]:
    create_user(engine, "root", TEST_PASSWORD, Role.ADMIN)
    return auth_headers(client, "root", TEST_PASSWORD)


def test_every_kind_of_answer_carries_the_security_headers(
    client: TestClient, admin: dict[str, str]
) -> None:
    answers = {
        "json": client.get("/api/cameras", headers=admin),
        "401": client.get("/api/cameras"),
        "404": client.get("/api/incidents/nope", headers=admin),
        "422": client.get("/api/incidents?limit=0", headers=admin),
        "413": client.post("/api/auth/login", content=b"x" * (2 * 1024 * 1024)),
        "no route": client.get("/no/such/path"),
        "public probe": client.get("/healthz"),
        "metrics": client.get("/metrics"),
        "openapi": client.get("/openapi.json"),
        "docs": client.get("/docs"),
        "console": client.get("/"),
        "console file": client.get("/console/app.js"),
    }
    for name, r in answers.items():
        h = r.headers
        assert h.get("x-content-type-options") == "nosniff", name
        assert h.get("x-frame-options") == "DENY", name
        assert h.get("referrer-policy") == "same-origin", name
        csp = h.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp, (name, csp)
        assert "default-src 'none'" in csp or name in ("docs", "console", "console file"), name
    assert answers["413"].status_code == 413
    # The console keeps its own policy: its scripts come from 'self' only.
    assert "script-src 'self'" in answers["console"].headers["content-security-policy"]
    assert "unsafe-inline" not in answers["console"].headers["content-security-policy"]


def test_session_cookie_is_secure_httponly_samesite_strict(
    engine: Engine, client: TestClient
) -> None:
    create_user(engine, "cookie", TEST_PASSWORD, Role.VIEWER)
    login = client.post("/api/auth/login", json={"username": "cookie", "password": TEST_PASSWORD})
    logout = client.post("/api/auth/logout")
    for r in (login, logout):
        cookie = r.headers["set-cookie"]
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert cookie.startswith(f"{SESSION_COOKIE}="), cookie
        assert {"secure", "httponly", "samesite=strict", "path=/"} <= flags, cookie


def test_cors_is_off_by_default(client: TestClient, admin: dict[str, str]) -> None:
    origin = {"Origin": "https://evil.example"}
    simple = client.get("/api/cameras", headers={**admin, **origin})
    preflight = client.options(
        "/api/cameras",
        headers={**origin, "Access-Control-Request-Method": "GET"},
    )
    login = client.post("/api/auth/login", json={"username": "x", "password": "y"}, headers=origin)
    for r in (simple, preflight, login):
        assert not any(k.lower().startswith("access-control-") for k in r.headers), r.headers
    assert preflight.status_code in (401, 405)


def test_login_limit_is_per_username_and_address_and_shared_by_workers(
    engine: Engine, tmp_path: Path, valkey_url: str
) -> None:
    victim, bystander = f"v-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    for name in (victim, bystander):
        create_user(engine, name, TEST_PASSWORD, Role.VIEWER)
    extra = {"login_max_failures": 3, "login_window_s": 60}
    # Two API workers on one Valkey: guessing on the second counts on the first.
    with (
        _app_client(engine, tmp_path, valkey_url, **extra) as first,
        _app_client(engine, tmp_path, valkey_url, **extra) as second,
    ):

        def login(client: TestClient, name: str, password: str) -> int:
            body = {"username": name, "password": password}
            return client.post("/api/auth/login", json=body).status_code

        guesses = [login(c, victim, f"guess-{i}") for i, c in enumerate((first, second, first))]
        assert guesses == [401, 401, 401]
        blocked = first.post("/api/auth/login", json={"username": victim, "password": "z"})
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1
        assert login(second, victim, TEST_PASSWORD) == 429  # the right password waits too
        assert login(second, victim.upper(), TEST_PASSWORD) == 429  # same user, other case
        assert login(first, bystander, TEST_PASSWORD) == 200  # others are not locked out


def test_secrets_never_reach_an_answer_or_a_log(
    engine: Engine,
    client: TestClient,
    admin: dict[str, str],
    tmp_path: Path,
    valkey_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    camera = {
        "id": "gate-1",
        "url": f"rtsp://admin:{CAMERA_PASSWORD}@10.0.0.7:554/ch1",
        "record_url": f"rtsp://rec:{RECORD_PASSWORD}@10.0.0.7:554/ch0",
    }
    answers = [client.post("/api/cameras", json=camera, headers=admin)]
    assert answers[0].status_code == 201, answers[0].text
    changed = {**camera, "url": f"rtsp://admin:{CAMERA_PASSWORD}x@10.0.0.8/ch1"}
    answers.append(client.put("/api/cameras/gate-1", json=changed, headers=admin))
    mismatched = {**camera, "id": "other"}
    answers.append(client.put("/api/cameras/gate-1", json=mismatched, headers=admin))
    webhook = {
        "name": "police-bridge",
        "url": f"https://bridge:{CAMERA_PASSWORD}@10.0.0.9/hook",
        "secret": WEBHOOK_SECRET,
    }
    created_hook = client.post("/api/webhooks", json=webhook, headers=admin)
    assert created_hook.status_code == 201 and created_hook.json()["secret"] == WEBHOOK_SECRET
    key = api_key_headers(client, admin, Role.VIEWER, "bridge")["X-API-Key"]
    key_secret = key.split("_", 2)[2]
    # A camera health with an error that names the URL, as ingest publishes it.
    bus = EventBus(valkey_url)
    try:
        bus.publish_event("camera_state", {"camera_id": "gate-1", "error": "auth failed"})
    finally:
        bus.close()
    for path in (
        "/api/cameras",
        "/api/cameras/gate-1",
        "/api/config/versions",
        "/api/config/versions/1",
        "/api/config/versions/2",
        "/api/audit",
        "/api/webhooks",
        "/api/users",
        "/api/users/api-keys",
        "/api/events",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ):
        answers.append(client.get(path, headers=admin))
    answers.append(client.post("/api/cameras/test", json={"url": "x"}, headers=admin))
    evidence_key = tmp_path / "media" / "evidence.key"
    secrets = {
        "camera password": CAMERA_PASSWORD,
        "record_url password": RECORD_PASSWORD,
        "webhook secret (after its creation)": WEBHOOK_SECRET,
        "API key secret": key_secret,
        "user password": TEST_PASSWORD,
        "password hash": "$argon2",
        "JWT signing key": ENV_SECRET,
    }
    if evidence_key.exists():
        secrets["evidence key"] = evidence_key.read_bytes().hex()
    leaks = [
        f"{r.request.method} {r.request.url.path}: {name}"
        for r in answers
        for name, secret in secrets.items()
        if secret in r.text or json.dumps(secret)[1:-1] in r.text
    ]
    assert not leaks, "\n".join(leaks)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "gate-1" in logged or "webhook" in logged  # the routes did log
    assert not [name for name, secret in secrets.items() if secret in logged], logged


def test_webhook_url_credentials_are_shown_as_stars_and_kept_on_patch(
    engine: Engine, client: TestClient, admin: dict[str, str]
) -> None:
    url = f"https://bridge:{CAMERA_PASSWORD}@10.0.0.9/hook"
    created = client.post("/api/webhooks", json={"name": "b", "url": url}, headers=admin)
    hook_id = created.json()["id"]
    shown = client.get(f"/api/webhooks/{hook_id}", headers=admin).json()["url"]
    assert shown == "https://***@10.0.0.9/hook"
    # The console sends the URL back as it got it: the stored credentials stay.
    patched = client.patch(
        f"/api/webhooks/{hook_id}", json={"url": shown, "name": "renamed"}, headers=admin
    )
    assert patched.status_code == 200 and patched.json()["name"] == "renamed"
    stored = WebhookStore(engine).get(hook_id)
    assert stored is not None and stored.url == url

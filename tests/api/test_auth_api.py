"""Login, sessions, API keys and user management, on real SQLite, real Valkey and
real argon2."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.websockets import WebSocketDisconnect

from api.app import ApiSettings, create_app
from api.auth import Role
from api.security import SESSION_COOKIE
from core.storage.db import make_engine
from core.storage.migrate import upgrade
from tests.auth_helpers import TEST_PASSWORD, api_key_headers, auth_headers, create_user


@pytest.fixture()
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)  # every test here runs on SQLite and on PostgreSQL
    upgrade(engine)
    yield engine
    engine.dispose()


def _settings(engine: Engine, tmp_path: Path, valkey_url: str, **extra: object) -> ApiSettings:
    return ApiSettings(
        database_url=str(engine.url),
        redis_url=valkey_url,
        media_root=tmp_path / "media",
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture()
def client(engine: Engine, tmp_path: Path, valkey_url: str) -> Iterator[TestClient]:
    # https: the session cookie is Secure, so a client only sends it back over TLS.
    app = create_app(_settings(engine, tmp_path, valkey_url))
    with TestClient(app, base_url="https://testserver") as c:
        yield c


@pytest.fixture()
def admin(engine: Engine, client: TestClient) -> dict[str, str]:
    create_user(engine, "root", TEST_PASSWORD, Role.ADMIN)
    return auth_headers(client, "root", TEST_PASSWORD)


def _unique(prefix: str) -> str:
    # Valkey is shared by the whole session: failure counters must not collide.
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_login_returns_token_and_strict_session_cookie(
    engine: Engine, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    create_user(engine, "anh", TEST_PASSWORD, Role.POLICE)
    with caplog.at_level(logging.INFO, logger="api.routers.auth"):
        r = client.post("/api/auth/login", json={"username": "Anh", "password": TEST_PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 12 * 3600
    assert body["user"]["username"] == "anh" and body["user"]["role"] == "police"
    cookie = r.headers["set-cookie"]
    attributes = {a.strip().split("=")[0].lower(): a.strip() for a in cookie.split(";")}
    assert cookie.startswith(f"{SESSION_COOKIE}={body['access_token']};")
    assert "httponly" in attributes and "secure" in attributes
    assert attributes["samesite"].lower() == "samesite=strict"
    assert attributes["path"] == "Path=/"
    # The web console: the cookie alone authenticates.
    me = client.get("/api/auth/me")
    assert me.json() == {"actor": "user:anh", "role": "police", "username": "anh"}
    # Integrations: the bearer token alone authenticates.
    client.cookies.clear()
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/api/auth/me", headers=bearer).json()["actor"] == "user:anh"
    assert "login ok for 'anh'" in caplog.text and TEST_PASSWORD not in caplog.text


def test_wrong_password_and_unknown_user_are_401_and_logged_without_password(
    engine: Engine, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    create_user(engine, "binh", TEST_PASSWORD, Role.VIEWER)
    with caplog.at_level(logging.INFO, logger="api.routers.auth"):
        wrong = client.post(
            "/api/auth/login", json={"username": "binh", "password": "not my password"}
        )
        ghost = client.post(
            "/api/auth/login", json={"username": "nobody", "password": TEST_PASSWORD}
        )
    assert wrong.status_code == 401 and ghost.status_code == 401
    assert wrong.json()["detail"] == ghost.json()["detail"]  # no hint which usernames exist
    assert SESSION_COOKIE not in client.cookies
    assert "login failed for 'binh'" in caplog.text
    assert "not my password" not in caplog.text and TEST_PASSWORD not in caplog.text


def test_no_credentials_or_garbage_credentials_are_401(client: TestClient) -> None:
    assert client.get("/api/auth/me").status_code == 401
    assert client.get("/api/auth/me").headers["www-authenticate"] == "Bearer"
    for headers in (
        {"Authorization": "Bearer not-a-jwt"},
        {"X-API-Key": "cvk_nope_nope"},
        {"X-API-Key": "garbage"},
    ):
        assert client.get("/api/auth/me", headers=headers).status_code == 401, headers


def test_failed_logins_are_rate_limited_then_recover(
    engine: Engine, tmp_path: Path, valkey_url: str
) -> None:
    name = _unique("chi")
    create_user(engine, name, TEST_PASSWORD, Role.OPERATOR)
    settings = _settings(engine, tmp_path, valkey_url, login_max_failures=3, login_window_s=2)
    with TestClient(create_app(settings)) as client:

        def login(password: str) -> int:
            body = {"username": name, "password": password}
            return client.post("/api/auth/login", json=body).status_code

        # A success clears the count: 2 failures, a success, 2 more are still 401.
        assert [login("wrong password!") for _ in range(2)] == [401, 401]
        assert login(TEST_PASSWORD) == 200
        assert [login("wrong password!") for _ in range(3)] == [401, 401, 401]
        blocked = client.post("/api/auth/login", json={"username": name, "password": "x"})
        assert blocked.status_code == 429
        assert 1 <= int(blocked.headers["retry-after"]) <= 2
        assert name in blocked.json()["detail"]
        assert login(TEST_PASSWORD) == 429  # even the right password waits
        time.sleep(2.2)
        assert login(TEST_PASSWORD) == 200


def test_expired_token_is_401(engine: Engine, tmp_path: Path, valkey_url: str) -> None:
    create_user(engine, "dung", TEST_PASSWORD, Role.VIEWER)
    with TestClient(create_app(_settings(engine, tmp_path, valkey_url, token_ttl_s=1))) as c:
        headers = auth_headers(c, "dung", TEST_PASSWORD)
        assert c.get("/api/auth/me", headers=headers).status_code == 200
        time.sleep(2.1)
        assert c.get("/api/auth/me", headers=headers).status_code == 401


def test_tokens_survive_a_restart_with_the_secret_file(
    engine: Engine, tmp_path: Path, valkey_url: str
) -> None:
    create_user(engine, "giang", TEST_PASSWORD, Role.VIEWER)
    settings = _settings(engine, tmp_path, valkey_url)
    with TestClient(create_app(settings)) as first:
        headers = auth_headers(first, "giang", TEST_PASSWORD)
    key_file = tmp_path / "media" / "api-secret.key"
    assert key_file.stat().st_mode & 0o777 == 0o600 and len(key_file.read_bytes()) == 32
    with TestClient(create_app(settings)) as second:
        assert second.get("/api/auth/me", headers=headers).status_code == 200
    # A different env secret invalidates tokens signed with the file's key.
    other = _settings(engine, tmp_path, valkey_url, secret_key="x" * 40)
    with TestClient(create_app(other)) as third:
        assert third.get("/api/auth/me", headers=headers).status_code == 401


def test_short_env_secret_is_refused_naming_the_variable(
    engine: Engine, tmp_path: Path, valkey_url: str
) -> None:
    with (
        pytest.raises(ValueError, match="COMMUNE_VISION_SECRET_KEY"),
        TestClient(create_app(_settings(engine, tmp_path, valkey_url, secret_key="short"))),
    ):
        pass


def test_logout_clears_the_cookie_and_revokes_the_token(engine: Engine, client: TestClient) -> None:
    create_user(engine, "hoa", TEST_PASSWORD, Role.OPERATOR)
    login = client.post("/api/auth/login", json={"username": "hoa", "password": TEST_PASSWORD})
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
    out = client.post("/api/auth/logout")
    assert out.status_code == 204
    assert f'{SESSION_COOKIE}=""' in out.headers["set-cookie"]
    assert "max-age=0" in out.headers["set-cookie"].lower()
    assert client.get("/api/auth/me").status_code == 401
    assert client.get("/api/auth/me", headers=bearer).status_code == 401
    assert client.post("/api/auth/logout").status_code == 204  # idempotent


def test_api_key_create_use_revoke(
    client: TestClient, admin: dict[str, str], engine: Engine
) -> None:
    created = client.post(
        "/api/users/api-keys", json={"name": "vms-bridge", "role": "operator"}, headers=admin
    )
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["key"].startswith(f"cvk_{key['prefix']}_") and key["created_by"] == "user:root"
    header = {"X-API-Key": key["key"]}
    me = client.get("/api/auth/me", headers=header).json()
    assert me == {"actor": "api_key:vms-bridge", "role": "operator", "username": None}
    # Listed without the secret; its use is recorded.
    listed = client.get("/api/users/api-keys", headers=admin).json()
    assert [k["name"] for k in listed] == ["vms-bridge"] and "key" not in listed[0]
    assert listed[0]["last_used_ts"] is not None
    # Only a hash is stored: the secret is nowhere in the database.
    secret = key["key"].split("_", 2)[2]
    with engine.connect() as conn:
        dump = "\n".join(str(r) for r in conn.exec_driver_sql("SELECT * FROM api_keys"))
    assert secret not in dump and key["prefix"] in dump
    # A tampered secret with a real prefix is refused.
    tampered = {"X-API-Key": key["key"][:-2] + ("AA" if not key["key"].endswith("AA") else "BB")}
    assert client.get("/api/auth/me", headers=tampered).status_code == 401
    # Operators may not manage keys.
    assert client.get("/api/users/api-keys", headers=header).status_code == 403
    revoked = client.delete(f"/api/users/api-keys/{key['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert client.get("/api/auth/me", headers=header).status_code == 401
    missing = client.delete("/api/users/api-keys/9999", headers=admin)
    assert missing.status_code == 404 and "9999" in missing.json()["detail"]


def test_admin_creates_updates_and_deactivates_users(
    client: TestClient, admin: dict[str, str]
) -> None:
    body = {"username": "Lan", "password": TEST_PASSWORD, "role": "viewer", "display_name": "Lan"}
    created = client.post("/api/users", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["username"] == "lan" and created.json()["active"] is True
    duplicate = client.post("/api/users", json={**body, "username": "LAN"}, headers=admin)
    assert duplicate.status_code == 409 and "'lan' is already taken" in duplicate.text
    lan = auth_headers(client, "lan", TEST_PASSWORD)
    assert client.get("/api/users", headers=lan).status_code == 403

    promoted = client.patch("/api/users/lan", json={"role": "police"}, headers=admin)
    assert promoted.status_code == 200 and promoted.json()["role"] == "police"
    # The role is read per request: the existing token now carries police rights.
    assert client.get("/api/auth/me", headers=lan).json()["role"] == "police"

    off = client.patch("/api/users/lan", json={"active": False}, headers=admin)
    assert off.status_code == 200 and off.json()["active"] is False
    assert client.get("/api/auth/me", headers=lan).status_code == 401  # at once
    login = client.post("/api/auth/login", json={"username": "lan", "password": TEST_PASSWORD})
    assert login.status_code == 401
    names = {u["username"]: u["active"] for u in client.get("/api/users", headers=admin).json()}
    assert names == {"root": True, "lan": False}
    assert (
        client.patch("/api/users/ghost", json={"active": False}, headers=admin).status_code == 404
    )


def test_the_last_admin_cannot_be_demoted_or_deactivated(
    client: TestClient, admin: dict[str, str]
) -> None:
    for change in ({"role": "viewer"}, {"active": False}):
        r = client.patch("/api/users/root", json=change, headers=admin)
        assert r.status_code == 409 and "last active admin" in r.json()["detail"], r.text


def test_weak_password_is_422_naming_the_field(client: TestClient, admin: dict[str, str]) -> None:
    weak = {"username": "minh", "password": "short", "role": "viewer"}
    r = client.post("/api/users", json=weak, headers=admin)
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "password"] and "at least 10 characters" in error["msg"]
    r = client.patch("/api/users/root", json={"password": "aaaaaaaaaaaa"}, headers=admin)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "password"]
    bad_name = client.post(
        "/api/users",
        json={**weak, "username": "no spaces", "password": TEST_PASSWORD},
        headers=admin,
    )
    assert bad_name.status_code == 422 and bad_name.json()["detail"][0]["loc"] == [
        "body",
        "username",
    ]


def test_change_own_password(engine: Engine, client: TestClient) -> None:
    create_user(engine, "nga", TEST_PASSWORD, Role.VIEWER)
    headers = auth_headers(client, "nga", TEST_PASSWORD)
    new = "a brand new passphrase"
    wrong = client.post(
        "/api/auth/password",
        json={"current_password": "nope nope nope", "new_password": new},
        headers=headers,
    )
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"][-1] == "current_password"
    ok = client.post(
        "/api/auth/password",
        json={"current_password": TEST_PASSWORD, "new_password": new},
        headers=headers,
    )
    assert ok.status_code == 204
    assert auth_headers(client, "nga", new)["Authorization"].startswith("Bearer ")


def test_admin_bootstrap_from_env_only_when_no_user_exists(
    engine: Engine, tmp_path: Path, valkey_url: str
) -> None:
    first = _settings(engine, tmp_path, valkey_url, admin_password="first admin password")
    with TestClient(create_app(first)) as c:
        assert auth_headers(c, "admin", "first admin password")
    # Later starts ignore the variable: it cannot reset anything.
    later = _settings(engine, tmp_path, valkey_url, admin_password="another password!")
    with TestClient(create_app(later)) as c:
        r = c.post("/api/auth/login", json={"username": "admin", "password": "another password!"})
        assert r.status_code == 401


def test_weak_bootstrap_password_stops_the_start(
    engine: Engine, tmp_path: Path, valkey_url: str
) -> None:
    settings = _settings(engine, tmp_path, valkey_url, admin_password="short")
    with (
        pytest.raises(ValueError, match="COMMUNE_VISION_ADMIN_PASSWORD"),
        TestClient(create_app(settings)),
    ):
        pass


def test_alerts_websocket_needs_a_token(
    engine: Engine, client: TestClient, admin: dict[str, str]
) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as missing,
        client.websocket_connect("/api/alerts/ws") as ws,
    ):
        ws.receive_json()
    assert missing.value.code == 4401
    with (
        pytest.raises(WebSocketDisconnect) as bad,
        client.websocket_connect("/api/alerts/ws?token=not-a-jwt") as ws,
    ):
        ws.receive_json()
    assert bad.value.code == 4401
    token = admin["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect(f"/api/alerts/ws?token={token}") as ws:
        ws.close()  # accepted: the stream is open
    key = api_key_headers(client, admin, Role.VIEWER, name="wall-screen")
    with client.websocket_connect("/api/alerts/ws", headers=key) as ws:
        ws.close()

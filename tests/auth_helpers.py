"""Real users and real logins for tests: argon2 hashes in the test database, tokens
from the real login route. Other test modules import these names; keep them stable.

    headers = role_headers(engine, client)
    client.get("/api/cameras", headers=headers[Role.VIEWER])
"""

from __future__ import annotations

import json

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.auth import Role
from api.security import SESSION_COOKIE
from core.passwords import hash_password
from core.storage.users import UserRepository

TEST_PASSWORD = "correct horse battery staple"


def username_for(role: Role) -> str:
    return f"test-{role.value}"


def create_user(engine: Engine, username: str, password: str, role: Role | str) -> None:
    """A user straight into the database, with a real argon2 hash."""
    UserRepository(engine).create_user(username, hash_password(password), Role(role).value)


def auth_headers(
    client_or_base_url: TestClient | httpx.Client | str, username: str, password: str
) -> dict[str, str]:
    """Log in through ``POST /api/auth/login``; the ``Authorization`` header to send."""
    body = {"username": username, "password": password}
    if isinstance(client_or_base_url, str):
        response = httpx.post(
            f"{client_or_base_url.rstrip('/')}/api/auth/login", json=body, timeout=30
        )
        status, text = response.status_code, response.text
    else:
        test_response = client_or_base_url.post("/api/auth/login", json=body)
        status, text = test_response.status_code, test_response.text
        # The login also set the session cookie in the client's jar: drop it, so a
        # later "no credentials" request from the same client really has none.
        client_or_base_url.cookies.delete(SESSION_COOKIE)
    assert status == 200, f"login as {username} failed: {text}"
    token = json.loads(text)["access_token"]
    return {"Authorization": f"Bearer {token}"}


def role_headers(
    engine: Engine, client: TestClient | httpx.Client | str
) -> dict[Role, dict[str, str]]:
    """One user per role (``test-<role>``, password ``TEST_PASSWORD``), each logged in."""
    headers: dict[Role, dict[str, str]] = {}
    for role in Role:
        create_user(engine, username_for(role), TEST_PASSWORD, role)
        headers[role] = auth_headers(client, username_for(role), TEST_PASSWORD)
    return headers


def api_key_headers(
    client: TestClient | httpx.Client, admin_headers: dict[str, str], role: Role, name: str = "it"
) -> dict[str, str]:
    """An API key made through the real admin route; the ``X-API-Key`` header to send."""
    response = client.post(
        "/api/users/api-keys", json={"name": name, "role": role.value}, headers=admin_headers
    )
    assert response.status_code == 201, response.text
    return {"X-API-Key": response.json()["key"]}


def sign_in(
    engine: Engine, client: TestClient, role: Role = Role.ADMIN, username: str | None = None
) -> dict[str, str]:
    """Create a user with ``role`` and make its token the client's default header, so
    every later request (WebSockets included) is authenticated. Returns the header."""
    name = username or f"signed-in-{role.value}"
    create_user(engine, name, TEST_PASSWORD, role)
    headers = auth_headers(client, name, TEST_PASSWORD)
    client.headers.update(headers)
    return headers

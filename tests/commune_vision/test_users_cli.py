"""`commune-vision users create-admin`, run as the installed command on a real database,
then used to log in through the real API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import ApiSettings, create_app
from core.config import load_config
from core.passwords import verify_password
from core.storage.db import make_engine
from core.storage.users import UserRepository
from tests.auth_helpers import auth_headers

COMMAND = Path(sys.executable).with_name("commune-vision")
PASSWORD = "a long enough admin passphrase"


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(f"cameras: []\nstorage: {{data_dir: {tmp_path / 'data'}}}\n")
    return path


def _create_admin(config: Path, stdin: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), "users", "create-admin", "--config", str(config), *extra],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _users(config: Path) -> UserRepository:
    return UserRepository(make_engine(load_config(config).storage.resolved_database_url))


def test_create_admin_migrates_the_database_and_the_admin_can_log_in(
    config: Path, tmp_path: Path, valkey_url: str
) -> None:
    done = _create_admin(config, PASSWORD + "\n", "--username", "Chief", "--password-stdin")
    assert done.returncode == 0, done.stderr
    assert "admin 'chief' created" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr
    user = _users(config).get_user("chief")
    assert user is not None and user.role == "admin" and user.active
    assert user.password_hash.startswith("$argon2id$")

    url = load_config(config).storage.resolved_database_url
    settings = ApiSettings(database_url=url, redis_url=valkey_url, media_root=tmp_path / "data")
    with TestClient(create_app(settings)) as client:
        headers = auth_headers(client, "chief", PASSWORD)
        assert client.get("/api/users", headers=headers).status_code == 200


def test_weak_password_is_refused_naming_the_field(config: Path) -> None:
    done = _create_admin(config, "short\n", "--username", "chief", "--password-stdin")
    assert done.returncode == 2
    assert "password" in done.stderr and "at least 10 characters" in done.stderr
    assert not (config.parent / "data").exists(), "refused before touching the database"


def test_bad_username_is_refused_naming_the_option(config: Path) -> None:
    done = _create_admin(config, PASSWORD + "\n", "--username", "bad name", "--password-stdin")
    assert done.returncode == 2 and "--username" in done.stderr


def test_existing_user_needs_reset_which_restores_an_active_admin(config: Path) -> None:
    first = _create_admin(config, PASSWORD + "\n", "--username", "chief", "--password-stdin")
    assert first.returncode == 0, first.stderr
    deputy = _create_admin(config, PASSWORD + "\n", "--username", "deputy", "--password-stdin")
    assert deputy.returncode == 0, deputy.stderr
    _users(config).update_user("chief", active=False)  # e.g. locked out by mistake

    again = _create_admin(config, PASSWORD + "\n", "--username", "chief", "--password-stdin")
    assert again.returncode == 1 and "--reset" in again.stderr

    new_password = "recovered admin passphrase"
    reset = _create_admin(
        config, new_password + "\n", "--username", "chief", "--password-stdin", "--reset"
    )
    assert reset.returncode == 0, reset.stderr
    user = _users(config).get_user("chief")
    assert user is not None and user.active and user.role == "admin"
    assert verify_password(new_password, user.password_hash)

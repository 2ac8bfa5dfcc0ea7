"""Auth setup at API start: the signing secret, and the first admin for installs that
have no user yet (Docker: set COMMUNE_VISION_ADMIN_PASSWORD on first start)."""

from __future__ import annotations

import logging
from pathlib import Path

from api.security import AuthConfig, load_secret
from core.passwords import WeakPasswordError, check_password_strength, hash_password
from core.storage.users import DuplicateUsernameError, UserRepository, normalize_username

log = logging.getLogger(__name__)

ADMIN_PASSWORD_ENV = "COMMUNE_VISION_ADMIN_PASSWORD"


def build_auth_config(
    secret_env: str | None,
    media_root: Path,
    token_ttl_s: int,
    max_failed_logins: int,
    failed_login_window_s: int,
) -> AuthConfig:
    return AuthConfig(
        secret=load_secret(secret_env, media_root),
        token_ttl_s=token_ttl_s,
        max_failed_logins=max_failed_logins,
        failed_login_window_s=failed_login_window_s,
    )


def bootstrap_admin(users: UserRepository, username: str, password: str | None) -> bool:
    """Create the admin if the password is set and there is no user at all; True if
    created. Once any user exists the variable is ignored, so a password left in a
    compose file cannot reset anything."""
    if users.count_users() > 0:
        return False
    if not password:
        log.warning(
            "no user exists, so nobody can log in: set %s and restart, or run "
            "`commune-vision users create-admin --username admin`",
            ADMIN_PASSWORD_ENV,
        )
        return False
    try:
        check_password_strength(password)
    except WeakPasswordError as exc:
        raise ValueError(f"{ADMIN_PASSWORD_ENV}: {exc}") from exc
    name = normalize_username(username)
    try:
        users.create_user(name, hash_password(password), "admin", "Administrator")
    except DuplicateUsernameError:
        return False  # another worker created it first
    log.info("created the first admin %r from %s", name, ADMIN_PASSWORD_ENV)
    return True

"""Tokens, the signing secret and API key material. No FastAPI here: pure functions
the auth dependency and the auth routes share."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt

SECRET_ENV = "COMMUNE_VISION_SECRET_KEY"
SECRET_FILE_NAME = "api-secret.key"
MIN_SECRET_BYTES = 32
SESSION_COOKIE = "cv_session"
API_KEY_PREFIX = "cvk"
ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class AuthConfig:
    secret: bytes
    token_ttl_s: int
    cookie_name: str = SESSION_COOKIE
    max_failed_logins: int = 5  # per username and client address ...
    failed_login_window_s: int = 300  # ... counted over this window


@dataclass(frozen=True, slots=True)
class TokenClaims:
    username: str
    jti: str
    expires_ts: float


class InvalidTokenError(Exception):
    pass


def load_secret(env_value: str | None, media_root: Path) -> bytes:
    """The signing secret: the environment's if set, else the installation's key file,
    created on first use (0600) so tokens survive restarts without any setup."""
    if env_value:
        secret = env_value.encode()
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(
                f"{SECRET_ENV} is {len(secret)} bytes: use at least {MIN_SECRET_BYTES} "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return secret
    path = media_root / SECRET_FILE_NAME
    media_root.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once must not both write a key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_bytes()
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(
                f"{path} holds {len(secret)} bytes, expected {MIN_SECRET_BYTES}: delete it "
                f"to have a new one made (everyone logs in again) or set {SECRET_ENV}"
            ) from None
        return secret
    secret = secrets.token_bytes(MIN_SECRET_BYTES)
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
    return secret


def issue_token(config: AuthConfig, username: str, now: float | None = None) -> tuple[str, float]:
    """A signed access token for ``username`` and its expiry time. The role is not in
    the token: it is read from the database on every request, so a role change or a
    deactivation takes effect at once."""
    issued = time.time() if now is None else now
    expires = issued + config.token_ttl_s
    claims = {
        "sub": username,
        "iat": int(issued),
        "exp": int(expires),
        "jti": uuid.uuid4().hex,
        "typ": "access",
    }
    return jwt.encode(claims, config.secret, algorithm=ALGORITHM), expires


def decode_token(config: AuthConfig, token: str) -> TokenClaims:
    try:
        claims = jwt.decode(
            token,
            config.secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp", "jti"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidTokenError(str(exc)) from exc
    if claims.get("typ") != "access" or not isinstance(claims["sub"], str):
        raise InvalidTokenError("not an access token")
    return TokenClaims(
        username=claims["sub"], jti=str(claims["jti"]), expires_ts=float(claims["exp"])
    )


def revoked_token_key(jti: str) -> str:
    return f"auth:revoked:{jti}"


# API keys ------------------------------------------------------------------


def hash_api_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_key() -> tuple[str, str, str]:
    """(full key to hand out once, prefix to store, sha256 of the secret to store)."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"{API_KEY_PREFIX}_{prefix}_{secret}", prefix, hash_api_secret(secret)


def parse_api_key(key: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    parts = key.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def api_secret_matches(secret: str, key_hash: str) -> bool:
    return hmac.compare_digest(hash_api_secret(secret), key_hash)

"""Console users and integration API keys: the storage side of authentication.

Hashing happens in the caller (``core.passwords`` for passwords, sha256 for API key
secrets); this module stores and finds rows. User actions through the API, not
pipeline events, so they do not go through the pipeline's single writer.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.storage.models import ApiKeyRow, UserRow

ROLES = ("admin", "operator", "police", "viewer")
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
# Usage timestamps are for "is this key still used?", not an audit trail: writing
# them at most once a minute keeps reads from turning into SQLite writes.
LAST_USED_RESOLUTION_S = 60.0


class DuplicateUsernameError(ValueError):
    pass


class LastAdminError(ValueError):
    """The change would leave no active admin, and nobody could manage users."""


def normalize_username(username: str) -> str:
    return username.strip().lower()


def check_username(username: str) -> None:
    if not USERNAME_PATTERN.match(username):
        raise ValueError(
            "username must be 2-64 characters: lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


def check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    password_hash: str
    role: str
    display_name: str
    active: bool
    created_ts: float
    last_login_ts: float | None


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    key_hash: str
    role: str
    created_by: str
    created_ts: float
    last_used_ts: float | None
    revoked: bool


def _user(row: UserRow) -> User:
    return User(
        id=row.id,
        username=row.username,
        password_hash=row.password_hash,
        role=row.role,
        display_name=row.display_name,
        active=row.active,
        created_ts=row.created_ts,
        last_login_ts=row.last_login_ts,
    )


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        key_hash=row.key_hash,
        role=row.role,
        created_by=row.created_by,
        created_ts=row.created_ts,
        last_used_ts=row.last_used_ts,
        revoked=row.revoked,
    )


class UserRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # users -----------------------------------------------------------------

    def count_users(self) -> int:
        with Session(self._engine) as session:
            return int(session.scalar(select(func.count()).select_from(UserRow)) or 0)

    def get_user(self, username: str) -> User | None:
        with Session(self._engine) as session:
            row = session.scalar(select(UserRow).where(UserRow.username == username))
            return _user(row) if row is not None else None

    def list_users(self) -> list[User]:
        with Session(self._engine) as session:
            return [_user(r) for r in session.scalars(select(UserRow).order_by(UserRow.username))]

    def create_user(
        self, username: str, password_hash: str, role: str, display_name: str = ""
    ) -> User:
        """Raise DuplicateUsernameError if the username is taken (case-insensitively:
        usernames are stored lowercase)."""
        check_username(username)
        check_role(role)
        row = UserRow(
            username=username,
            password_hash=password_hash,
            role=role,
            display_name=display_name,
            active=True,
            created_ts=time.time(),
            last_login_ts=None,
        )
        try:
            with Session(self._engine) as session, session.begin():
                session.add(row)
                session.flush()
                return _user(row)
        except IntegrityError as exc:
            raise DuplicateUsernameError(f"username {username!r} is already taken") from exc

    def update_user(
        self,
        username: str,
        *,
        role: str | None = None,
        active: bool | None = None,
        display_name: str | None = None,
        password_hash: str | None = None,
    ) -> User | None:
        """Apply the given changes; None if there is no such user."""
        if role is not None:
            check_role(role)
        with Session(self._engine) as session, session.begin():
            row = session.scalar(select(UserRow).where(UserRow.username == username))
            if row is None:
                return None
            loses_admin = (
                row.role == "admin"
                and row.active
                and ((role is not None and role != "admin") or active is False)
            )
            if loses_admin:
                others = session.scalar(
                    select(func.count())
                    .select_from(UserRow)
                    .where(UserRow.role == "admin", UserRow.active, UserRow.id != row.id)
                )
                if not others:
                    raise LastAdminError(
                        f"{username!r} is the last active admin: make another user admin first"
                    )
            if role is not None:
                row.role = role
            if active is not None:
                row.active = active
            if display_name is not None:
                row.display_name = display_name
            if password_hash is not None:
                row.password_hash = password_hash
            session.flush()
            return _user(row)

    def record_login(self, username: str) -> None:
        with Session(self._engine) as session, session.begin():
            row = session.scalar(select(UserRow).where(UserRow.username == username))
            if row is not None:
                row.last_login_ts = time.time()

    # API keys --------------------------------------------------------------

    def create_api_key(
        self, name: str, prefix: str, key_hash: str, role: str, created_by: str
    ) -> ApiKey:
        check_role(role)
        row = ApiKeyRow(
            name=name,
            prefix=prefix,
            key_hash=key_hash,
            role=role,
            created_by=created_by,
            created_ts=time.time(),
            last_used_ts=None,
            revoked=False,
        )
        with Session(self._engine) as session, session.begin():
            session.add(row)
            session.flush()
            return _key(row)

    def get_api_key(self, prefix: str) -> ApiKey | None:
        with Session(self._engine) as session:
            row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.prefix == prefix))
            return _key(row) if row is not None else None

    def list_api_keys(self) -> list[ApiKey]:
        with Session(self._engine) as session:
            return [_key(r) for r in session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id))]

    def revoke_api_key(self, key_id: int) -> ApiKey | None:
        """Revoke; None if there is no such key. Idempotent."""
        with Session(self._engine) as session, session.begin():
            row = session.get(ApiKeyRow, key_id)
            if row is None:
                return None
            row.revoked = True
            session.flush()
            return _key(row)

    def touch_api_key(self, key: ApiKey) -> None:
        now = time.time()
        if key.last_used_ts is not None and now - key.last_used_ts < LAST_USED_RESOLUTION_S:
            return
        with Session(self._engine) as session, session.begin():
            row = session.get(ApiKeyRow, key.id)
            if row is not None:
                row.last_used_ts = now

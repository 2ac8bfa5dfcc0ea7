"""Request and response bodies of the auth and user-management routes."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from api.auth import Role
from core.passwords import check_password_strength
from core.storage.users import check_username, normalize_username


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    username: str
    role: Role
    display_name: str
    active: bool
    created_ts: float
    last_login_ts: float | None


class LoginResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds until the token expires")
    expires_ts: float
    user: UserOut


class Me(BaseModel):
    actor: str = Field(description='what the audit log records: "user:anh", "api_key:vms"')
    role: Role
    username: str | None = Field(description="None for API keys")


def _strong(password: str) -> str:
    check_password_strength(password)
    return password


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)

    @field_validator("new_password")
    @classmethod
    def _new_password(cls, value: str) -> str:
        return _strong(value)


class UserCreate(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    role: Role
    display_name: str = Field("", max_length=128)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        return _strong(value)

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        value = normalize_username(value)
        check_username(value)
        return value


class UserUpdate(BaseModel):
    """Only the fields present change. ``active: false`` deactivates: the user's
    sessions stop working at once, their history stays."""

    role: Role | None = None
    active: bool | None = None
    display_name: str | None = Field(None, max_length=128)
    password: str | None = Field(None, max_length=1024)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str | None) -> str | None:
        return None if value is None else _strong(value)


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64, description="the integration, e.g. vms-bridge")
    role: Role = Role.VIEWER


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    role: Role
    created_by: str
    created_ts: float
    last_used_ts: float | None
    revoked: bool


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="send as X-API-Key; shown only now, store it safely")

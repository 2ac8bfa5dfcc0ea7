"""Request and response models of the webhook admin routes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.storage.webhooks import Delivery, Webhook
from core.webhooks import check_url

Severity = Literal["low", "medium", "high"]
SECRET_DOC = "HMAC-SHA256 key for X-CommuneVision-Signature (16-128 characters)"


def _url(value: str | None) -> str | None:
    return None if value is None else check_url(value)


class WebhookIn(BaseModel):
    # A misspelt filter ("camera_id") must fail, not silently match every camera.
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    url: str = Field(max_length=1024, description="http:// or https:// receiver")
    secret: str | None = Field(
        None, min_length=16, max_length=128, description=f"{SECRET_DOC}; generated when left out"
    )
    active: bool = True
    camera_ids: list[str] = Field(default_factory=list, description="empty: every camera")
    types: list[str] = Field(default_factory=list, description="incident types; empty: every type")
    min_severity: Severity = "low"

    _check_url = field_validator("url")(_url)


class WebhookPatch(BaseModel):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=64)
    url: str | None = Field(None, max_length=1024)
    secret: str | None = Field(None, min_length=16, max_length=128, description=SECRET_DOC)
    active: bool | None = None
    camera_ids: list[str] | None = None
    types: list[str] | None = None
    min_severity: Severity | None = None

    _check_url = field_validator("url")(_url)


class WebhookOut(BaseModel):
    """A webhook; its secret is shown only in the answer to its creation, credentials in
    its URL never (as ``***``; PATCH that URL back to keep them)."""

    id: int
    name: str
    url: str
    active: bool
    camera_ids: list[str]
    types: list[str]
    min_severity: str
    created_ts: float

    @classmethod
    def of(cls, hook: Webhook) -> WebhookOut:
        return cls(id=hook.id, created_ts=hook.created_ts, **hook.public())


class WebhookCreated(WebhookOut):
    secret: str = Field(description="shown this once: store it in the receiver now")


class WebhookDeliveryOut(BaseModel):
    id: int = Field(description="also sent as X-CommuneVision-Delivery")
    webhook_id: int
    incident_id: str = Field(description="empty for test deliveries")
    event: str = Field(description="opened | updated | closed | review | test")
    status: str = Field(description="pending | delivered | failed")
    attempts: int
    next_attempt_ts: float = Field(description="when a pending delivery is tried next")
    last_status_code: int | None = Field(description="the receiver's answer; null: no answer")
    last_error: str | None = Field(description="why there was no answer (refused, timeout …)")
    created_ts: float
    delivered_ts: float | None
    payload: dict[str, Any] = Field(description="the JSON body sent")

    @classmethod
    def of(cls, d: Delivery) -> WebhookDeliveryOut:
        return cls(
            id=d.id,
            webhook_id=d.webhook_id,
            incident_id=d.incident_id,
            event=d.event,
            status=d.status,
            attempts=d.attempts,
            next_attempt_ts=d.next_attempt_ts,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            created_ts=d.created_ts,
            delivered_ts=d.delivered_ts,
            payload=d.payload,
        )

"""Webhooks: which incident events go to which receiver, how a delivery is signed,
and when a failed one is tried again.

Pure functions and constants. The rows live in ``core/storage/webhooks.py``; the
dispatcher that follows the incident stream and does the HTTP is the ``cv-webhooks``
process (``commune_vision/webhooks.py``).

Receivers verify a delivery with the webhook's secret::

    expected = "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    hmac.compare_digest(expected, request.headers["X-CommuneVision-Signature"])
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

SEVERITIES: tuple[str, ...] = ("low", "medium", "high")  # in rising order
EVENTS: tuple[str, ...] = ("opened", "updated", "closed", "review")  # kinds on the stream
TEST_EVENT = "test"  # sent by POST /api/webhooks/{id}/test, never from the stream

SIGNATURE_HEADER = "X-CommuneVision-Signature"
TIMESTAMP_HEADER = "X-CommuneVision-Timestamp"
DELIVERY_HEADER = "X-CommuneVision-Delivery"
EVENT_HEADER = "X-CommuneVision-Event"

# Seconds to wait after the 1st, 2nd, … failed attempt. One attempt more than there
# are entries: after the last wait fails too, the delivery is ``failed``.
DEFAULT_BACKOFF_S: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0, 3600.0)

# The id of the last incident-stream entry the dispatcher turned into deliveries.
CURSOR_KEY = "cv:webhooks:last_id"

DELIVERY_PENDING = "pending"
DELIVERY_DELIVERED = "delivered"
DELIVERY_FAILED = "failed"


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One entry of the incident stream, decoded: every kind carries the incident
    as it is now (``core/bus.py``)."""

    stream_id: str
    kind: str
    incident: dict[str, Any]


def check_url(url: str) -> str:
    """The URL if a webhook may POST to it, else ValueError saying what to fix."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"webhook url must be http:// or https:// with a host, got {url!r}")
    return url


def check_severity(severity: str) -> str:
    if severity not in SEVERITIES:
        raise ValueError(f"min_severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    return severity


def new_secret() -> str:
    """256 random bits, URL-safe, for the HMAC key."""
    return secrets.token_urlsafe(32)


def matches(
    camera_ids: Sequence[str], types: Sequence[str], min_severity: str, incident: Mapping[str, Any]
) -> bool:
    """Whether a webhook with these filters wants this incident. Empty lists mean
    "every camera" / "every type"; an incident of unknown severity counts as the
    lowest, so a ``low`` webhook still gets it and a ``high`` one does not."""
    if camera_ids and incident.get("camera_id") not in camera_ids:
        return False
    if types and incident.get("type") not in types:
        return False
    return _rank(str(incident.get("severity", ""))) >= _rank(min_severity)


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


def payload_for(
    event: str, stream_id: str | None, incident: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The JSON a receiver gets. ``stream_id`` is the incident stream's entry id:
    unique per event and ordered, so receivers can drop duplicates and reorder."""
    return {"event": event, "stream_id": stream_id, "incident": incident}


def body_bytes(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes sent and signed: sorted keys and no spaces, so every retry of
    a delivery carries the same body and the same signature."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: str, body: bytes) -> str:
    """``X-CommuneVision-Signature`` value: HMAC-SHA256 of the body bytes, hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does; constant time, so the comparison leaks nothing."""
    return hmac.compare_digest(sign(secret, body), signature)


def delivery_headers(
    secret: str, body: bytes, delivery_id: int, event: str, now_ts: float
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "commune-vision-webhooks/1",
        SIGNATURE_HEADER: sign(secret, body),
        TIMESTAMP_HEADER: str(int(now_ts)),
        DELIVERY_HEADER: str(delivery_id),
        EVENT_HEADER: event,
    }


def next_attempt_ts(
    failed_attempts: int, now_ts: float, backoff_s: Sequence[float]
) -> float | None:
    """When to try again after ``failed_attempts`` failures, or None to give up."""
    if failed_attempts < 1:
        return now_ts
    if failed_attempts > len(backoff_s):
        return None
    return now_ts + backoff_s[failed_attempts - 1]


def delivered(status_code: int | None) -> bool:
    """2xx only: a redirect is not followed (the receiver's URL should be fixed)."""
    return status_code is not None and 200 <= status_code < 300

"""Webhook subscriptions and their deliveries.

Two callers: the API (admin changes, delivery state) and the ``cv-webhooks``
dispatcher (turning stream entries into deliveries, sending due ones, recording
outcomes). Neither is a pipeline event, so this does not go through the pipeline's
single writer (like config edits and users).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from core.redact import redact_url
from core.storage import audit
from core.storage.models import WebhookDeliveryRow, WebhookRow
from core.webhooks import (
    DELIVERY_DELIVERED,
    DELIVERY_FAILED,
    DELIVERY_PENDING,
    TEST_EVENT,
    StreamEntry,
    delivered,
    matches,
    next_attempt_ts,
    payload_for,
)

# Stream ids and delivery timestamps come from different clocks (Valkey's, ours).
CLOCK_SKEW_S = 60.0
ERROR_MAX_CHARS = 512  # the column's size

# Fields an admin may change; the secret is shown nowhere, the audit log included.
EDITABLE = ("name", "url", "secret", "active", "camera_ids", "types", "min_severity")


@dataclass(frozen=True, slots=True)
class Webhook:
    id: int
    name: str
    url: str
    secret: str
    active: bool
    camera_ids: list[str]
    types: list[str]
    min_severity: str
    created_ts: float

    def wants(self, incident: dict[str, Any]) -> bool:
        return self.active and matches(self.camera_ids, self.types, self.min_severity, incident)

    def public(self) -> dict[str, Any]:
        """What the API and the audit log may show: no secret, no credentials in the URL."""
        shown = {k: getattr(self, k) for k in EDITABLE if k != "secret"}
        shown["url"] = redact_url(self.url)
        return shown


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    webhook_id: int
    incident_id: str
    event: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_ts: float
    last_status_code: int | None
    last_error: str | None
    created_ts: float
    delivered_ts: float | None


def _webhook(row: WebhookRow) -> Webhook:
    return Webhook(
        id=row.id,
        name=row.name,
        url=row.url,
        secret=row.secret,
        active=row.active,
        camera_ids=list(row.camera_ids or []),
        types=list(row.types or []),
        min_severity=row.min_severity,
        created_ts=row.created_ts,
    )


def _delivery(row: WebhookDeliveryRow) -> Delivery:
    return Delivery(
        id=row.id,
        webhook_id=row.webhook_id,
        incident_id=row.incident_id,
        event=row.event,
        payload=dict(row.payload),
        status=row.status,
        attempts=row.attempts,
        next_attempt_ts=row.next_attempt_ts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_ts=row.created_ts,
        delivered_ts=row.delivered_ts,
    )


def _incident_id(incident: dict[str, Any]) -> str:
    return str(incident.get("id", ""))[:32]  # the column's size


def _stream_ms(stream_id: str) -> int:
    return int(stream_id.split("-", 1)[0])


class WebhookStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- admin (API) -------------------------------------------------------------

    def create(
        self,
        *,
        name: str,
        url: str,
        secret: str,
        camera_ids: Sequence[str],
        types: Sequence[str],
        min_severity: str,
        active: bool,
        actor: str,
    ) -> Webhook:
        now = time.time()
        row = WebhookRow(
            name=name,
            url=url,
            secret=secret,
            active=active,
            camera_ids=list(camera_ids),
            types=list(types),
            min_severity=min_severity,
            created_ts=now,
        )
        with Session(self._engine) as session, session.begin():
            session.add(row)
            session.flush()
            hook = _webhook(row)
            audit.record(
                session,
                audit.Change(actor, "webhook.create", "webhook", str(hook.id), None, hook.public()),
                now,
            )
            return hook

    def all(self) -> list[Webhook]:
        with Session(self._engine) as session:
            return [
                _webhook(r) for r in session.scalars(select(WebhookRow).order_by(WebhookRow.id))
            ]

    def get(self, webhook_id: int) -> Webhook | None:
        with Session(self._engine) as session:
            row = session.get(WebhookRow, webhook_id)
            return _webhook(row) if row is not None else None

    def update(self, webhook_id: int, changes: dict[str, Any], actor: str) -> Webhook | None:
        """Apply ``changes`` (keys from EDITABLE); None if there is no such webhook."""
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
        with Session(self._engine) as session, session.begin():
            row = session.get(WebhookRow, webhook_id)
            if row is None:
                return None
            old = _webhook(row)
            for key, value in changes.items():
                setattr(row, key, list(value) if isinstance(value, list | tuple) else value)
            session.flush()
            new = _webhook(row)
            before, after = old.public(), new.public()
            # Compared on the real values: a changed URL password shows as changed (*** both).
            changed = [k for k in after if getattr(old, k) != getattr(new, k)]
            diff_before = {k: before[k] for k in changed}
            diff_after = {k: after[k] for k in changed}
            if old.secret != new.secret:  # recorded as changed, never shown
                diff_before["secret"] = diff_after["secret"] = "***"
            if diff_after:
                audit.record(
                    session,
                    audit.Change(
                        actor, "webhook.update", "webhook", str(webhook_id), diff_before, diff_after
                    ),
                )
            return new

    def delete(self, webhook_id: int, actor: str) -> bool:
        """Remove the webhook and its deliveries (nothing would send or show them)."""
        with Session(self._engine) as session, session.begin():
            row = session.get(WebhookRow, webhook_id)
            if row is None:
                return False
            gone = _webhook(row).public()
            session.execute(
                delete(WebhookDeliveryRow).where(WebhookDeliveryRow.webhook_id == webhook_id)
            )
            session.delete(row)
            audit.record(
                session, audit.Change(actor, "webhook.delete", "webhook", str(webhook_id), gone)
            )
            return True

    def deliveries(
        self,
        webhook_id: int,
        status: str | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """Newest first; ``before_id`` pages back."""
        stmt = select(WebhookDeliveryRow).where(WebhookDeliveryRow.webhook_id == webhook_id)
        if status is not None:
            stmt = stmt.where(WebhookDeliveryRow.status == status)
        if before_id is not None:
            stmt = stmt.where(WebhookDeliveryRow.id < before_id)
        stmt = stmt.order_by(WebhookDeliveryRow.id.desc()).limit(limit)
        with Session(self._engine) as session:
            return [_delivery(r) for r in session.scalars(stmt)]

    def get_delivery(self, delivery_id: int) -> Delivery | None:
        with Session(self._engine) as session:
            row = session.get(WebhookDeliveryRow, delivery_id)
            return _delivery(row) if row is not None else None

    def enqueue_test(self, webhook_id: int, now_ts: float | None = None) -> Delivery | None:
        """A ``test`` delivery, due at once (the dispatcher sends it within a second);
        None if there is no such webhook. Sent even while the webhook is paused: the
        admin asked for it."""
        now = time.time() if now_ts is None else now_ts
        with Session(self._engine) as session, session.begin():
            if session.get(WebhookRow, webhook_id) is None:
                return None
            row = _new_delivery(
                webhook_id, "", TEST_EVENT, payload_for(TEST_EVENT, None, None), now
            )
            session.add(row)
            session.flush()
            return _delivery(row)

    # -- dispatcher ----------------------------------------------------------------

    def enqueue(self, entries: Sequence[StreamEntry], now_ts: float) -> int:
        """Deliveries for every active webhook that wants each entry; the count made.

        Idempotent per (webhook, stream entry): entries read again after a crash
        between this commit and saving the stream position make no second delivery.
        """
        if not entries:
            return 0
        with Session(self._engine) as session, session.begin():
            hooks = [
                _webhook(r) for r in session.scalars(select(WebhookRow).where(WebhookRow.active))
            ]
            if not hooks:
                return 0
            # Rows for an entry are made after it was published: only those can be repeats.
            oldest_s = min(_stream_ms(e.stream_id) for e in entries) / 1000 - CLOCK_SKEW_S
            recent = session.scalars(
                select(WebhookDeliveryRow).where(
                    WebhookDeliveryRow.webhook_id.in_([h.id for h in hooks]),
                    WebhookDeliveryRow.created_ts >= oldest_s,
                    WebhookDeliveryRow.incident_id.in_(
                        sorted({_incident_id(e.incident) for e in entries})
                    ),
                )
            )
            done = {(r.webhook_id, r.payload.get("stream_id")) for r in recent}
            made = 0
            for entry in entries:
                incident = entry.incident
                for hook in hooks:
                    if (hook.id, entry.stream_id) in done or not hook.wants(incident):
                        continue
                    payload = payload_for(entry.kind, entry.stream_id, incident)
                    incident_id = _incident_id(incident)
                    session.add(_new_delivery(hook.id, incident_id, entry.kind, payload, now_ts))
                    made += 1
            return made

    def due(
        self, now_ts: float, limit: int, exclude: Collection[int] = ()
    ) -> list[tuple[Delivery, Webhook]]:
        """Pending deliveries whose time has come, oldest due first, with their
        webhook. A paused webhook's deliveries wait (its test deliveries excepted)."""
        stmt = (
            select(WebhookDeliveryRow, WebhookRow)
            .join(WebhookRow, WebhookRow.id == WebhookDeliveryRow.webhook_id)
            .where(
                WebhookDeliveryRow.status == DELIVERY_PENDING,
                WebhookDeliveryRow.next_attempt_ts <= now_ts,
                WebhookRow.active | (WebhookDeliveryRow.event == TEST_EVENT),
            )
            .order_by(WebhookDeliveryRow.next_attempt_ts, WebhookDeliveryRow.id)
            .limit(limit)
        )
        if exclude:
            stmt = stmt.where(WebhookDeliveryRow.id.not_in(list(exclude)))
        with Session(self._engine) as session:
            return [(_delivery(d), _webhook(w)) for d, w in session.execute(stmt)]

    def record_attempt(
        self,
        delivery_id: int,
        status_code: int | None,
        error: str | None,
        now_ts: float,
        backoff_s: Sequence[float],
    ) -> Delivery | None:
        """Count one attempt: delivered on a 2xx, else due again after the backoff
        for this many failures, or ``failed`` once the schedule is used up. None if
        the delivery is gone (its webhook was deleted while the request ran)."""
        with Session(self._engine) as session, session.begin():
            row = session.get(WebhookDeliveryRow, delivery_id)
            if row is None:
                return None
            row.attempts += 1
            row.last_status_code = status_code
            row.last_error = error[:ERROR_MAX_CHARS] if error else None
            if delivered(status_code):
                row.status = DELIVERY_DELIVERED
                row.delivered_ts = now_ts
            else:
                retry_ts = next_attempt_ts(row.attempts, now_ts, backoff_s)
                if retry_ts is None:
                    row.status = DELIVERY_FAILED
                else:
                    row.next_attempt_ts = retry_ts
            session.flush()
            return _delivery(row)

    def prune(self, before_ts: float) -> int:
        """Forget finished deliveries created before ``before_ts``; pending ones stay."""
        with Session(self._engine) as session, session.begin():
            result = session.execute(
                delete(WebhookDeliveryRow).where(
                    WebhookDeliveryRow.status != DELIVERY_PENDING,
                    WebhookDeliveryRow.created_ts < before_ts,
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)


def _new_delivery(
    webhook_id: int, incident_id: str, event: str, payload: dict[str, Any], now_ts: float
) -> WebhookDeliveryRow:
    return WebhookDeliveryRow(
        webhook_id=webhook_id,
        incident_id=incident_id,
        event=event,
        payload=payload,
        status=DELIVERY_PENDING,
        attempts=0,
        next_attempt_ts=now_ts,
        last_status_code=None,
        last_error=None,
        created_ts=now_ts,
        delivered_ts=None,
    )

"""The audit log: who changed what, when, from what to what.

Append-only by construction: this module can add an entry (inside the caller's
transaction, so the change and its record commit or roll back together) and read
entries; nothing here updates or deletes one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.config import CameraConfig
from core.redact import redact_url
from core.storage.models import AuditRow


@dataclass(frozen=True, slots=True)
class Change:
    """One change to record; ``before``/``after`` hold only the fields that changed."""

    actor: str  # Principal.actor: "user:anh", "api_key:vms-bridge"
    action: str  # "<entity>.<verb>": "incident.acknowledge", "camera.update", …
    entity_type: str  # incident | camera | camera_config
    entity_id: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


# For changes whose entity id (a new config version) exists only once the change is
# flushed: called with that id, returns what to record.
ChangesFor = Callable[[int], Sequence[Change]]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    ts: float
    actor: str
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class AuditQuery:
    entity_type: str | None = None
    entity_id: str | None = None
    actor: str | None = None
    since_ts: float | None = None
    until_ts: float | None = None
    before_id: int | None = None  # cursor: ids grow with time, newest first
    limit: int = 100


def record(session: Session, change: Change, ts: float | None = None) -> None:
    """Add ``change`` to the caller's session: it commits with the change itself."""
    session.add(
        AuditRow(
            ts=time.time() if ts is None else ts,
            actor=change.actor,
            action=change.action,
            entity_type=change.entity_type,
            entity_id=change.entity_id,
            before=change.before,
            after=change.after,
        )
    )


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        ts=row.ts,
        actor=row.actor,
        action=row.action,
        entity_type=row.entity_type,
        entity_id=row.entity_id,
        before=row.before,
        after=row.after,
    )


class AuditLog:
    """Read side of the audit log."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def search(self, query: AuditQuery) -> list[AuditEntry]:
        """Newest first."""
        stmt = select(AuditRow)
        if query.entity_type is not None:
            stmt = stmt.where(AuditRow.entity_type == query.entity_type)
        if query.entity_id is not None:
            stmt = stmt.where(AuditRow.entity_id == query.entity_id)
        if query.actor is not None:
            stmt = stmt.where(AuditRow.actor == query.actor)
        if query.since_ts is not None:
            stmt = stmt.where(AuditRow.ts >= query.since_ts)
        if query.until_ts is not None:
            stmt = stmt.where(AuditRow.ts < query.until_ts)
        if query.before_id is not None:
            stmt = stmt.where(AuditRow.id < query.before_id)
        stmt = stmt.order_by(AuditRow.id.desc()).limit(query.limit)
        with Session(self._engine) as session:
            return [_entry(row) for row in session.scalars(stmt)]

    def history(self, entity_type: str, entity_id: str) -> list[AuditEntry]:
        """Every entry of one entity, oldest first (the order a reader follows)."""
        stmt = (
            select(AuditRow)
            .where(AuditRow.entity_type == entity_type, AuditRow.entity_id == entity_id)
            .order_by(AuditRow.id)
        )
        with Session(self._engine) as session:
            return [_entry(row) for row in session.scalars(stmt)]


# -- camera config changes --------------------------------------------------------

_SECRET_FIELDS = ("url", "record_url")


def _public(camera: CameraConfig) -> dict[str, Any]:
    # The audit log is read by people who must not see camera passwords.
    data = camera.model_dump(mode="json")
    for key in _SECRET_FIELDS:
        if data.get(key):
            data[key] = redact_url(data[key])
    return data


def camera_diff(
    old: CameraConfig | None, new: CameraConfig | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The top-level fields of a camera that differ, before and after, credentials
    redacted. Compared on the real values, so a changed password still shows the
    URL as changed (as ``***`` on both sides)."""
    if old is None or new is None:
        return (_public(old) if old else None, _public(new) if new else None)
    raw_old, raw_new = old.model_dump(mode="json"), new.model_dump(mode="json")
    changed = [k for k in raw_new if raw_old.get(k) != raw_new[k]]
    shown_old, shown_new = _public(old), _public(new)
    return ({k: shown_old.get(k) for k in changed}, {k: shown_new[k] for k in changed})

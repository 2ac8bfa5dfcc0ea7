"""Read side of incident storage, used by the API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.storage.models import IncidentRow, TrafficCountRow
from core.types import Incident


@dataclass(frozen=True, slots=True)
class IncidentQuery:
    camera_ids: Sequence[str] = ()
    types: Sequence[str] = ()
    since_ts: float | None = None
    until_ts: float | None = None
    before_id: str | None = None  # cursor: ids are time-ordered, newest first
    limit: int = 50


class IncidentRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def search(self, query: IncidentQuery) -> list[Incident]:
        stmt = select(IncidentRow)
        if query.camera_ids:
            stmt = stmt.where(IncidentRow.camera_id.in_(query.camera_ids))
        if query.types:
            stmt = stmt.where(IncidentRow.type.in_(query.types))
        if query.since_ts is not None:
            stmt = stmt.where(IncidentRow.start_ts >= query.since_ts)
        if query.until_ts is not None:
            stmt = stmt.where(IncidentRow.start_ts < query.until_ts)
        if query.before_id is not None:
            stmt = stmt.where(IncidentRow.id < query.before_id)
        stmt = stmt.order_by(IncidentRow.id.desc()).limit(query.limit)
        with Session(self._engine) as session:
            return [row.to_incident() for row in session.scalars(stmt)]

    def get(self, incident_id: str) -> Incident | None:
        with Session(self._engine) as session:
            row = session.get(IncidentRow, incident_id)
            return row.to_incident() if row is not None else None

    def set_evidence_lock(self, incident_id: str, locked: bool) -> Incident | None:
        """Set or clear the lock; None if there is no such incident. Idempotent.

        A user action through the API, not a pipeline event, so it does not go
        through the pipeline's single writer (like config edits).
        """
        with Session(self._engine) as session, session.begin():
            row = session.get(IncidentRow, incident_id)
            if row is None:
                return None
            row.evidence_locked = locked
            session.flush()
            return row.to_incident()


@dataclass(frozen=True, slots=True)
class TrafficPoint:
    bucket_start_ts: float
    line: str
    label: str
    direction: str
    count: int


class TrafficRepository:
    """Line-crossing counts, re-bucketed on read (stored per minute)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def series(
        self,
        camera_id: str,
        since_ts: float,
        until_ts: float,
        bucket_s: float,
        line: str | None = None,
    ) -> list[TrafficPoint]:
        # floor() works on SQLite and PostgreSQL alike (PostgreSQL has no float mod()).
        bucket = func.floor(TrafficCountRow.bucket_start_ts / bucket_s) * bucket_s
        stmt = (
            select(
                bucket.label("bucket"),
                TrafficCountRow.line,
                TrafficCountRow.label,
                TrafficCountRow.direction,
                func.sum(TrafficCountRow.count),
            )
            .where(
                TrafficCountRow.camera_id == camera_id,
                TrafficCountRow.bucket_start_ts >= since_ts,
                TrafficCountRow.bucket_start_ts < until_ts,
            )
            .group_by(
                "bucket", TrafficCountRow.line, TrafficCountRow.label, TrafficCountRow.direction
            )
            .order_by(
                "bucket", TrafficCountRow.line, TrafficCountRow.label, TrafficCountRow.direction
            )
        )
        if line is not None:
            stmt = stmt.where(TrafficCountRow.line == line)
        with Session(self._engine) as session:
            return [
                TrafficPoint(float(b), str(ln), str(lb), str(d), int(n))
                for b, ln, lb, d, n in session.execute(stmt)
            ]

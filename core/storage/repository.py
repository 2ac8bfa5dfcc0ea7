"""Read side of incident storage, used by the API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.storage.audit import Change, record
from core.storage.models import IncidentRow, TrafficCountRow
from core.storage.planner_stats import PlannerStatistics
from core.storage.search import GroupKey, count_statement, run_search
from core.storage.search import IncidentQuery as IncidentQuery  # noqa: PLC0414 (re-export)
from core.types import Incident

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class IncidentCount:
    camera_id: str | None  # None when not grouped by camera
    day: date | None  # the local calendar day; None when not grouped by day
    type: str | None
    count: int


class IncidentRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.planner_stats = PlannerStatistics(engine)  # SQLite: keeps search plans good

    def search(self, query: IncidentQuery) -> list[Incident]:
        """One page of matches in ``query.sort`` order (filters: ``core.storage.search``)."""
        self.planner_stats.maybe_refresh_in_background()
        with Session(self._engine) as session:
            return [row.to_incident() for row in run_search(session, query)]

    def counts(
        self, since_ts: float, until_ts: float, group_by: Sequence[GroupKey], tz: ZoneInfo
    ) -> list[IncidentCount]:
        """Incidents that started in ``[since_ts, until_ts)``, counted per ``group_by``."""
        stmt = count_statement(since_ts, until_ts, group_by, tz)
        with Session(self._engine) as session:
            return [
                IncidentCount(
                    camera_id=str(row.camera) if "camera" in group_by else None,
                    day=date.fromordinal(EPOCH_ORDINAL + int(row.day))
                    if "day" in group_by
                    else None,
                    type=str(row.type) if "type" in group_by else None,
                    count=int(row.n),
                )
                for row in session.execute(stmt)
            ]

    def get(self, incident_id: str) -> Incident | None:
        with Session(self._engine) as session:
            row = session.get(IncidentRow, incident_id)
            return row.to_incident() if row is not None else None

    def set_evidence_lock(self, incident_id: str, locked: bool, actor: str) -> Incident | None:
        """Set or clear the lock; None if there is no such incident. Idempotent.

        A user action through the API, not a pipeline event, so it does not go
        through the pipeline's single writer (like config edits). A real change is
        audited as ``actor`` in the same transaction; a repeat changes and records nothing.
        """
        with Session(self._engine) as session, session.begin():
            row = session.get(IncidentRow, incident_id)
            if row is None:
                return None
            if row.evidence_locked != locked:
                action = "incident.evidence_lock" if locked else "incident.evidence_unlock"
                before = {"evidence_locked": row.evidence_locked}
                change = Change(
                    actor, action, "incident", incident_id, before, {"evidence_locked": locked}
                )
                record(session, change)
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

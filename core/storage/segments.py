"""The recording segment index: what footage exists, for clips, timelines and retention."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.storage.models import IncidentRow, SegmentRow
from core.types import SegmentClosed

# Segments closer than this are one continuous recording on a timeline: the gap
# between two segments of a live stream is one frame period plus clock jitter.
CONTIGUOUS_S = 1.0


@dataclass(frozen=True, slots=True)
class Segment:
    id: int
    camera_id: str
    path: str  # relative to the recordings directory
    start_ts: float
    end_ts: float
    bytes: int

    @property
    def duration_s(self) -> float:
        return self.end_ts - self.start_ts


@dataclass(frozen=True, slots=True)
class CameraUsage:
    camera_id: str
    segments: int
    bytes: int
    oldest_ts: float | None
    newest_ts: float | None


def _segment(row: SegmentRow) -> Segment:
    return Segment(row.id, row.camera_id, row.path, row.start_ts, row.end_ts, row.bytes)


def merge_ranges(
    segments: Iterable[Segment], tolerance_s: float = CONTIGUOUS_S
) -> list[tuple[float, float]]:
    """Recorded time ranges: segments (sorted by start) that touch become one range."""
    ranges: list[tuple[float, float]] = []
    for seg in segments:
        if ranges and seg.start_ts <= ranges[-1][1] + tolerance_s:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], seg.end_ts))
        else:
            ranges.append((seg.start_ts, seg.end_ts))
    return ranges


def gaps_between(
    ranges: Sequence[tuple[float, float]], since_ts: float, until_ts: float
) -> list[tuple[float, float]]:
    """The parts of [since, until) no range covers."""
    gaps: list[tuple[float, float]] = []
    cursor = since_ts
    for start, end in ranges:
        if start > cursor:
            gaps.append((cursor, min(start, until_ts)))
        cursor = max(cursor, end)
        if cursor >= until_ts:
            break
    if cursor < until_ts:
        gaps.append((cursor, until_ts))
    return [(a, b) for a, b in gaps if b > a]


class SegmentIndex:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- write side (the single writer and retention) --------------------------
    def add(self, event: SegmentClosed) -> bool:
        """Index a segment; False if its path was indexed already (a re-announce)."""
        values = {
            "camera_id": event.camera_id,
            "path": event.path,
            "start_ts": event.start_ts,
            "end_ts": event.end_ts,
            "bytes": event.bytes,
        }
        insert = pg_insert if self._engine.dialect.name == "postgresql" else sqlite_insert
        stmt = insert(SegmentRow).values(**values).on_conflict_do_nothing(index_elements=["path"])
        with Session(self._engine) as session, session.begin():
            result = session.execute(stmt)
            return bool(getattr(result, "rowcount", 0))

    def remove(self, segment_ids: Sequence[int]) -> None:
        if not segment_ids:
            return
        with Session(self._engine) as session, session.begin():
            session.execute(delete(SegmentRow).where(SegmentRow.id.in_(segment_ids)))

    # -- read side ---------------------------------------------------------------
    def overlapping(self, camera_id: str, since_ts: float, until_ts: float) -> list[Segment]:
        """Segments of a camera that overlap [since, until), oldest first."""
        stmt = (
            select(SegmentRow)
            .where(
                SegmentRow.camera_id == camera_id,
                SegmentRow.start_ts < until_ts,
                SegmentRow.end_ts > since_ts,
            )
            .order_by(SegmentRow.start_ts)
        )
        with Session(self._engine) as session:
            return [_segment(r) for r in session.scalars(stmt)]

    def get(self, segment_id: int) -> Segment | None:
        with Session(self._engine) as session:
            row = session.get(SegmentRow, segment_id)
            return _segment(row) if row is not None else None

    def paths(self, camera_id: str | None = None) -> set[str]:
        stmt = select(SegmentRow.path)
        if camera_id is not None:
            stmt = stmt.where(SegmentRow.camera_id == camera_id)
        with Session(self._engine) as session:
            return set(session.scalars(stmt))

    def oldest(
        self,
        camera_id: str | None,
        before_ts: float | None = None,
        limit: int = 500,
        after: tuple[float, int] | None = None,
    ) -> list[Segment]:
        """Oldest segments first (of one camera, or of all), for retention to walk.

        ``after`` is ``(start_ts, id)`` of the last segment of the previous page: the
        walk goes on from there, so segments it decided to keep are not read again.
        """
        stmt = select(SegmentRow).order_by(SegmentRow.start_ts, SegmentRow.id).limit(limit)
        if camera_id is not None:
            stmt = stmt.where(SegmentRow.camera_id == camera_id)
        if before_ts is not None:
            stmt = stmt.where(SegmentRow.start_ts < before_ts)
        if after is not None:
            # Written so the start_ts indexes serve the range (an OR alone would not).
            after_ts, after_id = after
            stmt = stmt.where(
                SegmentRow.start_ts >= after_ts,
                or_(SegmentRow.start_ts > after_ts, SegmentRow.id > after_id),
            )
        with Session(self._engine) as session:
            return [_segment(r) for r in session.scalars(stmt)]

    def usage(self) -> list[CameraUsage]:
        stmt = (
            select(
                SegmentRow.camera_id,
                func.count(),
                func.coalesce(func.sum(SegmentRow.bytes), 0),
                func.min(SegmentRow.start_ts),
                func.max(SegmentRow.end_ts),
            )
            .group_by(SegmentRow.camera_id)
            .order_by(SegmentRow.camera_id)
        )
        with Session(self._engine) as session:
            return [
                CameraUsage(str(c), int(n), int(b), lo, hi)
                for c, n, b, lo, hi in session.execute(stmt)
            ]

    def camera_ids(self) -> list[str]:
        with Session(self._engine) as session:
            return list(session.scalars(select(SegmentRow.camera_id).distinct()))

    def kept_windows(
        self, camera_id: str, since_ts: float, until_ts: float, locked_only: bool
    ) -> list[tuple[float, float]]:
        """Clip windows of incidents that overlap [since, until): footage to keep.

        ``locked_only`` gives the evidence-locked ones, which every policy keeps; else
        every incident's window (the ``events`` recording mode). An open incident
        (no clip end yet) keeps everything from its clip start on.
        """
        clip_end = func.coalesce(IncidentRow.clip_end_ts, IncidentRow.end_ts)
        stmt = select(IncidentRow.clip_start_ts, clip_end).where(
            IncidentRow.camera_id == camera_id,
            IncidentRow.clip_start_ts < until_ts,
            or_(clip_end.is_(None), clip_end > since_ts),
        )
        if locked_only:
            stmt = stmt.where(IncidentRow.evidence_locked.is_(True))
        with Session(self._engine) as session:
            return [
                (float(start), float(end) if end is not None else float("inf"))
                for start, end in session.execute(stmt)
            ]

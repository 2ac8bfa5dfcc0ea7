"""Tables. Timestamps are UTC seconds since the epoch (``*_ts``), the pipeline's time base."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.types import Incident


class Base(DeclarativeBase):
    pass


class IncidentRow(Base):
    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    labels: Mapped[list[str]] = mapped_column(JSON)
    track_ids: Mapped[list[int]] = mapped_column(JSON)
    zone: Mapped[str | None] = mapped_column(String(64))
    start_ts: Mapped[float] = mapped_column(Float)
    end_ts: Mapped[float | None] = mapped_column(Float)
    peak_score: Mapped[float] = mapped_column(Float)
    clip_start_ts: Mapped[float] = mapped_column(Float)
    clip_end_ts: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    snapshot_path: Mapped[str | None] = mapped_column(String(512))
    created_ts: Mapped[float] = mapped_column(Float)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    evidence_locked: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_incidents_camera_start", "camera_id", "start_ts"),
        Index("ix_incidents_start", "start_ts"),
        Index("ix_incidents_type_start", "type", "start_ts"),
        Index("ix_incidents_locked", "evidence_locked"),
    )

    @classmethod
    def from_incident(cls, incident: Incident) -> IncidentRow:
        return cls(**incident.to_json_dict())

    def to_incident(self) -> Incident:
        return Incident(**{c: getattr(self, c) for c in _COLUMNS})


_COLUMNS: tuple[str, ...] = tuple(c.name for c in IncidentRow.__table__.columns)


def row_dict(row: IncidentRow) -> dict[str, Any]:
    return {c: getattr(row, c) for c in _COLUMNS}


class TrafficCountRow(Base):
    """Line crossings per camera, line, class and direction, per time bucket."""

    __tablename__ = "traffic_counts"

    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(16), primary_key=True)
    direction: Mapped[str] = mapped_column(String(8), primary_key=True)
    bucket_start_ts: Mapped[float] = mapped_column(Float, primary_key=True)
    bucket_s: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_traffic_counts_time", "bucket_start_ts"),)


class CameraConfigVersion(Base):
    """One version of the live camera configuration (cameras, zones, rules).

    The YAML file seeds it; API edits add versions; the pipeline follows the
    newest.  ``source_hash`` is the hash of the YAML file a version was imported
    from, so an unchanged file does not overwrite edits made through the API.
    """

    __tablename__ = "camera_config_versions"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    created_ts: Mapped[float] = mapped_column(Float)
    author: Mapped[str] = mapped_column(String(128))
    comment: Mapped[str] = mapped_column(String(512))
    source_hash: Mapped[str | None] = mapped_column(String(64))
    cameras: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class SegmentRow(Base):
    """One recorded segment file: the index that footage, clips and retention use."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(512), unique=True)  # under the recordings dir
    start_ts: Mapped[float] = mapped_column(Float)
    end_ts: Mapped[float] = mapped_column(Float)
    bytes: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_segments_camera_start", "camera_id", "start_ts"),
        Index("ix_segments_start", "start_ts"),
    )

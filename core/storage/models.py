"""Tables. Timestamps are UTC seconds since the epoch (``*_ts``), the pipeline's time base."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String
from sqlalchemy import text as sql_text
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
    assignee: Mapped[str | None] = mapped_column(String(64))  # a username
    false_alarm_category: Mapped[str | None] = mapped_column(String(32))
    updated_ts: Mapped[float | None] = mapped_column(Float)  # last review change

    __table_args__ = (
        Index("ix_incidents_camera_start", "camera_id", "start_ts"),
        Index("ix_incidents_start", "start_ts"),
        Index("ix_incidents_type_start", "type", "start_ts"),
        Index("ix_incidents_locked_start", "evidence_locked", "start_ts"),
        Index("ix_incidents_status_start", "status", "start_ts"),
        Index("ix_incidents_assignee_start", "assignee", "start_ts"),
        Index("ix_incidents_camera_type_start", "camera_id", "type", "start_ts"),
        Index("ix_incidents_score", "peak_score", "id"),  # migration 0006
        Index("ix_incidents_labels", sql_text("(labels::jsonb)"), postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
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


# -- users, review and integrations (issue 7) ------------------------------------


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))  # admin | operator | police | viewer
    display_name: Mapped[str] = mapped_column(String(128), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_ts: Mapped[float] = mapped_column(Float)
    last_login_ts: Mapped[float | None] = mapped_column(Float)


class ApiKeyRow(Base):
    """An integration's key: only a SHA-256 of the secret is stored (keys are random,
    so a slow hash buys nothing); ``prefix`` finds the row without a scan."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(64))
    created_ts: Mapped[float] = mapped_column(Float)
    last_used_ts: Mapped[float | None] = mapped_column(Float)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditRow(Base):
    """Every change a person or integration makes: who, when, what, before and after."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(96))  # "user:anh", "api_key:vms", "system"
    action: Mapped[str] = mapped_column(String(64))  # "incident.acknowledge", "config.update"…
    entity_type: Mapped[str] = mapped_column(String(32))  # incident | camera_config | user…
    entity_id: Mapped[str] = mapped_column(String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_audit_entity", "entity_type", "entity_id", "ts"),
        Index("ix_audit_ts", "ts"),
    )


class IncidentNoteRow(Base):
    __tablename__ = "incident_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(String(32))
    ts: Mapped[float] = mapped_column(Float)
    author: Mapped[str] = mapped_column(String(96))
    text: Mapped[str] = mapped_column(String(4000))

    __table_args__ = (
        Index("ix_incident_notes_incident", "incident_id", "ts"),
        # PostgreSQL with pg_trgm only (migration 0006): substring search of notes.
        Index(
            "ix_incident_notes_text_trgm",
            "text",
            postgresql_using="gin",
            postgresql_ops={"text": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )


class WebhookRow(Base):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(1024))
    secret: Mapped[str] = mapped_column(String(128))  # HMAC-SHA256 key for X-Signature
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    camera_ids: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: every camera
    types: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: every type
    min_severity: Mapped[str] = mapped_column(String(16), default="low")
    created_ts: Mapped[float] = mapped_column(Float)


class WebhookDeliveryRow(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(Integer)
    incident_id: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(16))  # opened | updated | closed | review
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_ts: Mapped[float] = mapped_column(Float)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(512))
    created_ts: Mapped[float] = mapped_column(Float)
    delivered_ts: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_ts"),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "created_ts"),
    )

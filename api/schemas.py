"""Response models, kept apart from the routers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from core.config import CameraConfig
from core.storage.review import NOTE_MAX_CHARS, FalseAlarmCategory
from core.types import Incident, IncidentStatus


class IncidentOut(BaseModel):
    id: str
    camera_id: str
    rule: str
    type: str
    severity: str
    labels: list[str]
    track_ids: list[int]
    zone: str | None
    start_ts: float = Field(description="UTC seconds since the epoch")
    end_ts: float | None
    peak_score: float
    clip_start_ts: float
    clip_end_ts: float | None
    status: str
    snapshot_url: str | None
    details: dict[str, float | str] = Field(default_factory=dict)
    evidence_locked: bool = Field(
        False, description="its footage is kept whatever the retention policy"
    )
    assignee: str | None = Field(None, description="username of the reviewer it is assigned to")
    false_alarm_category: str | None = Field(
        None, description="why it was a false alarm; kept when it is closed"
    )
    updated_ts: float | None = Field(None, description="last review change by a person")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def start_time(self) -> str:
        return datetime.fromtimestamp(self.start_ts, UTC).isoformat()

    @classmethod
    def from_incident(cls, incident: Incident) -> IncidentOut:
        data = incident.to_json_dict()
        data.pop("snapshot_path")
        data.pop("created_ts")
        snapshot = f"/api/incidents/{incident.id}/snapshot" if incident.snapshot_path else None
        return cls(**data, snapshot_url=snapshot)


class IncidentPage(BaseModel):
    items: list[IncidentOut]
    next_cursor: str | None = Field(
        description="pass as `cursor` (with the same filters and sort) for the next page"
    )


class CameraHealthOut(BaseModel):
    camera_id: str
    state: str
    last_frame_ts: float | None
    input_fps: float
    decoded_fps: float
    frames_decoded: int = 0
    frames_delivered: int = 0
    frames_skipped: int = 0
    frames_dropped: int
    decode_errors: int = Field(
        0, description="corrupt pictures and undecodable packets (bad link or camera)"
    )
    reconnects: int
    last_error: str | None
    recording: str = Field("off", description="off | waiting_keyframe | recording | error")
    segments_recorded: int = 0
    record_error: str | None = None
    updated_ts: float


class Health(BaseModel):
    status: str
    checks: dict[str, str]


class CameraOut(CameraConfig):
    """A configured camera; credentials in URLs are shown as ``***``."""

    health: CameraHealthOut | None = None


class ConfigVersionOut(BaseModel):
    id: int
    created_ts: float
    author: str
    comment: str
    camera_ids: list[str]


class EventOut(BaseModel):
    id: str
    kind: str
    data: dict[str, Any]


class TrafficPointOut(BaseModel):
    bucket_start_ts: float
    line: str
    label: str
    direction: str
    count: int


class TimeRangeOut(BaseModel):
    start_ts: float
    end_ts: float


class TimelineIncidentOut(BaseModel):
    id: str
    type: str
    severity: str
    start_ts: float
    end_ts: float | None


class TimelineOut(BaseModel):
    """What one camera recorded in a window, for a timeline scrubber."""

    camera_id: str
    since_ts: float
    until_ts: float
    ranges: list[TimeRangeOut] = Field(description="recorded, merged, clipped to the window")
    gaps: list[TimeRangeOut] = Field(description="parts of the window with no footage")
    segments: int
    bytes: int
    recorded_s: float = Field(description="seconds of footage in the window")
    incidents: list[TimelineIncidentOut] = Field(
        description="incidents of the camera that started in the window, newest first"
    )


# -- review, audit, false-positive loop (issue 7) ----------------------------------


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(
        None, min_length=1, max_length=NOTE_MAX_CHARS, description="kept as a note of the change"
    )
    expected_status: IncidentStatus | None = Field(
        None,
        description="the status the reviewer saw; 409 if it changed meanwhile "
        "(two officers deciding at once)",
    )


class FalseAlarmIn(ReviewIn):
    category: FalseAlarmCategory = Field(description="why it was a false alarm")


class AssigneeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee: str | None = Field(description="an active user's username; null unassigns")


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=NOTE_MAX_CHARS)


class NoteOut(BaseModel):
    id: int
    incident_id: str
    ts: float
    author: str = Field(description="who wrote it, e.g. user:anh")
    text: str


class AuditEntryOut(BaseModel):
    id: int
    ts: float
    actor: str = Field(description="user:<username> or api_key:<name>")
    action: str = Field(description="e.g. incident.acknowledge, camera.update, config.rollback")
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None = Field(description="the changed fields before")
    after: dict[str, Any] | None = Field(description="the changed fields after")


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: int | None = Field(description="pass as `cursor` for the next (older) page")


class FalseAlarmRateOut(BaseModel):
    camera_id: str
    rule: str
    zone: str | None
    incidents: int = Field(description="incidents that started in the window")
    reviewed: int = Field(description="with a verdict: confirmed or false alarm, closed or not")
    confirmed: int
    false_alarms: int
    rate: float | None = Field(description="false_alarms / reviewed; null when none reviewed")
    categories: dict[str, int] = Field(description="false alarms per category")


class ThresholdSuggestionOut(BaseModel):
    camera_id: str
    rule: str
    rule_type: str
    reviewed: int
    confirmed: int
    false_alarms: int
    current_min_confidence: float
    suggested_min_confidence: float
    false_alarms_removed: int = Field(description="reviewed false alarms with peak score below it")
    confirmed_kept: int = Field(description="reviewed confirmed incidents with peak score ≥ it")
    false_alarm_reduction: float = Field(description="false_alarms_removed / false_alarms")
    confirmed_retention: float = Field(description="confirmed_kept / confirmed")


class SuppressionOut(BaseModel):
    version: int = Field(description="the new camera config version")
    incident_id: str
    camera_id: str
    rule: str
    zone: str | None
    before: dict[str, Any] = Field(description="the rule's changed settings before")
    after: dict[str, Any] = Field(description="the rule's changed settings in the new version")
    comment: str


class ConfigVersionDetailOut(ConfigVersionOut):
    cameras: list[CameraConfig] = Field(description="credentials in URLs are shown as ***")


class RollbackOut(BaseModel):
    version: int = Field(description="the new version, a copy of restored_from")
    restored_from: int
    camera_ids: list[str]


# -- incident counts (GET /api/stats/incidents) ----------------------------------


class IncidentCountOut(BaseModel):
    """One group's count; the keys not grouped by are null."""

    camera_id: str | None = None
    day: date | None = Field(None, description="local calendar day in `tz`, YYYY-MM-DD")
    type: str | None = None
    count: int


class IncidentStatsOut(BaseModel):
    since_ts: float
    until_ts: float
    tz: str
    group_by: list[str]
    total: int = Field(description="incidents that started in the window")
    groups: list[IncidentCountOut] = Field(description="sorted by the group keys")

"""Response models, kept apart from the routers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, computed_field

from core.config import CameraConfig
from core.types import Incident


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
    next_cursor: str | None = Field(description="pass as `cursor` for the next (older) page")


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

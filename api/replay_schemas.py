"""Request and response models of the what-if replay (``api/routers/replays.py``) and of
the threshold preview's latest detections (``GET /api/cameras/{id}/detections/latest``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.config import ClassFilter
from core.rule_config import LineConfig, RuleConfig, ZoneConfig
from core.types import DomainLabel

MAX_REPLAY_WINDOW_S = 3600.0  # an hour of footage replays in minutes on 2 cores


class ReplayCandidate(BaseModel):
    """What differs from the camera's live config; a field left out keeps the live
    value. The stream settings are never part of it: the footage replaces the stream."""

    model_config = ConfigDict(extra="forbid")

    filters: dict[DomainLabel, ClassFilter] | None = Field(
        None, description="per-class thresholds (minimum confidence and box area)"
    )
    zones: list[ZoneConfig] | None = None
    lines: list[LineConfig] | None = None
    rules: list[RuleConfig] | None = None


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    camera_id: str = Field(min_length=1, max_length=64)
    since_ts: float = Field(gt=0, description="start of the footage, UTC epoch seconds")
    until_ts: float = Field(
        gt=0, description=f"end of the footage; at most {MAX_REPLAY_WINDOW_S:.0f} s after since_ts"
    )
    candidate: ReplayCandidate = Field(default_factory=ReplayCandidate)


class ReplayIncidentOut(BaseModel):
    rule: str
    type: str
    start_ts: float = Field(description="UTC epoch seconds: the footage at this moment shows it")
    end_ts: float | None
    labels: list[str]
    zone: str | None
    peak_score: float
    match: Literal["both", "only_candidate", "only_current"] = Field(
        description="raised by both configs, or by one of them only"
    )


class ReplaySideOut(BaseModel):
    """What one config raised over the footage."""

    incidents: list[ReplayIncidentOut]
    by_rule: dict[str, int]
    by_type: dict[str, int]
    traffic: dict[str, int] = Field(description='line crossings, "line/label/direction" -> n')


class ReplayResultOut(BaseModel):
    footage_start_ts: float = Field(description="the first frame replayed (a key frame)")
    footage_end_ts: float
    segments: int
    frames_decoded: int = Field(description="frames at the camera's detect rate")
    frames_detected: int = Field(description="frames the motion gate let through")
    candidate: ReplaySideOut
    current: ReplaySideOut
    both: int
    only_candidate: int
    only_current: int


class ReplayJobOut(BaseModel):
    id: str
    camera_id: str
    since_ts: float
    until_ts: float
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float = Field(description="0..1, share of the footage replayed")
    requested_by: str
    created_ts: float
    started_ts: float | None
    finished_ts: float | None
    error: str | None = Field(description="why it failed or stopped")
    result: ReplayResultOut | None = Field(
        description="when done; left out of the list (GET /api/replays)"
    )


class DetectionOut(BaseModel):
    label: DomainLabel
    confidence: float
    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 normalised 0..1")


class LatestDetectionsOut(BaseModel):
    camera_id: str
    capture_ts: float = Field(description="capture time of the frame they were detected on")
    frame_seq: int
    width: int
    height: int
    image: str | None = Field(
        description="that frame as a data: URL (JPEG) while the camera's ring still holds "
        "it; null when it was overwritten (show snapshot.jpg instead)"
    )
    detections: list[DetectionOut] = Field(
        description="every box of a domain class the detector found, before the camera's "
        "per-class filters (the console applies the filters being edited)"
    )

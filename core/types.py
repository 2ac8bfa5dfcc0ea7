"""Typed messages that cross stage and process boundaries."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol

# Domain labels the rules speak in. COCO "motorcycle" is "motorbike" here.
DomainLabel = Literal["person", "bicycle", "motorbike", "car", "bus", "truck"]
DOMAIN_LABELS: tuple[str, ...] = ("person", "bicycle", "motorbike", "car", "bus", "truck")

Severity = Literal["low", "medium", "high"]


def new_incident_id(start_ts: float) -> str:
    """A time-ordered id: 12 hex digits of milliseconds, then 12 random hex digits.

    Sorting ids sorts by start time, which keeps cursor pagination cheap.
    """
    return f"{int(start_ts * 1000):012x}{os.urandom(6).hex()}"


class StopSignal(Protocol):
    """Anything loops can poll to know they should finish (threading.Event, StopFlag)."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class FrameRef:
    """A reference to one decoded frame held in a camera's shared-memory ring.

    Queues carry these, never pixels.
    """

    camera_id: str
    shm_name: str
    slot: int
    seq: int
    height: int
    width: int
    capture_ts: float  # wall clock, seconds since the epoch


class IncidentStatus(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    CONFIRMED = "confirmed"
    FALSE_ALARM = "false_alarm"
    CLOSED = "closed"


@dataclass(slots=True)
class Incident:
    """An incident as the pipeline reports it and the store keeps it."""

    id: str
    camera_id: str
    rule: str  # the rule's name in the camera config, e.g. "walkway-intrusion"
    type: str  # the rule type, e.g. "intrusion"
    severity: Severity
    labels: list[str]
    track_ids: list[int]
    zone: str | None
    start_ts: float
    end_ts: float | None
    peak_score: float
    clip_start_ts: float
    clip_end_ts: float | None
    status: str = IncidentStatus.NEW.value
    snapshot_path: str | None = None
    created_ts: float = field(default_factory=time.time)
    details: dict[str, float | str] = field(default_factory=dict)  # speed_kmh, count, …
    evidence_locked: bool = False  # its footage is kept whatever the retention policy
    assignee: str | None = None  # review: the username it is assigned to
    false_alarm_category: str | None = None  # review: why it was a false alarm
    updated_ts: float | None = None  # review: last change by a person

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class IncidentOpened:
    """A new incident, with the annotated snapshot JPEG to store beside it."""

    incident: Incident
    snapshot_jpeg: bytes


@dataclass(frozen=True, slots=True)
class IncidentUpdated:
    """An open incident that lasts longer or scores higher; ``closed`` ends it."""

    incident_id: str
    end_ts: float
    peak_score: float
    track_ids: list[int]
    closed: bool
    clip_end_ts: float | None
    details: dict[str, float | str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TrafficCount:
    """Line crossings of one class in one direction during one time bucket."""

    camera_id: str
    line: str
    label: str
    direction: str  # "in" | "out"
    bucket_start_ts: float
    bucket_s: float
    count: int


@dataclass(frozen=True, slots=True)
class TrafficCounts:
    items: list[TrafficCount]


@dataclass(frozen=True, slots=True)
class SegmentClosed:
    """A finished recording segment, renamed to its final path, for the index.

    ``path`` is relative to the recordings directory. Storing it twice is harmless:
    the index keys on the path.
    """

    camera_id: str
    path: str
    start_ts: float  # capture time of its first (key) frame
    end_ts: float  # capture time just after its last frame
    bytes: int


StoreEvent = IncidentOpened | IncidentUpdated | TrafficCounts | SegmentClosed


class CameraState(StrEnum):
    CONNECTING = "connecting"
    ONLINE = "online"
    STALLED = "stalled"
    OFFLINE = "offline"
    AUTH_FAILED = "auth_failed"
    NOT_FOUND = "not_found"
    ERROR = "error"


@dataclass(slots=True)
class CameraHealth:
    """What a camera is doing, as data for the API and metrics."""

    camera_id: str
    state: CameraState = CameraState.CONNECTING
    last_frame_ts: float | None = None
    input_fps: float = 0.0
    decoded_fps: float = 0.0
    frames_decoded: int = 0  # every frame decoded from the stream
    frames_delivered: int = 0  # frames sent on to the detector (at the detect fps)
    frames_skipped: int = 0  # detect-rate frames the motion gate held back
    frames_dropped: int = 0  # frames the detector queue had no room for
    decode_errors: int = 0  # corrupt pictures (concealed) and packets that would not decode
    reconnects: int = 0
    last_error: str | None = None
    recording: str = "off"  # off | waiting_keyframe | recording | error
    segments_recorded: int = 0
    record_error: str | None = None
    updated_ts: float = field(default_factory=time.time)

    def to_json_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return data

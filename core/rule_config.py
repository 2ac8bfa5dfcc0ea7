"""Rule and geometry settings of a camera: zones, lines, calibration, rules.

All image coordinates are normalised to 0..1 (x to the width, y to the height,
origin top-left), so they survive a change of stream resolution.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.types import DomainLabel, Severity

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Point = tuple[float, float]
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
VEHICLES: list[DomainLabel] = ["bicycle", "motorbike", "car", "bus", "truck"]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_points(points: list[Point]) -> list[Point]:
    for x, y in points:
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(
                f"point ({x}, {y}) is outside 0..1: use coordinates normalised "
                "to the image width and height"
            )
    return points


def _people() -> list[DomainLabel]:
    return ["person"]


def _vehicles() -> list[DomainLabel]:
    return list(VEHICLES)


class ZoneConfig(StrictModel):
    """A named polygon."""

    name: str = Field(pattern=ID_PATTERN)
    points: list[Point]

    @field_validator("points")
    @classmethod
    def _polygon(cls, points: list[Point]) -> list[Point]:
        if len(points) < 3:
            raise ValueError("polygon needs ≥ 3 points")
        return _check_points(points)


class LineConfig(StrictModel):
    """A named line from A to B. Crossing it left-to-right, as seen walking from A
    to B, is direction ``in``; the other way is ``out``."""

    name: str = Field(pattern=ID_PATTERN)
    points: list[Point]

    @field_validator("points")
    @classmethod
    def _segment(cls, points: list[Point]) -> list[Point]:
        if len(points) != 2:
            raise ValueError("a line needs exactly 2 points")
        if points[0] == points[1]:
            raise ValueError("the 2 points of a line must differ")
        return _check_points(points)


class Calibration(StrictModel):
    """Ground-plane calibration: 4 image points and where they are on the ground,
    in metres (any origin), e.g. the corners of a lane marking of known size."""

    image_points: list[Point] = Field(min_length=4, max_length=4)
    world_points_m: list[tuple[float, float]] = Field(min_length=4, max_length=4)

    @field_validator("image_points")
    @classmethod
    def _image(cls, points: list[Point]) -> list[Point]:
        return _check_points(points)


class TimeWindow(StrictModel):
    """Daily window in the service's time zone; ``22:00``–``05:00`` spans midnight."""

    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError(f"{value!r} is not a time of day like 22:00")
        return value


class _RuleBase(StrictModel):
    name: str = Field(pattern=ID_PATTERN)
    min_confidence: float = Field(0.35, ge=0.0, le=1.0)
    cooldown_s: float = Field(10.0, ge=0.0, description="quiet time per track after an incident")
    severity: Severity = "medium"
    schedule: list[TimeWindow] = Field(
        default_factory=list, description="active only in these daily windows; empty = always"
    )


class IntrusionRule(_RuleBase):
    """An object of the chosen classes whose ground point enters the zone."""

    type: Literal["intrusion"]
    zone: str
    classes: list[DomainLabel] = Field(default_factory=_people, min_length=1)
    min_inside_s: float = Field(
        0.5, ge=0.0, description="time inside before firing; stops flicker at the border"
    )


class LineCrossingRule(_RuleBase):
    """Counts crossings per class and direction; optionally an incident per crossing."""

    type: Literal["line_crossing"]
    line: str
    classes: list[DomainLabel] = Field(default_factory=lambda: ["person", *VEHICLES], min_length=1)
    direction: Literal["in", "out", "both"] = "both"
    incident: bool = Field(False, description="also raise an incident for each crossing")
    hysteresis: float = Field(
        0.01, ge=0.0, le=0.2, description="distance past the line (share of the image) to count"
    )


class WrongWayRule(_RuleBase):
    """A vehicle in the lane zone moving against the allowed direction."""

    type: Literal["wrong_way"]
    zone: str
    allowed_direction: tuple[float, float] = Field(
        description="image vector of allowed travel, e.g. [0, 1] = downwards"
    )
    classes: list[DomainLabel] = Field(default_factory=_vehicles, min_length=1)
    min_distance: float = Field(
        0.05,
        gt=0.0,
        description="against the flow for at least this far (metres with "
        "calibration, else share of the image diagonal)",
    )
    min_duration_s: float = Field(1.0, ge=0.0)

    @field_validator("allowed_direction")
    @classmethod
    def _nonzero(cls, vector: tuple[float, float]) -> tuple[float, float]:
        if vector[0] == 0 and vector[1] == 0:
            raise ValueError("allowed_direction must not be [0, 0]; e.g. [0, 1] = downwards")
        return vector


class LoiteringRule(_RuleBase):
    type: Literal["loitering"]
    zone: str
    classes: list[DomainLabel] = Field(default_factory=_people, min_length=1)
    min_dwell_s: float = Field(60.0, gt=0.0)


class IllegalParkingRule(_RuleBase):
    """A vehicle staying (slower than ``max_speed``) in a no-parking zone."""

    type: Literal["illegal_parking"]
    zone: str
    classes: list[DomainLabel] = Field(default_factory=_vehicles, min_length=1)
    max_speed: float = Field(
        0.02, gt=0.0, description="image widths per second; used without a calibration"
    )
    max_speed_kmh: float = Field(
        3.0, gt=0.0, description="km/h; used when the camera has a calibration"
    )
    min_stopped_s: float = Field(60.0, gt=0.0)


class CrowdingRule(_RuleBase):
    type: Literal["crowding"]
    zone: str
    classes: list[DomainLabel] = Field(default_factory=_people, min_length=1)
    min_count: int = Field(10, ge=2)
    min_duration_s: float = Field(10.0, ge=0.0)


class SpeedingRule(_RuleBase):
    """Speed from the camera's ground-plane calibration, over a time window."""

    type: Literal["speeding"]
    zone: str | None = None
    classes: list[DomainLabel] = Field(default_factory=_vehicles, min_length=1)
    limit_kmh: float = Field(gt=0.0)
    window_s: float = Field(1.0, gt=0.0)


class TamperRule(_RuleBase):
    """Lens covered or black, defocused, camera moved, or image frozen."""

    type: Literal["tamper"]
    check_every_s: float = Field(1.0, gt=0.0)
    min_duration_s: float = Field(3.0, ge=0.0)
    dark_level: float = Field(20.0, ge=0.0, le=255.0, description="mean grey below this = covered")
    blur_ratio: float = Field(
        0.3, gt=0.0, le=1.0, description="sharpness below this share of normal"
    )
    moved_ratio: float = Field(0.2, gt=0.0, le=1.0, description="view shifted by this share")


class CameraOfflineRule(_RuleBase):
    type: Literal["camera_offline"]
    after_s: float = Field(30.0, ge=0.0, description="offline or stalled this long")
    severity: Severity = "high"


RuleConfig = Annotated[
    IntrusionRule
    | LineCrossingRule
    | WrongWayRule
    | LoiteringRule
    | IllegalParkingRule
    | CrowdingRule
    | SpeedingRule
    | TamperRule
    | CameraOfflineRule,
    Field(discriminator="type"),
]
RULE_TYPES = (
    "intrusion",
    "line_crossing",
    "wrong_way",
    "loitering",
    "illegal_parking",
    "crowding",
    "speeding",
    "tamper",
    "camera_offline",
)


def reference_errors(
    rules: list[RuleConfig], zones: list[str], lines: list[str], calibrated: bool
) -> list[str]:
    errors: list[str] = []
    for index, rule in enumerate(rules):
        zone = getattr(rule, "zone", None)
        if zone is not None and zone not in zones:
            known = ", ".join(zones) or "none defined"
            errors.append(f"rules[{index}].zone: unknown zone {zone!r} (zones: {known})")
        line = getattr(rule, "line", None)
        if line is not None and line not in lines:
            known = ", ".join(lines) or "none defined"
            errors.append(f"rules[{index}].line: unknown line {line!r} (lines: {known})")
        if isinstance(rule, SpeedingRule) and not calibrated:
            errors.append(
                f"rules[{index}]: speeding needs the camera's `calibration` "
                "(4 image points and their ground positions in metres)"
            )
    return errors

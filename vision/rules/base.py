"""What every rule sees and reports, and the geometry rules share.

A rule is a small object with explicit per-track (or per-zone) state that it
evicts when tracks end.  It is fed one ``FrameContext`` per detected frame and
returns ``RuleEvent``s: ``opened`` starts an incident, ``closed`` ends it.  An
instantaneous incident (one line crossing) is an ``opened`` and a ``closed`` in
the same update.  ``key`` identifies the incident within the rule: a track
(``"track:7"``) or the rule's zone as a whole (``"zone"``, for crowding).
All times are frame capture timestamps, never the wall clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import cv2
import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import Polygon

from core.rule_config import Calibration, TimeWindow
from vision.detections import Detections
from vision.labels import DOMAIN_TO_COCO, domain_label

EventKind = Literal["opened", "closed"]
Box = tuple[float, float, float, float]

# Frame times are sums of float intervals (0.6 - 0.2 < 0.4): durations compare with slack.
EPS_S = 1e-6


@dataclass(frozen=True, slots=True)
class FrameContext:
    tracked: Detections  # confirmed and unconfirmed (tracker_id -1) detections
    ts: float  # capture time, epoch seconds
    width: int
    height: int
    live_ids: set[int]  # tracks the tracker still holds (matched or briefly lost)
    local_day_s: float  # seconds since local midnight, for schedules
    image: Callable[[], npt.NDArray[np.uint8] | None] = lambda: None  # BGR, read on demand


@dataclass(frozen=True, slots=True)
class RuleEvent:
    kind: EventKind
    rule_name: str
    rule_type: str
    key: str
    track_ids: tuple[int, ...]
    label: str
    score: float  # peak confidence so far
    start_ts: float
    ts: float  # the frame time this event was decided on
    zone: str | None  # the zone or line name
    xyxy: Box | None  # the box to draw on the snapshot
    details: dict[str, float | str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Crossing:
    """One counted line crossing (traffic counts, with or without an incident)."""

    line: str
    label: str
    direction: Literal["in", "out"]
    ts: float
    track_id: int


class Rule(Protocol):
    name: str
    rule_type: str

    def update(self, ctx: FrameContext) -> list[RuleEvent]: ...


def in_schedule(windows: Sequence[TimeWindow], local_day_s: float) -> bool:
    """True when no windows are set, or the local time of day falls in one of them.

    A window whose end is before its start spans midnight (22:00–05:00).
    """
    if not windows:
        return True
    for window in windows:
        start = _seconds(window.start)
        end = _seconds(window.end)
        if start <= end:
            if start <= local_day_s < end:
                return True
        elif local_day_s >= start or local_day_s < end:
            return True
    return False


def _seconds(hhmm: str) -> float:
    hours, minutes = hhmm.split(":")
    return int(hours) * 3600.0 + int(minutes) * 60.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """A detection a rule considers: confirmed track, wanted class, confident enough."""

    index: int  # row in ``FrameContext.tracked``
    track_id: int
    label: str  # domain label
    score: float
    xyxy: Box


def class_ids_of(labels: Iterable[str]) -> frozenset[int]:
    return frozenset(DOMAIN_TO_COCO[label] for label in labels)


def candidates(
    tracked: Detections, class_ids: frozenset[int], min_confidence: float
) -> list[Candidate]:
    """The rows every track rule looks at; unconfirmed tracks (id -1) never count."""
    out: list[Candidate] = []
    for i in range(len(tracked)):
        tid = int(tracked.tracker_id[i])
        class_id = int(tracked.class_id[i])
        score = float(tracked.confidence[i])
        if tid >= 0 and class_id in class_ids and score >= min_confidence:
            out.append(Candidate(i, tid, domain_label(class_id) or "", score, box_of(tracked, i)))
    return out


def box_of(tracked: Detections, i: int) -> Box:
    x1, y1, x2, y2 = (float(v) for v in tracked.xyxy[i])
    return (x1, y1, x2, y2)


class PixelZone:
    """A zone in normalised coordinates, materialised per frame size (cached)."""

    def __init__(self, name: str, points_norm: Sequence[tuple[float, float]]) -> None:
        self.name = name
        self.points_norm = np.asarray(points_norm, np.float64)
        self._cache: dict[tuple[int, int], Polygon] = {}

    def polygon(self, width: int, height: int) -> Polygon:
        poly = self._cache.get((width, height))
        if poly is None:
            poly = Polygon(self.points_norm * (width, height))
            shapely.prepare(poly)
            self._cache[(width, height)] = poly
        return poly

    def points_px(self, width: int, height: int) -> npt.NDArray[np.int32]:
        return np.round(self.points_norm * (width, height)).astype(np.int32)

    def contains(
        self, points_xy: npt.NDArray[np.float32], width: int, height: int
    ) -> npt.NDArray[np.bool_]:
        if len(points_xy) == 0:
            return np.zeros((0,), bool)
        inside: npt.NDArray[np.bool_] = shapely.contains_xy(
            self.polygon(width, height), points_xy[:, 0], points_xy[:, 1]
        )
        return inside


class PixelLine:
    """A line A→B in normalised coordinates.

    ``side`` is the signed distance of points from the line, as a share of the
    image diagonal: positive on the right of A→B (image y grows downwards), so
    crossing from negative to positive is direction ``in``.
    """

    def __init__(self, name: str, points_norm: Sequence[tuple[float, float]]) -> None:
        self.name = name
        self.points_norm = np.asarray(points_norm, np.float64)

    def points_px(self, width: int, height: int) -> npt.NDArray[np.int32]:
        return np.round(self.points_norm * (width, height)).astype(np.int32)

    def side(
        self, points_xy: npt.NDArray[np.float32], width: int, height: int
    ) -> npt.NDArray[np.float64]:
        a, b = self.points_norm * (width, height)
        direction = b - a
        rel = points_xy.astype(np.float64) - a
        cross = direction[0] * rel[:, 1] - direction[1] * rel[:, 0]
        signed: npt.NDArray[np.float64] = cross / np.hypot(*direction) / np.hypot(width, height)
        return signed

    def within_extent(
        self, points_xy: npt.NDArray[np.float32], width: int, height: int
    ) -> npt.NDArray[np.bool_]:
        """Whether points project onto the segment itself, not its extension."""
        a, b = self.points_norm * (width, height)
        direction = b - a
        t = ((points_xy.astype(np.float64) - a) @ direction) / float(direction @ direction)
        inside: npt.NDArray[np.bool_] = (t >= 0.0) & (t <= 1.0)
        return inside


class GroundPlane:
    """Image pixels → ground metres through the 4-point calibration (a homography)."""

    def __init__(self, calibration: Calibration) -> None:
        self._image_norm = np.asarray(calibration.image_points, np.float32)
        self._world = np.asarray(calibration.world_points_m, np.float32)
        self._cache: dict[tuple[int, int], npt.NDArray[np.float64]] = {}

    def _matrix(self, width: int, height: int) -> npt.NDArray[np.float64]:
        m = self._cache.get((width, height))
        if m is None:
            src = (self._image_norm * np.array([width, height], np.float32)).astype(np.float32)
            m = cv2.getPerspectiveTransform(src, self._world).astype(np.float64)
            self._cache[(width, height)] = m
        return m

    def to_metres(
        self, points_xy: npt.NDArray[np.float32], width: int, height: int
    ) -> npt.NDArray[np.float64]:
        if len(points_xy) == 0:
            return np.zeros((0, 2), np.float64)
        pts = points_xy.reshape(-1, 1, 2).astype(np.float64)
        out = np.asarray(cv2.perspectiveTransform(pts, self._matrix(width, height)), np.float64)
        return out.reshape(-1, 2)

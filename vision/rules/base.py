"""What a rule reports, and the geometry helpers rules share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import Polygon

EventKind = Literal["opened", "closed"]


@dataclass(frozen=True, slots=True)
class RuleEvent:
    kind: EventKind
    rule_name: str
    rule_type: str
    track_id: int
    label: str
    score: float  # peak confidence so far
    start_ts: float
    ts: float  # the frame time this event was decided on
    zone: str | None
    xyxy: tuple[float, float, float, float]  # the box on the frame at ``ts``


class PixelZone:
    """A zone in normalised coordinates, materialised per frame size (cached)."""

    def __init__(self, name: str, points_norm: list[tuple[float, float]]) -> None:
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

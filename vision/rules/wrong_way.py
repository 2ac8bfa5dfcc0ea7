"""Wrong way: a vehicle in the lane zone moving against the allowed direction.

Measure, per track while its anchor (bottom centre) is in the zone:

- the anchor is smoothed by a per-coordinate median of its last ``smooth_n``
  positions, so a one- or two-frame box glitch moves nothing;
- the **reference** is the smoothed position furthest along the allowed
  direction so far (the entry point for a car driving in the wrong way, the
  turning point for one that turns round);
- the distance against the flow is how far the smoothed position is behind
  the reference along the allowed direction: in metres on the ground plane
  when the camera is calibrated (the image direction at the reference is
  mapped onto the ground), else as a share of the image diagonal;
- the move against the flow began when the vehicle was last within 20 % of
  ``min_distance`` of its reference.

An incident opens when that distance reaches ``min_distance`` and the move
began at least ``min_duration_s`` ago, within the schedule and not within
``cooldown_s`` of the track's previous incident.  It stays open while the track
is in the zone and closes when the track has been outside for ``exit_grace_s``
(the measure restarts on re-entry) or the tracker drops it.  A stationary or
jittering vehicle never builds up distance; one driving with the flow keeps
moving its reference forward.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.rule_config import WrongWayRule as WrongWayConfig
from vision.rules.base import (
    EPS_S,
    Box,
    FrameContext,
    GroundPlane,
    PixelZone,
    RuleEvent,
    candidates,
    class_ids_of,
    in_schedule,
)

Point = tuple[float, float]
# Closer than this share of ``min_distance`` to its furthest point, a vehicle has not
# started to go against the flow: residual jitter never starts the duration clock.
_NEAR_REF = 0.2


@dataclass(slots=True)
class _TrackState:
    recent: deque[Point]  # raw anchors in the zone, for the median
    ref: Point | None = None  # smoothed position furthest along the flow
    ref_progress: float = 0.0  # its projection on the allowed direction, pixels
    left_ref_ts: float = 0.0  # last time it was near the reference: the move began after
    last_inside_ts: float | None = None
    open_since_ts: float | None = None
    distance: float = 0.0  # against the flow now, metres or share of the diagonal
    peak_distance: float = 0.0
    peak_score: float = 0.0
    label: str = ""
    cooldown_until_ts: float = float("-inf")
    last_xyxy: Box = (0.0, 0.0, 0.0, 0.0)


class WrongWayRule:
    rule_type = "wrong_way"

    def __init__(
        self,
        config: WrongWayConfig,
        zone: PixelZone,
        ground: GroundPlane | None,
        exit_grace_s: float = 1.0,
        smooth_n: int = 5,
    ) -> None:
        direction = np.asarray(config.allowed_direction, np.float64)
        norm = float(np.hypot(*direction))
        if norm == 0.0:
            # The config model accepts [0, 0]; there is no direction to be against.
            raise ValueError(f"rule {config.name!r}: allowed_direction must not be [0, 0]")
        self.config = config
        self.name = config.name
        self.zone = zone
        self.ground = ground
        self.exit_grace_s = exit_grace_s
        self.smooth_n = smooth_n
        self._unit = (float(direction[0]) / norm, float(direction[1]) / norm)
        self._class_ids = class_ids_of(config.classes)
        self._tracks: dict[int, _TrackState] = {}

    def update(self, ctx: FrameContext) -> list[RuleEvent]:
        events: list[RuleEvent] = []
        cfg = self.config
        tracked, ts = ctx.tracked, ctx.ts
        active = in_schedule(cfg.schedule, ctx.local_day_s)
        anchors = tracked.anchors_bottom_center()
        inside = self.zone.contains(anchors, ctx.width, ctx.height)
        seen: set[int] = set()
        for c in candidates(tracked, self._class_ids, cfg.min_confidence):
            i, tid, score = c.index, c.track_id, c.score
            seen.add(tid)
            state = self._tracks.setdefault(tid, _TrackState(deque(maxlen=self.smooth_n)))
            state.last_xyxy = c.xyxy
            if inside[i]:
                state.last_inside_ts = ts
                self._measure(state, (float(anchors[i, 0]), float(anchors[i, 1])), ts, ctx)
                label = c.label
                self._maybe_open(tid, state, ts, score, label, active, events)
            else:
                self._outside(tid, state, ts, events)
        for tid, state in list(self._tracks.items()):
            if tid in seen:
                continue
            if tid not in ctx.live_ids:
                # The tracker has forgotten this track: close and evict its state.
                if state.open_since_ts is not None:
                    events.append(self._event("closed", tid, state, ts))
                del self._tracks[tid]
            else:
                self._outside(tid, state, ts, events)
        return events

    def _measure(self, state: _TrackState, anchor: Point, ts: float, ctx: FrameContext) -> None:
        state.recent.append(anchor)
        xs, ys = zip(*state.recent, strict=True)
        smoothed = (float(np.median(xs)), float(np.median(ys)))
        progress = smoothed[0] * self._unit[0] + smoothed[1] * self._unit[1]
        if state.ref is None or progress > state.ref_progress:
            state.ref, state.ref_progress = smoothed, progress
        state.distance = self._against(state.ref, smoothed, ctx.width, ctx.height)
        if state.distance <= _NEAR_REF * self.config.min_distance:
            state.left_ref_ts = ts
        if state.open_since_ts is not None:
            state.peak_distance = max(state.peak_distance, state.distance)

    def _against(self, ref: Point, now: Point, width: int, height: int) -> float:
        """How far ``now`` is behind ``ref`` along the allowed direction (≥ 0)."""
        diag = float(np.hypot(width, height))
        if self.ground is None:
            back = (ref[0] - now[0]) * self._unit[0] + (ref[1] - now[1]) * self._unit[1]
            return max(0.0, back / diag)
        # The allowed direction on the ground at the reference: perspective turns and
        # shrinks image vectors, so map a short step along it rather than the vector.
        step = 0.01 * diag
        ahead = (ref[0] + step * self._unit[0], ref[1] + step * self._unit[1])
        pts: npt.NDArray[np.float32] = np.array([ref, ahead, now], np.float32)
        ref_m, ahead_m, now_m = self.ground.to_metres(pts, width, height)
        flow = ahead_m - ref_m
        norm = float(np.hypot(*flow))
        if norm == 0.0:
            return 0.0
        return max(0.0, float((ref_m - now_m) @ flow) / norm)

    def _maybe_open(
        self,
        tid: int,
        state: _TrackState,
        ts: float,
        score: float,
        label: str,
        active: bool,
        events: list[RuleEvent],
    ) -> None:
        if state.open_since_ts is not None:
            state.peak_score = max(state.peak_score, score)
            return
        cfg = self.config
        far_enough = state.distance >= cfg.min_distance
        long_enough = ts - state.left_ref_ts >= cfg.min_duration_s - EPS_S
        if active and far_enough and long_enough and ts >= state.cooldown_until_ts - EPS_S:
            state.open_since_ts = ts
            state.peak_score = score
            state.peak_distance = state.distance
            state.label = label
            events.append(self._event("opened", tid, state, ts))

    def _outside(self, tid: int, state: _TrackState, ts: float, events: list[RuleEvent]) -> None:
        if state.last_inside_ts is None or ts - state.last_inside_ts < self.exit_grace_s - EPS_S:
            return
        if state.open_since_ts is not None:
            events.append(self._event("closed", tid, state, state.last_inside_ts))
            state.open_since_ts = None
            state.cooldown_until_ts = ts + self.config.cooldown_s
        # Out of the lane: the next entry is measured from scratch.
        state.recent.clear()
        state.ref = None
        state.distance = 0.0
        state.last_inside_ts = None

    def _event(self, kind: str, tid: int, state: _TrackState, ts: float) -> RuleEvent:
        distance = state.distance if kind == "opened" else state.peak_distance
        return RuleEvent(
            kind="opened" if kind == "opened" else "closed",
            rule_name=self.name,
            rule_type=self.rule_type,
            key=f"track:{tid}",
            track_ids=(tid,),
            label=state.label,
            score=state.peak_score,
            start_ts=state.open_since_ts if state.open_since_ts is not None else ts,
            ts=ts,
            zone=self.zone.name,
            xyxy=state.last_xyxy,
            details={
                "distance": distance,
                "unit": "m" if self.ground is not None else "diagonal",
            },
        )

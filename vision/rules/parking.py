"""Illegal parking: a vehicle that stays stopped in a no-parking zone for ``min_stopped_s``.

Speed and stops (all on frame timestamps, frames may come 0.2 s or 3 s apart):

- **Position** is the ground point (bottom-centre of the box) smoothed by the
  median of the track's samples of the last ``smooth_s`` (1 s): a box that
  jumps for a frame or two (occlusion by a passing car, detector jitter) does
  not move it.
- **Speed** is the distance between the smoothed position now and the one at
  the newest sample at least ``window_s`` (3 s) old, over the time between
  them; the track's oldest sample when it is younger (at least ``min_span_s``
  old, or there is no speed yet).  In km/h through the ground plane when the
  camera is calibrated, else in image widths per second (both axes scaled by
  the width).  ``max_speed_kmh`` (calibrated) or ``max_speed`` is compared with it.
- A **stop starts** when that speed is at or under ``max_speed``.  It is dated
  from the start of the window: the car has not moved since then.
- Once stopped, what ends the stop is **displacement**, not speed: the stop
  ends when the smoothed position has stayed more than ``shift_tolerance``
  box sizes (the larger side of the box when it stopped) from where the car
  stopped for ``move_grace_s`` (3 s).  So a speed spike from jitter, or a car
  shunting a metre (a quarter of its length) back and forth, keeps the stop
  and its timer; a car driving off or creeping along a queue by half a length
  ends it.  Box sizes, unlike a fixed distance, mean the same with or without
  a calibration and at any distance from the camera.  (So a car creeping under
  ``max_speed`` for more than half its length restarts its stop too: it is not
  parked at one place.)
- ``stopped_s`` counts from the stop's start to the last frame the car was
  still at its place, so the grace spent confirming a drive-off never adds to
  it: a car waiting 10 s at a light has stopped for about 10 s (plus at most
  the speed window at the start), and passes below ``min_stopped_s``.

Incidents, one per track (key ``track:<id>``): opened when ``stopped_s`` reaches
``min_stopped_s`` inside the zone and the schedule; closed when the car drives
away, when its ground point has been seen outside the zone for ``exit_grace_s``,
or when the tracker drops the track.  A frame in which a live track is not
detected (every 3 s for a parked car in a still scene) changes nothing.  After
closing the track waits ``cooldown_s``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from core.rule_config import IllegalParkingRule as IllegalParkingConfig
from vision.rules.base import (
    EPS_S,
    Box,
    EventKind,
    FrameContext,
    GroundPlane,
    PixelZone,
    RuleEvent,
    candidates,
    class_ids_of,
    in_schedule,
)

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class _Sample:
    ts: float
    x: float  # ground point, pixels
    y: float


@dataclass(slots=True)
class _TrackState:
    samples: deque[_Sample] = field(default_factory=deque)
    stopped_since_ts: float | None = None
    stop_at: Point = (0.0, 0.0)  # smoothed position where the car stopped, pixels
    stop_size_px: float = 0.0  # larger side of its box then
    still_ts: float = 0.0  # last frame at its stop position
    first_displaced_ts: float | None = None
    last_inside_ts: float | None = None
    first_outside_ts: float | None = None
    open_since_ts: float | None = None
    peak_score: float = 0.0
    label: str = ""
    cooldown_until_ts: float = 0.0
    last_xyxy: Box = (0.0, 0.0, 0.0, 0.0)


class IllegalParkingRule:
    rule_type = "illegal_parking"

    def __init__(
        self,
        config: IllegalParkingConfig,
        zone: PixelZone,
        ground: GroundPlane | None,
        *,
        window_s: float = 3.0,
        smooth_s: float = 1.0,
        min_span_s: float = 1.0,
        shift_tolerance: float = 0.5,
        move_grace_s: float = 3.0,
        exit_grace_s: float = 2.0,
    ) -> None:
        self.config = config
        self.name = config.name
        self.zone = zone
        self.ground = ground
        # Calibrated: km/h. Otherwise image widths per second. Separate settings, since
        # 0.02 widths/s would read as 0.02 km/h (6 mm/s), which jitter alone exceeds.
        self._max_speed = config.max_speed_kmh if ground is not None else config.max_speed
        self.window_s = window_s
        self.smooth_s = smooth_s
        self.min_span_s = min_span_s
        self.shift_tolerance = shift_tolerance
        self.move_grace_s = move_grace_s
        self.exit_grace_s = exit_grace_s
        self._class_ids = class_ids_of(config.classes)
        self._tracks: dict[int, _TrackState] = {}

    def update(self, ctx: FrameContext) -> list[RuleEvent]:
        events: list[RuleEvent] = []
        cfg = self.config
        tracked, ts = ctx.tracked, ctx.ts
        active = in_schedule(cfg.schedule, ctx.local_day_s)
        anchors = tracked.anchors_bottom_center()
        inside = self.zone.contains(anchors, ctx.width, ctx.height)
        for c in candidates(tracked, self._class_ids, cfg.min_confidence):
            i, tid, score = c.index, c.track_id, c.score
            state = self._tracks.setdefault(tid, _TrackState())
            state.last_xyxy = c.xyxy
            self._add_sample(state, _Sample(ts, float(anchors[i, 0]), float(anchors[i, 1])))
            if inside[i]:
                state.last_inside_ts = ts
                state.first_outside_ts = None
                self._track_stop(tid, state, ctx, events)
                self._maybe_open(tid, state, ts, score, c.label, active, events)
            else:
                self._outside(tid, state, ts, events)
        for tid in [t for t in self._tracks if t not in ctx.live_ids]:
            # The tracker has forgotten this track: close and evict its state.
            state = self._tracks.pop(tid)
            if state.open_since_ts is not None:
                events.append(self._event("closed", tid, state, state.still_ts))
        return events

    # -- position and speed ------------------------------------------------------------

    def _add_sample(self, state: _TrackState, sample: _Sample) -> None:
        samples = state.samples
        samples.append(sample)
        # Keep what the speed needs: the reference sample (newest ≥ window_s old) and
        # the smooth_s before it.
        ref = self._reference(samples)
        if ref is not None:
            while samples[0].ts < ref.ts - self.smooth_s - EPS_S:
                samples.popleft()

    def _reference(self, samples: deque[_Sample]) -> _Sample | None:
        now = samples[-1].ts
        ref: _Sample | None = None
        for s in samples:
            if s.ts <= now - self.window_s + EPS_S:
                ref = s
            else:
                break
        if ref is None and now - samples[0].ts >= self.min_span_s - EPS_S:
            ref = samples[0]  # a young track: its whole life is the window
        return ref

    def _smoothed(self, samples: deque[_Sample], until_ts: float) -> _Sample:
        """Median ground point of the samples in the ``smooth_s`` up to ``until_ts``, dated
        by the median of their times: a median lags by half its span, and less at the
        start of a track, so speeds use these dates rather than the frame times."""
        recent = [s for s in samples if until_ts - self.smooth_s - EPS_S <= s.ts <= until_ts]
        return _Sample(
            float(np.median([s.ts for s in recent])),
            float(np.median([s.x for s in recent])),
            float(np.median([s.y for s in recent])),
        )

    def _speed(self, a: _Sample, b: _Sample, ctx: FrameContext) -> float:
        """km/h on the ground plane, else image widths per second."""
        dt = max(b.ts - a.ts, EPS_S)  # > 0 as long as min_span_s ≥ smooth_s
        if self.ground is not None:
            pts = np.array([(a.x, a.y), (b.x, b.y)], np.float32)
            (ax, ay), (bx, by) = self.ground.to_metres(pts, ctx.width, ctx.height)
            return math.hypot(bx - ax, by - ay) / dt * 3.6
        return math.hypot(b.x - a.x, b.y - a.y) / ctx.width / dt

    # -- stop state machine --------------------------------------------------------------

    def _track_stop(
        self, tid: int, state: _TrackState, ctx: FrameContext, events: list[RuleEvent]
    ) -> None:
        ts = ctx.ts
        now_at = self._smoothed(state.samples, ts)
        if state.stopped_since_ts is None:
            ref = self._reference(state.samples)
            if ref is None:
                return  # no speed yet
            then_at = self._smoothed(state.samples, ref.ts)
            if self._speed(then_at, now_at, ctx) <= self._max_speed:
                x1, y1, x2, y2 = state.last_xyxy
                state.stopped_since_ts = ref.ts
                state.stop_at = (now_at.x, now_at.y)
                state.stop_size_px = max(x2 - x1, y2 - y1)
                state.still_ts = ts
                state.first_displaced_ts = None
            return
        tolerance = self.shift_tolerance * state.stop_size_px
        raw = state.samples[-1]
        if math.hypot(raw.x - state.stop_at[0], raw.y - state.stop_at[1]) <= tolerance:
            # The frame itself, not the lagging median, dates the end of a stop.
            state.still_ts = ts
        if math.hypot(now_at.x - state.stop_at[0], now_at.y - state.stop_at[1]) <= tolerance:
            state.first_displaced_ts = None
            return
        if state.first_displaced_ts is None:
            state.first_displaced_ts = ts
        if ts - state.first_displaced_ts >= self.move_grace_s - EPS_S:
            self._end_stop(tid, state, ts, events)  # it drove off (or the id moved to another car)

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
        if state.stopped_since_ts is None or state.first_displaced_ts is not None:
            return
        stopped = state.still_ts - state.stopped_since_ts >= self.config.min_stopped_s - EPS_S
        if active and stopped and ts >= state.cooldown_until_ts - EPS_S:
            state.open_since_ts = ts
            state.peak_score = score
            state.label = label
            events.append(self._event("opened", tid, state, ts))

    def _outside(self, tid: int, state: _TrackState, ts: float, events: list[RuleEvent]) -> None:
        if state.last_inside_ts is None:
            return
        if state.first_outside_ts is None:
            state.first_outside_ts = ts
        if ts - state.first_outside_ts >= self.exit_grace_s - EPS_S:
            self._end_stop(tid, state, ts, events)
            state.last_inside_ts = None
            state.first_outside_ts = None

    def _end_stop(self, tid: int, state: _TrackState, ts: float, events: list[RuleEvent]) -> None:
        if state.open_since_ts is not None:
            events.append(self._event("closed", tid, state, state.still_ts))
            state.open_since_ts = None
            state.cooldown_until_ts = ts + self.config.cooldown_s
        state.stopped_since_ts = None
        state.first_displaced_ts = None

    def _event(self, kind: EventKind, tid: int, state: _TrackState, ts: float) -> RuleEvent:
        since = state.stopped_since_ts if state.stopped_since_ts is not None else ts
        return RuleEvent(
            kind=kind,
            rule_name=self.config.name,
            rule_type=self.rule_type,
            key=f"track:{tid}",
            track_ids=(tid,),
            label=state.label,
            score=state.peak_score,
            start_ts=state.open_since_ts if state.open_since_ts is not None else ts,
            ts=ts,
            zone=self.zone.name,
            xyxy=state.last_xyxy,
            details={"stopped_s": round(state.still_ts - since, 3)},
        )

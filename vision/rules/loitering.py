"""Loitering: a person whose ground point stays in a zone for ``min_dwell_s``.

- Dwell is counted from the frame the track was first seen inside, **including**
  brief exits: someone pacing along the zone border, or whose feet the detector
  places a little outside for a moment, is still loitering.  Only an exit seen
  to last ``exit_grace_s`` (from the first frame seen outside to a later frame
  still outside) resets the dwell.  Measuring the exit between observations,
  not from the last inside frame, keeps a single outside frame from resetting
  a dwell when frames arrive 3 s apart (the motion gate's refresh of a still
  scene).
- A frame in which a live track is not detected says nothing about where the
  person is (occluded, or a missed detection): the state is kept as it is; the
  tracker's own lost-track budget decides when the person is gone.
- One incident per track (key ``track:<id>``), opened once the dwell reaches
  ``min_dwell_s`` within the schedule, closed when the exit is confirmed or the
  tracker drops the track; its end time is the last frame seen inside.  After
  closing, the track waits ``cooldown_s`` before it can fire again; its dwell
  restarts at re-entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.rule_config import LoiteringRule as LoiteringConfig
from vision.rules.base import (
    EPS_S,
    Box,
    EventKind,
    FrameContext,
    PixelZone,
    RuleEvent,
    candidates,
    class_ids_of,
    in_schedule,
)


@dataclass(slots=True)
class _TrackState:
    entered_ts: float | None = None  # first frame inside of the current dwell
    last_inside_ts: float | None = None
    first_outside_ts: float | None = None  # first frame outside since last inside
    open_since_ts: float | None = None
    peak_score: float = 0.0
    label: str = ""
    cooldown_until_ts: float = 0.0
    last_xyxy: Box = (0.0, 0.0, 0.0, 0.0)


class LoiteringRule:
    rule_type = "loitering"

    def __init__(self, config: LoiteringConfig, zone: PixelZone, exit_grace_s: float = 2.0) -> None:
        self.config = config
        self.name = config.name
        self.zone = zone
        self.exit_grace_s = exit_grace_s
        self._class_ids = class_ids_of(config.classes)
        self._tracks: dict[int, _TrackState] = {}

    def update(self, ctx: FrameContext) -> list[RuleEvent]:
        events: list[RuleEvent] = []
        cfg = self.config
        tracked, ts = ctx.tracked, ctx.ts
        active = in_schedule(cfg.schedule, ctx.local_day_s)
        inside = self.zone.contains(tracked.anchors_bottom_center(), ctx.width, ctx.height)
        for c in candidates(tracked, self._class_ids, cfg.min_confidence):
            i, tid, score = c.index, c.track_id, c.score
            state = self._tracks.setdefault(tid, _TrackState())
            state.last_xyxy = c.xyxy
            if inside[i]:
                self._inside(tid, state, ts, score, c.label, active, events)
            else:
                self._outside(tid, state, ts, events)
        for tid in [t for t in self._tracks if t not in ctx.live_ids]:
            # The tracker has forgotten this track: close and evict its state.
            state = self._tracks.pop(tid)
            if state.open_since_ts is not None and state.last_inside_ts is not None:
                events.append(self._event("closed", tid, state, state.last_inside_ts))
        return events

    def _inside(
        self,
        tid: int,
        state: _TrackState,
        ts: float,
        score: float,
        label: str,
        active: bool,
        events: list[RuleEvent],
    ) -> None:
        if state.entered_ts is None:
            state.entered_ts = ts
        state.last_inside_ts = ts
        state.first_outside_ts = None
        if state.open_since_ts is not None:
            state.peak_score = max(state.peak_score, score)
            return
        dwelt = ts - state.entered_ts >= self.config.min_dwell_s - EPS_S
        if active and dwelt and ts >= state.cooldown_until_ts - EPS_S:
            state.open_since_ts = ts
            state.peak_score = score
            state.label = label
            events.append(self._event("opened", tid, state, ts))

    def _outside(self, tid: int, state: _TrackState, ts: float, events: list[RuleEvent]) -> None:
        if state.last_inside_ts is None:
            return  # never inside: nothing to reset
        if state.first_outside_ts is None:
            state.first_outside_ts = ts
        if ts - state.first_outside_ts < self.exit_grace_s - EPS_S:
            return  # a brief exit: the dwell goes on
        if state.open_since_ts is not None:
            events.append(self._event("closed", tid, state, state.last_inside_ts))
            state.open_since_ts = None
            state.cooldown_until_ts = ts + self.config.cooldown_s
        state.entered_ts = None
        state.last_inside_ts = None
        state.first_outside_ts = None

    def _event(self, kind: EventKind, tid: int, state: _TrackState, ts: float) -> RuleEvent:
        entered = state.entered_ts if state.entered_ts is not None else ts
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
            details={"dwell_s": round(ts - entered, 3)},
        )

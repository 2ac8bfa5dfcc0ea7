"""Intrusion: an object of chosen classes whose ground point is inside a zone.

- one incident per (track, rule), opened after ``min_inside_s`` inside (inertia:
  a box flickering across the border does not fire), only within the rule's
  schedule windows;
- it stays open while the track is inside, and closes when the track has been
  outside for ``exit_grace_s`` or the tracker has dropped it;
- after closing, the same track waits ``cooldown_s`` before it can fire again.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.rule_config import IntrusionRule as IntrusionConfig
from vision.rules.base import (
    EPS_S,
    Box,
    FrameContext,
    PixelZone,
    RuleEvent,
    candidates,
    class_ids_of,
    in_schedule,
)


@dataclass(slots=True)
class _TrackState:
    first_inside_ts: float | None = None
    last_inside_ts: float | None = None
    open_since_ts: float | None = None
    peak_score: float = 0.0
    label: str = ""
    cooldown_until_ts: float = 0.0
    last_xyxy: Box = (0.0, 0.0, 0.0, 0.0)


class IntrusionRule:
    rule_type = "intrusion"

    def __init__(self, config: IntrusionConfig, zone: PixelZone, exit_grace_s: float = 1.0) -> None:
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
        seen: set[int] = set()
        for c in candidates(tracked, self._class_ids, cfg.min_confidence):
            i, tid, score = c.index, c.track_id, c.score
            seen.add(tid)
            state = self._tracks.setdefault(tid, _TrackState())
            state.last_xyxy = c.xyxy
            if inside[i]:
                self._inside(tid, state, ts, score, c.label, active, events)
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
        if state.first_inside_ts is None:
            state.first_inside_ts = ts
        state.last_inside_ts = ts
        if state.open_since_ts is not None:
            state.peak_score = max(state.peak_score, score)
            return
        long_enough = ts - state.first_inside_ts >= self.config.min_inside_s - EPS_S
        if active and long_enough and ts >= state.cooldown_until_ts - EPS_S:
            state.open_since_ts = ts
            state.peak_score = score
            state.label = label
            events.append(self._event("opened", tid, state, ts))

    def _outside(self, tid: int, state: _TrackState, ts: float, events: list[RuleEvent]) -> None:
        if state.last_inside_ts is None or ts - state.last_inside_ts < self.exit_grace_s - EPS_S:
            return
        if state.open_since_ts is not None:
            events.append(self._event("closed", tid, state, state.last_inside_ts))
            state.open_since_ts = None
            state.cooldown_until_ts = ts + self.config.cooldown_s
        state.first_inside_ts = None
        state.last_inside_ts = None

    def _event(self, kind: str, tid: int, state: _TrackState, ts: float) -> RuleEvent:
        return RuleEvent(
            kind="opened" if kind == "opened" else "closed",
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
        )

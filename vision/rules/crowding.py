"""Crowding: at least ``min_count`` people in a zone for ``min_duration_s``.

- The count of a frame is the number of confirmed tracks of the chosen classes
  (confidence ≥ ``min_confidence``) detected in it with their ground point in
  the zone.  A person the detector misses for a frame is not counted in that
  frame; rather than remembering people per track, the rule tolerates dips:
  the crowd is considered gone only when the count has been seen below
  ``min_count`` for ``low_grace_s`` (from the first frame below to a later frame
  still below).  So a count flickering around ``min_count`` neither restarts
  the duration nor closes an open incident, and with frames 3 s apart (the
  motion gate's refresh of a still scene) one short frame does not either.
- ONE incident for the zone (key ``"zone"``), opened when the crowd has lasted
  ``min_duration_s`` within the schedule.  ``details["count"]`` is the peak
  count since the crowd formed; ``track_ids`` and ``xyxy`` (the union of their
  boxes, for the snapshot) are the people of the frame the event is decided on
  (for ``closed``: the last frame at or above ``min_count``).
- Closed when the crowd is gone; the zone then waits ``cooldown_s`` before a
  new incident.  The rule keeps no per-track state, so nothing needs evicting.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from core.rule_config import CrowdingRule as CrowdingConfig
from vision.labels import DOMAIN_TO_COCO, domain_label
from vision.rules.base import (
    EPS_S,
    Box,
    EventKind,
    FrameContext,
    PixelZone,
    RuleEvent,
    in_schedule,
)


@dataclass(frozen=True, slots=True)
class _Crowd:
    """The counted people of one frame."""

    ts: float
    track_ids: tuple[int, ...]
    xyxy: Box | None
    label: str
    score: float  # mean confidence of the people counted


@dataclass(slots=True)
class _ZoneState:
    formed_ts: float | None = None  # first frame at or above min_count of this crowd
    last_crowd: _Crowd | None = None  # last frame at or above min_count
    first_low_ts: float | None = None  # first frame below min_count since then
    open_since_ts: float | None = None
    peak_count: int = 0
    peak_score: float = 0.0
    cooldown_until_ts: float = 0.0
    labels: Counter[str] = field(default_factory=Counter)


class CrowdingRule:
    rule_type = "crowding"

    def __init__(self, config: CrowdingConfig, zone: PixelZone, low_grace_s: float = 2.0) -> None:
        self.config = config
        self.name = config.name
        self.zone = zone
        self.low_grace_s = low_grace_s
        self._class_ids = np.array(sorted(DOMAIN_TO_COCO[c] for c in config.classes), np.int32)
        self._state = _ZoneState()

    def update(self, ctx: FrameContext) -> list[RuleEvent]:
        cfg = self.config
        crowd = self._count(ctx)
        state = self._state
        if len(crowd.track_ids) >= cfg.min_count:
            return self._crowded(state, crowd, in_schedule(cfg.schedule, ctx.local_day_s))
        return self._sparse(state, ctx.ts)

    def _count(self, ctx: FrameContext) -> _Crowd:
        tracked = ctx.tracked
        inside = self.zone.contains(tracked.anchors_bottom_center(), ctx.width, ctx.height)
        keep = (
            inside
            & (tracked.tracker_id >= 0)
            & np.isin(tracked.class_id, self._class_ids)
            & (tracked.confidence >= self.config.min_confidence)
        )
        people = tracked.select(keep)
        if len(people) == 0:
            return _Crowd(ctx.ts, (), None, "", 0.0)
        x1, y1 = people.xyxy[:, :2].min(axis=0)
        x2, y2 = people.xyxy[:, 2:].max(axis=0)
        labels = Counter(domain_label(int(c)) or "" for c in people.class_id)
        return _Crowd(
            ts=ctx.ts,
            track_ids=tuple(sorted(int(t) for t in people.tracker_id)),
            xyxy=(float(x1), float(y1), float(x2), float(y2)),
            label=labels.most_common(1)[0][0],
            score=float(people.confidence.mean()),
        )

    def _crowded(self, state: _ZoneState, crowd: _Crowd, active: bool) -> list[RuleEvent]:
        ts = crowd.ts
        if state.formed_ts is None:
            state.formed_ts = ts
            state.peak_count = 0
            state.peak_score = 0.0
            state.labels.clear()
        state.last_crowd = crowd
        state.first_low_ts = None
        state.peak_count = max(state.peak_count, len(crowd.track_ids))
        state.peak_score = max(state.peak_score, crowd.score)
        state.labels[crowd.label] += 1
        if state.open_since_ts is not None:
            return []
        lasted = ts - state.formed_ts >= self.config.min_duration_s - EPS_S
        if active and lasted and ts >= state.cooldown_until_ts - EPS_S:
            state.open_since_ts = ts
            return [self._event("opened", state, crowd)]
        return []

    def _sparse(self, state: _ZoneState, ts: float) -> list[RuleEvent]:
        if state.formed_ts is None or state.last_crowd is None:
            return []
        if state.first_low_ts is None:
            state.first_low_ts = ts
        if ts - state.first_low_ts < self.low_grace_s - EPS_S:
            return []  # a dip: people missed for a frame, or one stepping out for a moment
        events: list[RuleEvent] = []
        if state.open_since_ts is not None:
            events.append(self._event("closed", state, state.last_crowd))
            state.open_since_ts = None
            state.cooldown_until_ts = ts + self.config.cooldown_s
        state.formed_ts = None
        state.last_crowd = None
        state.first_low_ts = None
        return events

    def _event(self, kind: EventKind, state: _ZoneState, crowd: _Crowd) -> RuleEvent:
        return RuleEvent(
            kind=kind,
            rule_name=self.config.name,
            rule_type=self.rule_type,
            key="zone",
            track_ids=crowd.track_ids,
            label=state.labels.most_common(1)[0][0],
            score=state.peak_score,
            start_ts=state.open_since_ts if state.open_since_ts is not None else crowd.ts,
            ts=crowd.ts,
            zone=self.zone.name,
            xyxy=crowd.xyxy,
            details={"count": state.peak_count},
        )

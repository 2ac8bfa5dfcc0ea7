"""Line crossing: counts per class and direction, optionally an incident per crossing.

Semantics (per track, on the bottom-centre anchor):

- **Hysteresis.** A track is *on a side* of the line only once its anchor is more
  than ``hysteresis`` (share of the image diagonal) away from it.  A crossing is
  counted when the track's side flips; positions inside the band never change the
  side, so a box flickering on the line counts at most once (Ultralytics'
  region counter counts such a box twice, ultralytics#7336).  The first side a
  track reaches is not a crossing: nothing says where it came from.
- **Extent.** The crossing counts only if the anchor's path met the line within
  the segment A–B: the last time the anchor changed sign before the side flipped,
  the point where that step met the line (interpolated between the two frames)
  must project onto the segment, not its extension.
- **Repeats are real.** A track that crosses in, out and in again counts 3.
- **ID switch mid-crossing.** Track A, with a side, is not seen any more, and a
  *new* track B of the same kind (person vs vehicle) appears within
  ``handover_s`` and ``handover_dist`` of A's last anchor, either in the band,
  or past it on the far side when A had already left its side (in the band or
  past the line).  B takes over A's state (side, label votes, crossing number)
  and A forgets its side, so the crossing is counted once, when B reaches the
  far side; if A comes back it starts afresh and cannot count it again.  Pairs
  are made nearest first over the frame.  Without such a B nothing is counted
  for that crossing (A never reached the far side, B never had a side): a
  missed count, never a double one.  On the junction clip with every id renewed
  each frame (0.1 s) up to each second, the counts stay exactly those of the
  stable ids (``tests/vision/test_line_crossing_footage.py``).
- Crossings are counted only within the schedule windows; the side is followed
  outside them too, so a crossing that began before a window does not count in it.
- With ``incident: true`` each counted crossing is an ``opened`` and a ``closed``
  event in the same update (key ``track:<id>:<n>``), except within ``cooldown_s``
  of the same track's previous crossing incident (counts are never suppressed).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from core.rule_config import LineCrossingRule as LineCrossingConfig
from vision.labels import domain_label
from vision.rules.base import (
    EPS_S,
    Box,
    Crossing,
    EventKind,
    FrameContext,
    PixelLine,
    RuleEvent,
    box_of,
    candidates,
    class_ids_of,
    in_schedule,
)

Direction = Literal["in", "out"]


@dataclass(slots=True)
class _TrackState:
    side: int = 0  # -1 / +1 once beyond the band, 0 before that
    sign: int = 0  # raw sign of the last anchor (inside the band too)
    last_anchor: tuple[float, float] = (0.0, 0.0)
    last_dist: float = 0.0  # signed distance of last_anchor, share of the diagonal
    last_ts: float = 0.0
    crossed_in_extent: bool = False  # where the last sign change met the line
    labels: Counter[str] = field(default_factory=Counter)
    peak_score: float = 0.0
    crossings: int = 0  # counted crossings of this track, numbers the incident keys
    cooldown_until_ts: float = float("-inf")

    def mid_crossing(self, hysteresis: float) -> bool:
        """Left its side (in the band or past the line) without reaching the other one."""
        return self.side != 0 and self.side * self.last_dist <= hysteresis

    def label(self) -> str:
        # ByteTrack matches boxes across classes: a car is a truck in a few frames.
        return self.labels.most_common(1)[0][0] if self.labels else ""


class LineCrossingRule:
    rule_type = "line_crossing"

    def __init__(
        self,
        config: LineCrossingConfig,
        line: PixelLine,
        handover_s: float = 1.0,
        handover_dist: float = 0.1,
    ) -> None:
        self.config = config
        self.name = config.name
        self.line = line
        self.handover_s = handover_s
        self.handover_dist = handover_dist  # share of the image diagonal
        self._class_ids = class_ids_of(config.classes)
        self._tracks: dict[int, _TrackState] = {}
        self._crossings: list[Crossing] = []

    def drain_crossings(self) -> list[Crossing]:
        """The crossings counted since the previous call."""
        out, self._crossings = self._crossings, []
        return out

    def update(self, ctx: FrameContext) -> list[RuleEvent]:
        cfg = self.config
        tracked, ts, w, h = ctx.tracked, ctx.ts, ctx.width, ctx.height
        active = in_schedule(cfg.schedule, ctx.local_day_s)
        anchors = tracked.anchors_bottom_center()
        dists = self.line.side(anchors, w, h)
        keep = [c.index for c in candidates(tracked, self._class_ids, cfg.min_confidence)]
        seen = {int(tracked.tracker_id[i]) for i in keep}
        new = [i for i in keep if int(tracked.tracker_id[i]) not in self._tracks]
        self._hand_over(new, tracked.tracker_id, tracked.class_id, anchors, dists, ts, seen, w, h)
        events: list[RuleEvent] = []
        for i in keep:
            tid = int(tracked.tracker_id[i])
            label = domain_label(int(tracked.class_id[i])) or ""
            anchor = (float(anchors[i, 0]), float(anchors[i, 1]))
            state = self._tracks.setdefault(tid, _TrackState())
            state.labels[label] += 1
            state.peak_score = max(state.peak_score, float(tracked.confidence[i]))
            direction = self._step(state, anchor, float(dists[i]), ts, w, h)
            if direction is not None and active and direction in _ALLOWED[cfg.direction]:
                self._count(tid, state, direction, ts, box_of(tracked, i), events)
        self._evict(ctx.live_ids, seen, ts)
        return events

    def _step(
        self,
        state: _TrackState,
        anchor: tuple[float, float],
        dist: float,
        ts: float,
        w: int,
        h: int,
    ) -> Direction | None:
        """Advance one track by one observation; the direction when its side flips."""
        sign = 1 if dist > 0 else -1 if dist < 0 else state.sign
        if state.sign not in (0, sign):
            # The anchor went through the line's infinite extension between the last
            # observation and this one: remember whether it did so on the segment.
            t = state.last_dist / (state.last_dist - dist)
            x = state.last_anchor[0] + t * (anchor[0] - state.last_anchor[0])
            y = state.last_anchor[1] + t * (anchor[1] - state.last_anchor[1])
            point = np.array([[x, y]], np.float32)
            state.crossed_in_extent = bool(self.line.within_extent(point, w, h)[0])
        state.sign = sign
        state.last_anchor, state.last_dist, state.last_ts = anchor, dist, ts
        if abs(dist) <= self.config.hysteresis:
            return None  # in the band: the side does not change
        side = 1 if dist > 0 else -1
        previous, state.side = state.side, side
        if previous in (0, side) or not state.crossed_in_extent:
            return None
        return "in" if side > 0 else "out"

    def _hand_over(
        self,
        new: list[int],
        track_ids: npt.NDArray[np.int32],
        class_ids: npt.NDArray[np.int32],
        anchors: npt.NDArray[np.float32],
        dists: npt.NDArray[np.float64],
        ts: float,
        seen: set[int],
        w: int,
        h: int,
    ) -> None:
        """Give new tracks the state of the track each most likely continues (an ID
        switch while crossing, see the module docstring).

        Pairs are taken nearest first over the whole frame, so which new track is
        looked at first does not decide who gets a lost track's state.
        """
        hysteresis = self.config.hysteresis
        lost = {
            tid: state
            for tid, state in self._tracks.items()
            if tid not in seen and state.side != 0 and ts - state.last_ts <= self.handover_s + EPS_S
        }
        if not new or not lost:
            return
        limit = self.handover_dist * float(np.hypot(w, h))
        pairs: list[tuple[float, int, int]] = []
        for i in new:
            is_person = domain_label(int(class_ids[i])) == "person"
            for tid, state in lost.items():
                if (state.label() == "person") != is_person:
                    continue
                dist = float(dists[i])
                if state.side * dist > hysteresis:
                    continue  # beyond the band on the lost track's own side: nothing to continue
                if abs(dist) > hysteresis and not state.mid_crossing(hysteresis):
                    # From well on one side to well on the other in one switch: as likely
                    # another object as the same (measured: with ids renewed every 0.3-1 s
                    # the junction clip's counts come out 1.7-4x too high if allowed).
                    continue
                ax, ay = state.last_anchor
                gap = float(np.hypot(float(anchors[i, 0]) - ax, float(anchors[i, 1]) - ay))
                if gap <= limit:
                    pairs.append((gap, i, tid))
        taken: set[int] = set()
        for _, i, tid in sorted(pairs):
            new_tid = int(track_ids[i])
            if new_tid in self._tracks or tid in taken:
                continue
            taken.add(tid)
            previous = self._tracks[tid]
            self._tracks[new_tid] = replace(previous, labels=Counter(previous.labels))
            # If the old id comes back after all it starts without a side: it cannot
            # count this crossing a second time, nor be handed over again.
            previous.side = 0

    def _count(
        self,
        tid: int,
        state: _TrackState,
        direction: Direction,
        ts: float,
        xyxy: Box,
        events: list[RuleEvent],
    ) -> None:
        state.crossings += 1
        label = state.label()
        self._crossings.append(Crossing(self.line.name, label, direction, ts, tid))
        if not self.config.incident or ts < state.cooldown_until_ts - EPS_S:
            return
        state.cooldown_until_ts = ts + self.config.cooldown_s
        for kind in _INSTANT:
            events.append(
                RuleEvent(
                    kind=kind,
                    rule_name=self.name,
                    rule_type=self.rule_type,
                    key=f"track:{tid}:{state.crossings}",
                    track_ids=(tid,),
                    label=label,
                    score=state.peak_score,
                    start_ts=ts,
                    ts=ts,
                    zone=self.line.name,
                    xyxy=xyxy,
                    details={"direction": direction},
                )
            )

    def _evict(self, live_ids: set[int], seen: set[int], ts: float) -> None:
        for tid, state in list(self._tracks.items()):
            if tid in seen or tid in live_ids:
                continue
            # A dropped track with a side stays a handover candidate a little longer.
            if state.side != 0 and ts - state.last_ts <= self.handover_s + EPS_S:
                continue
            del self._tracks[tid]


_ALLOWED: dict[str, tuple[Direction, ...]] = {"both": ("in", "out"), "in": ("in",), "out": ("out",)}
_INSTANT: tuple[EventKind, EventKind] = ("opened", "closed")

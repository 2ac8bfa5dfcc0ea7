"""Per-camera wiring after the detector: class filter -> tracker -> rules -> incident events."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from core.config import CameraConfig
from core.config import IntrusionRule as IntrusionConfig
from core.frames import FrameReader
from core.types import (
    FrameRef,
    Incident,
    IncidentEvent,
    IncidentOpened,
    IncidentUpdated,
    new_incident_id,
)
from vision.annotate import annotate_snapshot
from vision.detections import Detections
from vision.labels import COCO_TO_DOMAIN
from vision.rules.base import PixelZone, RuleEvent
from vision.rules.intrusion import IntrusionRule
from vision.tracking import ObjectTracker

log = logging.getLogger(__name__)

EmitEvent = Callable[[IncidentEvent], None]
MOVING_SPEED = 0.02  # image widths per second: slower than this is standing still
MOVING_HOLD_S = 3.0  # covers the ~1 s publish and ~1 s poll of the activity board


class CameraAnalytics:
    def __init__(self, camera: CameraConfig, frames: FrameReader, emit: EmitEvent) -> None:
        self._frames = frames
        self._emit = emit
        # A stationary object is only seen at each motion-gate refresh: the tracker
        # must remember it for longer than the refresh interval to keep its id.
        refresh_s = camera.motion.refresh_s if camera.motion.enabled else 0.0
        self.tracker = ObjectTracker(fps=camera.detect.fps, lost_track_s=max(2.0, 1.5 * refresh_s))
        self.zones: dict[str, PixelZone] = {}
        self.rules: list[IntrusionRule] = []
        self._thresholds = np.zeros((0, 3), np.float32)
        self.reconfigure(camera)
        self._open: dict[tuple[str, int], str] = {}
        self.snapshots_missing = 0
        self._last_centre: dict[int, tuple[float, float, float]] = {}
        self.moving_until_ts = 0.0

    def reconfigure(self, camera: CameraConfig) -> None:
        """Apply new zones, rules and thresholds live; the tracker and its ids stay.

        Rules whose configuration is unchanged keep their per-track state.
        """
        self.camera = camera
        self.zones = {z.name: PixelZone(z.name, list(z.points)) for z in camera.zones}

        def key(rule: IntrusionConfig, zone: PixelZone) -> str:
            return rule.model_dump_json() + repr(zone.points_norm.tolist())

        kept = {key(rule.config, rule.zone): rule for rule in self.rules}
        self.rules = [
            kept.get(key(cfg, self.zones[cfg.zone])) or IntrusionRule(cfg, self.zones[cfg.zone])
            for cfg in camera.rules
        ]
        # (COCO class, min confidence, min area share) per domain class, for one vector op.
        rows = []
        for class_id, label in COCO_TO_DOMAIN.items():
            limits = camera.filters.get(label)  # type: ignore[call-overload]
            rows.append(
                (
                    class_id,
                    limits.min_confidence if limits else 0.0,
                    limits.min_area if limits else 0.0,
                )
            )
        self._thresholds = np.array(rows, np.float32)

    def _filter(self, detections: Detections, width: int, height: int) -> Detections:
        """Domain classes only (chairs and cups are noise here), above per-class limits."""
        match = detections.class_id[:, None] == self._thresholds[None, :, 0].astype(np.int32)
        known = match.any(axis=1)
        row = match.argmax(axis=1)
        min_conf = self._thresholds[row, 1]
        min_area = self._thresholds[row, 2] * (width * height)
        wh = detections.xyxy[:, 2:] - detections.xyxy[:, :2]
        keep = known & (detections.confidence >= min_conf) & (wh[:, 0] * wh[:, 1] >= min_area)
        return detections.select(keep)

    def on_detections(self, ref: FrameRef, detections: Detections) -> None:
        relevant = self._filter(detections, ref.width, ref.height)
        tracked = self.tracker.update(relevant, ref.capture_ts)
        live = self.tracker.live_track_ids()
        if self._any_moving(tracked, ref.capture_ts, ref.width, live):
            self.moving_until_ts = ref.capture_ts + MOVING_HOLD_S
        for rule in self.rules:
            for event in rule.update(tracked, ref.capture_ts, ref.width, ref.height, live):
                if event.kind == "opened":
                    self._opened(rule, event, ref)
                else:
                    self._closed(event)

    def _any_moving(self, tracked: Detections, ts: float, width: int, live: set[int]) -> bool:
        """Whether a confirmed track moved faster than ``MOVING_SPEED`` widths per second.

        Reported to the motion gate, so a slow walker below its pixel threshold
        keeps being detected; parked cars are not "moving" and wait for refreshes.
        """
        moving = False
        centres = (tracked.xyxy[:, 0] + tracked.xyxy[:, 2]) * 0.5
        middles = (tracked.xyxy[:, 1] + tracked.xyxy[:, 3]) * 0.5
        for tid, cx, cy in zip(
            tracked.tracker_id.tolist(), centres.tolist(), middles.tolist(), strict=True
        ):
            if tid < 0:
                continue
            last = self._last_centre.get(tid)
            if last is not None and ts > last[0]:
                speed = ((cx - last[1]) ** 2 + (cy - last[2]) ** 2) ** 0.5 / (ts - last[0])
                moving = moving or speed > MOVING_SPEED * width
            self._last_centre[tid] = (ts, cx, cy)
        for tid in [t for t in self._last_centre if t not in live]:
            del self._last_centre[tid]
        return moving

    def _opened(self, rule: IntrusionRule, event: RuleEvent, ref: FrameRef) -> None:
        incident_id = new_incident_id(event.start_ts)
        self._open[(event.rule_name, event.track_id)] = incident_id
        frame = self._frames.read(ref)
        if frame is None:
            # The ring wrapped before we got here: keep the incident, count the gap.
            self.snapshots_missing += 1
            jpeg = b""
        else:
            zone = self.zones.get(event.zone or "")
            jpeg = annotate_snapshot(
                frame,
                zone.points_px(ref.width, ref.height) if zone else None,
                event.xyxy,
                f"{event.label} #{event.track_id} {event.score:.2f}",
                ref.capture_ts,
            )
        incident = Incident(
            id=incident_id,
            camera_id=self.camera.id,
            rule=event.rule_name,
            type=event.rule_type,
            severity=rule.config.severity,
            labels=[event.label],
            track_ids=[event.track_id],
            zone=event.zone,
            start_ts=event.start_ts,
            end_ts=None,
            peak_score=round(event.score, 4),
            clip_start_ts=event.start_ts - self.camera.pre_roll_s,
            clip_end_ts=None,
        )
        self._emit(IncidentOpened(incident=incident, snapshot_jpeg=jpeg))

    def _closed(self, event: RuleEvent) -> None:
        incident_id = self._open.pop((event.rule_name, event.track_id), None)
        if incident_id is None:
            return
        self._emit(
            IncidentUpdated(
                incident_id=incident_id,
                end_ts=event.ts,
                peak_score=round(event.score, 4),
                track_ids=[event.track_id],
                closed=True,
                clip_end_ts=event.ts + self.camera.post_roll_s,
            )
        )

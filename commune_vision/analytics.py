"""Per-camera wiring after the detector: class filter -> tracker -> rules -> incident events."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from core.config import CameraConfig
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
_DOMAIN_CLASS_IDS = np.array(sorted(COCO_TO_DOMAIN), np.int32)


class CameraAnalytics:
    def __init__(self, camera: CameraConfig, frames: FrameReader, emit: EmitEvent) -> None:
        self.camera = camera
        self._frames = frames
        self._emit = emit
        self.tracker = ObjectTracker(fps=camera.detect.fps)
        self.zones = {z.name: PixelZone(z.name, list(z.points)) for z in camera.zones}
        self.rules = [IntrusionRule(rule, self.zones[rule.zone]) for rule in camera.rules]
        self._open: dict[tuple[str, int], str] = {}
        self.snapshots_missing = 0

    def on_detections(self, ref: FrameRef, detections: Detections) -> None:
        # Only classes the domain knows reach the tracker: chairs and cups are noise here.
        relevant = detections.select(np.isin(detections.class_id, _DOMAIN_CLASS_IDS))
        tracked = self.tracker.update(relevant, ref.capture_ts)
        live = self.tracker.live_track_ids()
        for rule in self.rules:
            for event in rule.update(tracked, ref.capture_ts, ref.width, ref.height, live):
                if event.kind == "opened":
                    self._opened(rule, event, ref)
                else:
                    self._closed(event)

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

"""Per-camera wiring after the detector: class filter -> tracker -> rules -> incident
events and traffic counts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from core.config import CameraConfig
from core.frames import FrameReader
from core.rule_config import RuleConfig
from core.types import (
    FrameRef,
    Incident,
    IncidentOpened,
    IncidentUpdated,
    StoreEvent,
    TrafficCount,
    TrafficCounts,
    new_incident_id,
)
from vision.annotate import annotate_snapshot
from vision.detections import Detections
from vision.labels import COCO_TO_DOMAIN
from vision.rules.base import FrameContext, Rule, RuleEvent
from vision.rules.factory import Geometry, build_rule
from vision.tracking import ObjectTracker

log = logging.getLogger(__name__)

EmitEvent = Callable[[StoreEvent], None]
MOVING_SPEED = 0.02  # image widths per second: slower than this is standing still
MOVING_HOLD_S = 3.0  # covers the ~1 s publish and ~1 s poll of the activity board
COUNT_BUCKET_S = 60.0  # traffic counts are stored per minute


def _rule_key(rule: RuleConfig, camera: CameraConfig) -> str:
    """A rule keeps its per-track state across a reload only if neither it nor the
    geometry it uses changed."""
    parts = [rule.model_dump_json()]
    zone = getattr(rule, "zone", None)
    line = getattr(rule, "line", None)
    parts += [z.model_dump_json() for z in camera.zones if z.name == zone]
    parts += [ln.model_dump_json() for ln in camera.lines if ln.name == line]
    if camera.calibration is not None:
        parts.append(camera.calibration.model_dump_json())
    return "|".join(parts)


class CameraAnalytics:
    def __init__(
        self,
        camera: CameraConfig,
        frames: FrameReader,
        emit: EmitEvent,
        tz: ZoneInfo | None = None,
    ) -> None:
        self._frames = frames
        self._emit = emit
        self._tz = tz or ZoneInfo("Asia/Ho_Chi_Minh")
        # A stationary object is only seen at each motion-gate refresh: the tracker
        # must remember it for longer than the refresh interval to keep its id.
        refresh_s = camera.motion.refresh_s if camera.motion.enabled else 0.0
        self.tracker = ObjectTracker(fps=camera.detect.fps, lost_track_s=max(2.0, 1.5 * refresh_s))
        self.geometry = Geometry(camera)
        self.rules: list[tuple[str, RuleConfig, Rule]] = []
        self._thresholds = np.zeros((0, 3), np.float32)
        self.reconfigure(camera)
        self._open: dict[tuple[str, str], str] = {}
        self._counts: dict[tuple[str, str, str, float], int] = {}
        self.snapshots_missing = 0
        self._last_ts = 0.0
        self._last_centre: dict[int, tuple[float, float, float]] = {}
        self.moving_until_ts = 0.0
        self._latest: tuple[FrameRef, Detections] | None = None

    # -- configuration ---------------------------------------------------------
    def reconfigure(self, camera: CameraConfig) -> None:
        """Apply new zones, lines, rules and thresholds live; the tracker and its ids stay."""
        self.camera = camera
        self.geometry = Geometry(camera)
        kept = {key: (cfg, rule) for key, cfg, rule in self.rules}
        rules: list[tuple[str, RuleConfig, Rule]] = []
        for cfg in camera.rules:
            key = _rule_key(cfg, camera)
            if key in kept:
                rules.append((key, *kept[key]))
                continue
            rule = build_rule(cfg, self.geometry)
            if rule is not None:
                rules.append((key, cfg, rule))
        self.rules = rules
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

    # -- per frame -------------------------------------------------------------
    def on_detections(self, ref: FrameRef, detections: Detections) -> None:
        self._last_ts = ref.capture_ts
        self._latest = (ref, detections)  # a reference: encoded only when published
        relevant = self._filter(detections, ref.width, ref.height)
        tracked = self.tracker.update(relevant, ref.capture_ts)
        live = self.tracker.live_track_ids()
        if self._any_moving(tracked, ref.capture_ts, ref.width, live):
            self.moving_until_ts = ref.capture_ts + MOVING_HOLD_S
        local = datetime.fromtimestamp(ref.capture_ts, self._tz)
        ctx = FrameContext(
            tracked=tracked,
            ts=ref.capture_ts,
            width=ref.width,
            height=ref.height,
            live_ids=live,
            local_day_s=local.hour * 3600.0 + local.minute * 60.0 + local.second,
            image=lambda: self._frames.read(ref),
        )
        for _key, cfg, rule in self.rules:
            for event in rule.update(ctx):
                if event.kind == "opened":
                    self._opened(cfg, event, ref)
                else:
                    self._closed(event)
            drain = getattr(rule, "drain_crossings", None)
            if drain is not None:
                for crossing in drain():
                    bucket = crossing.ts - crossing.ts % COUNT_BUCKET_S
                    key = (crossing.line, crossing.label, crossing.direction, bucket)
                    self._counts[key] = self._counts.get(key, 0) + 1

    @property
    def open_incident_ids(self) -> list[str]:
        return list(self._open.values())

    def close_open(self, ts: float) -> None:
        """Close every open incident (camera removed, or the service stopping): a new
        tracker could never close them, and an incident must not stay open forever."""
        for incident_id in self._open.values():
            self._emit(
                IncidentUpdated(
                    incident_id=incident_id,
                    end_ts=ts,
                    peak_score=0.0,
                    track_ids=[],
                    closed=True,
                    clip_end_ts=ts + self.camera.post_roll_s,
                )
            )
        self._open.clear()
        self.flush_counts()

    def latest_detections(self) -> dict[str, object] | None:
        """The newest frame's detections of the domain classes *before* the per-class
        filters, boxes normalised 0..1: the console's threshold preview draws which
        ones the filters being edited would drop (``cv:latest_detections``)."""
        if self._latest is None:
            return None
        ref, dets = self._latest
        scale = np.array([ref.width, ref.height, ref.width, ref.height], np.float32)
        boxes = [
            [*(round(float(v), 4) for v in xyxy / scale), round(float(conf), 3), label]
            for xyxy, conf, class_id in zip(
                dets.xyxy, dets.confidence, dets.class_id.tolist(), strict=True
            )
            if (label := COCO_TO_DOMAIN.get(class_id)) is not None
        ]
        return {"ref": asdict(ref), "boxes": boxes}

    @property
    def last_ts(self) -> float:
        return self._last_ts

    def flush_counts(self) -> None:
        """Hand the accumulated traffic counts to the store (adds to stored buckets)."""
        if not self._counts:
            return
        items = [
            TrafficCount(self.camera.id, line, label, direction, bucket, COUNT_BUCKET_S, n)
            for (line, label, direction, bucket), n in sorted(self._counts.items())
        ]
        self._counts = {}
        self._emit(TrafficCounts(items))

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

    # -- incidents -------------------------------------------------------------
    def _overlay(
        self, event: RuleEvent, ref: FrameRef
    ) -> tuple[npt.NDArray[np.int32] | None, bool]:
        geo = self.geometry
        if event.zone in geo.zones:
            return geo.zones[event.zone].points_px(ref.width, ref.height), True
        if event.zone in geo.lines:
            return geo.lines[event.zone].points_px(ref.width, ref.height), False
        return None, True

    def _opened(self, cfg: RuleConfig, event: RuleEvent, ref: FrameRef) -> None:
        incident_id = new_incident_id(event.start_ts)
        self._open[(event.rule_name, event.key)] = incident_id
        frame = self._frames.read(ref)
        if frame is None:
            # The ring wrapped before we got here: keep the incident, count the gap.
            self.snapshots_missing += 1
            jpeg = b""
        else:
            points, closed = self._overlay(event, ref)
            ids = ",".join(f"#{t}" for t in event.track_ids)
            jpeg = annotate_snapshot(
                frame,
                points,
                closed,
                event.xyxy,
                f"{event.rule_type} {event.label} {ids} {event.score:.2f}".strip(),
                ref.capture_ts,
            )
        incident = Incident(
            id=incident_id,
            camera_id=self.camera.id,
            rule=event.rule_name,
            type=event.rule_type,
            severity=cfg.severity,
            labels=[event.label] if event.label else [],
            track_ids=list(event.track_ids),
            zone=event.zone,
            start_ts=event.start_ts,
            end_ts=None,
            peak_score=round(event.score, 4),
            clip_start_ts=event.start_ts - self.camera.pre_roll_s,
            clip_end_ts=None,
            details=dict(event.details),
        )
        self._emit(IncidentOpened(incident=incident, snapshot_jpeg=jpeg))

    def _closed(self, event: RuleEvent) -> None:
        incident_id = self._open.pop((event.rule_name, event.key), None)
        if incident_id is None:
            return
        self._emit(
            IncidentUpdated(
                incident_id=incident_id,
                end_ts=event.ts,
                peak_score=round(event.score, 4),
                track_ids=list(event.track_ids),
                closed=True,
                clip_end_ts=event.ts + self.camera.post_roll_s,
                details=dict(event.details),
            )
        )

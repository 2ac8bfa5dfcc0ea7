"""What-if replay: run footage through detection and candidate rules, as fast as
the machine allows, and compare with a baseline configuration.

Detection runs once per frame; the same detections feed the candidate's and
the baseline's analytics, so the difference is the rules alone.  The motion
gate runs as in production (it decides which frames the rules would see).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import av
import cv2

from commune_vision.analytics import CameraAnalytics
from commune_vision.gating import MotionRefreshGate
from core.config import AppConfig, CameraConfig
from core.frames import FrameReader, FrameRing
from core.types import IncidentOpened, IncidentUpdated, StoreEvent, TrafficCounts
from models.registry import resolve_model
from streams.pacing import RateSelector
from streams.reader import detect_size, luma, to_bgr
from vision.detector.backend import create_backend
from vision.detector.detector import Detector

MATCH_TOLERANCE_S = 2.0


@dataclass
class ReplayIncident:
    rule: str
    type: str
    start_s: float  # seconds from the start of the footage
    end_s: float | None
    labels: list[str]
    track_ids: list[int]
    zone: str | None
    peak_score: float
    details: dict[str, float | str] = field(default_factory=dict)


@dataclass
class ReplayResult:
    camera_id: str
    frames_decoded: int = 0
    frames_detected: int = 0
    incidents: list[ReplayIncident] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # "line/label/direction" -> n

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Collector:
    """Receives the store events an analytics instance would send to the writer."""

    def __init__(self, result: ReplayResult, t0: Callable[[], float]) -> None:
        self.result = result
        self._t0 = t0
        self._by_id: dict[str, ReplayIncident] = {}

    def __call__(self, event: StoreEvent) -> None:
        t0 = self._t0()
        if isinstance(event, IncidentOpened):
            inc = event.incident
            item = ReplayIncident(
                inc.rule,
                inc.type,
                round(inc.start_ts - t0, 2),
                None,
                inc.labels,
                inc.track_ids,
                inc.zone,
                inc.peak_score,
                dict(inc.details),
            )
            self._by_id[inc.id] = item
            self.result.incidents.append(item)
        elif isinstance(event, IncidentUpdated):
            found = self._by_id.get(event.incident_id)
            if found is not None:
                found.end_s = round(event.end_ts - t0, 2)
                found.peak_score = max(found.peak_score, event.peak_score)
                found.details.update(event.details)
        elif isinstance(event, TrafficCounts):
            for c in event.items:
                key = f"{c.line}/{c.label}/{c.direction}"
                self.result.counts[key] = self.result.counts.get(key, 0) + c.count


# A video file has no wall-clock times; rules see this fixed one plus PTS.
REPLAY_EPOCH_TS = 1_800_000_000.0


def pick_camera(config: AppConfig, camera_id: str | None, source: str) -> CameraConfig:
    if camera_id is None:
        if len(config.cameras) != 1:
            ids = ", ".join(c.id for c in config.cameras) or "none"
            raise ValueError(f"--camera: the config has several cameras ({ids}); choose one")
        camera = config.cameras[0]
    else:
        found = [c for c in config.cameras if c.id == camera_id]
        if not found:
            raise ValueError(f"--camera: no camera {camera_id!r} in the config")
        camera = found[0]
    return camera.model_copy(update={"url": source, "loop": False})


def _frames(path: Path, fps: float) -> Iterator[tuple[float, av.VideoFrame]]:
    selector = RateSelector(fps)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        time_base = stream.time_base
        if time_base is None:
            raise ValueError(f"{path}: the video stream has no time base")
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = float(frame.pts * time_base)
            if selector.take(t):
                yield t, frame


def replay_video(
    video: Path,
    candidate: AppConfig,
    camera_id: str | None = None,
    baseline: AppConfig | None = None,
    max_seconds: float | None = None,
    progress: Callable[[float], None] | None = None,
    start_ts: float | None = None,
) -> tuple[ReplayResult, ReplayResult | None]:
    """Replay ``video``; returns (candidate, baseline) results.

    Frame times are mapped onto ``start_ts`` + PTS, so rules see a steady clock
    (and schedules a fixed time of day); reported times are seconds into the video.
    """
    if start_ts is None:
        start_ts = REPLAY_EPOCH_TS
    cam = pick_camera(candidate, camera_id, str(video))
    base_cam = pick_camera(baseline, camera_id, str(video)) if baseline else None
    det_cfg = candidate.detector
    detector = Detector(
        create_backend(
            det_cfg.backend, resolve_model(det_cfg.model), det_cfg.device, det_cfg.input_hw, 1
        ),
        det_cfg.confidence_threshold,
        det_cfg.iou_threshold,
        # One camera never overloads the model: live "auto" detects it at full
        # size, so only "always" replays at mosaic size.
        det_cfg.tile_grid if det_cfg.mosaic == "always" else (1, 1),
    )
    reader = FrameReader()
    tz = ZoneInfo(candidate.timezone)
    results = [ReplayResult(cam.id)]
    analytics = [CameraAnalytics(cam, reader, _Collector(results[0], lambda: start_ts), tz)]
    if base_cam is not None:
        results.append(ReplayResult(base_cam.id))
        analytics.append(
            CameraAnalytics(base_cam, reader, _Collector(results[1], lambda: start_ts), tz)
        )
    gate = MotionRefreshGate(cam) if cam.motion.enabled else None
    ring: FrameRing | None = None
    try:
        for t, frame in _frames(video, cam.detect.fps):
            if max_seconds is not None and t > max_seconds:
                break
            ts = start_ts + t
            for r in results:
                r.frames_decoded += 1
            if progress is not None:
                progress(t)
            if gate is not None and not gate.admit(luma(frame), ts):
                continue
            bgr = to_bgr(frame)
            w, h = detect_size(frame.width, frame.height, cam.detect.width, cam.detect.height)
            if ring is None:
                ring = FrameRing(f"replay-{cam.id}", h, w, cam.detect.ring_slots)
            if (w, h) != (frame.width, frame.height):
                bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
            ref = ring.write(bgr, ts)
            dets = detector.detect([bgr])[0]
            for r, a in zip(results, analytics, strict=True):
                r.frames_detected += 1
                a.on_detections(ref, dets)
        for a in analytics:
            a.flush_counts()
    finally:
        reader.close()
        if ring is not None:
            ring.close()
    return results[0], (results[1] if len(results) > 1 else None)


def _same(a: ReplayIncident, b: ReplayIncident) -> bool:
    """Same rule and type, and the same track (both runs share detections and tracker
    settings, so track ids agree); incidents without tracks match on start time."""
    if a.rule != b.rule or a.type != b.type:
        return False
    if a.track_ids and b.track_ids:
        return bool(set(a.track_ids) & set(b.track_ids))
    return abs(a.start_s - b.start_s) <= MATCH_TOLERANCE_S


def compare(candidate: ReplayResult, baseline: ReplayResult) -> dict[str, list[ReplayIncident]]:
    """Incidents only in the candidate, only in the baseline, and in both."""
    unmatched = list(baseline.incidents)
    only_candidate, both = [], []
    for inc in candidate.incidents:
        match = next((b for b in unmatched if _same(inc, b)), None)
        if match is None:
            only_candidate.append(inc)
        else:
            unmatched.remove(match)
            both.append(inc)
    return {"only_candidate": only_candidate, "only_baseline": unmatched, "both": both}


def write_json(path: Path, candidate: ReplayResult, baseline: ReplayResult | None) -> None:
    data: dict[str, Any] = {"candidate": candidate.to_json_dict()}
    if baseline is not None:
        diff = compare(candidate, baseline)
        data["baseline"] = baseline.to_json_dict()
        data["diff"] = {k: [asdict(i) for i in v] for k, v in diff.items()}
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False))
